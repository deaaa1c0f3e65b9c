/**
 * Several clients with one key (an app and a CLI call sharing an identity): a replica ignored a
 * request whose nonce its record of the key had passed, so the client that went second waited out
 * its caller's deadline (session-19 fourth review: 5 of 12 concurrent writes lost that way).
 * Replicas now answer such a request with nonce-passed; f+1 of them make the client sign the
 * operation again above the (f+1)-th highest nonce they report, and it executes.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { ClientRequest, RingMessage } from '../../ring/messages.ts';
import { buildCluster, secretKeyFor } from '../../ring/sim-cluster.ts';
import { signMessage } from '../../ring/signing.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

const parameters = { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };

describe('a request whose nonce another client with the key passed', () => {
  it.each([false, true])('is signed again above it and executes (channel integrity: %s)', (channelIntegrity) => {
    const c = buildCluster({ seed: 44, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'kv', parameters, channelIntegrity, network: { delayMsMin: 1, delayMsMax: 2 } });
    const w = c.clientSigners[0]!;
    const op = (k: string): Uint8Array => kvOperation(kvKeyFor(w.publicKey, k), -1, Uint8Array.of(1));
    c.submit(0, op('a'));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 2_000)).toBe(true);
    // Another client with the same key executes nonce 50.
    const other = signMessage<ClientRequest>(fakeCrypto, w, { kind: 'request', clientKey: w.publicKey, nonce: 50, replyTo: 'client-0', operation: op('b') });
    for (const id of c.replicaIds) c.sim.send('client-0', id, other);
    expect(c.sim.runUntil(() => c.replicaIds.every((_, i) => c.replica(i)!.lastExecuted >= 2), 2_000)).toBe(true);
    // This client's next request carries nonce 2: passed at every replica.
    const sent: number[] = [];
    c.sim.setInterceptor('client-0', (m: RingMessage) => {
      if (m.kind === 'request') sent.push(m.nonce);
      return [m];
    });
    c.submit(0, op('c'));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 2_000)).toBe(true);
    expect(c.client(0)!.counters.resigned).toBe(1);
    expect(sent[0]).toBe(2);
    expect(sent.at(-1)).toBe(51);
  });

  it('a faulty replica alone cannot make a client sign again, nor push its nonces up to the limit', () => {
    const c = buildCluster({ seed: 45, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'kv', parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
    const w = c.clientSigners[0]!;
    // ring-3 answers every request with a false nonce-passed naming a huge executed nonce.
    c.sim.setInterceptor('ring-3', (m: RingMessage, to) => {
      if (m.kind !== 'reply' || to !== 'client-0') return [m];
      const forged = { kind: 'nonce-passed' as const, clientKey: m.clientKey, nonce: m.nonce, requestDigest: m.requestDigest, executedNonce: Number.MAX_SAFE_INTEGER - 1, replica: 3 };
      return [signMessage(fakeCrypto, signerOf(fakeCrypto, secretKeyFor(fakeCrypto, 45, 'replica', 3)), forged)];
    });
    for (let k = 0; k < 3; k++) {
      c.submit(0, kvOperation(kvKeyFor(w.publicKey, `k${k}`), -1, Uint8Array.of(k)));
      expect(c.sim.runUntil(() => c.completed[0] === k + 1, 2_000)).toBe(true);
    }
    expect(c.client(0)!.counters.resigned).toBe(0);
    expect(c.client(0)!.nextNonce).toBe(4);
  });
});
