/**
 * Certificates go out once (ring/replica-certificates.ts); a client that completed a request but
 * lost its certificate on the way asks the members again (certificate-request, ring/client.ts),
 * and a member that sent it re-sends it, only to the address it went to.
 */
import { describe, expect, it } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

function cluster(seed: number) {
  return buildCluster({ seed, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 3 } });
}

function submitWrites(c: ReturnType<typeof cluster>, writes: number): void {
  for (let i = 0; i < c.clientSigners.length; i++) {
    for (let k = 0; k < writes; k++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
  }
}

describe('certificates asked for again', () => {
  it('a client whose certificates were all lost on the way gets each from a member that sent it', () => {
    const c = cluster(91);
    // Every first certificate message each replica sends a client is lost.
    const sent = new Set<string>();
    const asks: string[] = [];
    for (const id of c.replicaIds) {
      c.sim.setInterceptor(id, (m, to) => {
        if (m.kind !== 'certificate') return [m];
        const key = `${id}:${to}:${m.nonce}`;
        if (sent.has(key)) return [m];
        sent.add(key);
        return [];
      });
    }
    for (let i = 0; i < c.clientIds.length; i++) {
      c.sim.setInterceptor(c.clientIds[i]!, (m) => {
        if (m.kind === 'certificate-request') asks.push(`${c.clientIds[i]}:${m.nonce}`);
        return [m];
      });
    }
    const writes = 3;
    submitWrites(c, writes);
    expect(c.sim.runUntil(() => c.completed.every((n) => n === writes), 10_000)).toBe(true);
    expect(c.certified.every((n) => n === 0)).toBe(true);
    expect(c.sim.runUntil(() => c.certified.every((n) => n === writes), 20_000)).toBe(true);
    // Each request was asked for (once each, unless the first answer was slower than the next ask).
    expect(new Set(asks).size).toBe(c.clientIds.length * writes);
    expect(c.clientSigners.map((_, i) => c.client(i)!.certificatesAwaited)).toEqual([0, 0]);
  });

  it('a member re-sends a certificate only to the address it sent it to, and only one it sent', () => {
    const c = cluster(92);
    const toStranger: RingMessage[] = [];
    let certificatesToClient = 0;
    for (const id of c.replicaIds) {
      c.sim.setInterceptor(id, (m, to) => {
        if (to === 'stranger') toStranger.push(m);
        if (to === c.clientIds[0] && m.kind === 'certificate') certificatesToClient++;
        return [m];
      });
    }
    submitWrites(c, 1);
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 1), 10_000)).toBe(true);
    // The f+1 certifiers' own copies land first (the backup certifier's may come after the client took one).
    c.sim.runFor(50);
    const clientKey = c.clientSigners[0]!.publicKey;
    certificatesToClient = 0;
    for (const id of c.replicaIds) {
      // Someone else asking for client 0's certificate, then for a nonce nobody certified.
      c.sim.send('stranger', id, { kind: 'certificate-request', clientKey, nonce: 1 });
      c.sim.send(c.clientIds[0]!, id, { kind: 'certificate-request', clientKey, nonce: 7 });
    }
    c.sim.runFor(200);
    expect(toStranger).toEqual([]);
    expect(certificatesToClient).toBe(0);
    expect(c.certified).toEqual([1, 1]);
  });
});
