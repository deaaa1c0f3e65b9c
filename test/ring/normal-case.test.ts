import { describe, expect, it } from 'vitest';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';

const value = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('ring normal case (Castro & Liskov OSDI\'99 §4.2)', () => {
  it('orders, executes and certifies requests from several clients on a clean network (f=1)', () => {
    const c = buildCluster({ seed: 1, f: 1, clientCount: 3, crypto: fakeCrypto });
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, 'x'), -1, value(`v${round}`)));
    }
    const done = c.sim.runUntil(() => c.completed.every((k) => k === 5) && c.certified.every((k) => k === 5), 5_000);
    expect(done).toBe(true);
    for (let i = 0; i < 4; i++) expect(c.replica(i)!.counters.executedRequests).toBe(15);
  });
});

describe('requests (OSDI\'99 §4.1)', () => {
  it('answers a retransmitted request from the reply cache without executing it again, and ignores a reused nonce with other content', () => {
    const c = buildCluster({ seed: 2, f: 1, clientCount: 1, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 } });
    // Replies to the client are lost: it retransmits to every replica.
    c.sim.setInterceptor('ring-0', (m) => (m.kind === 'reply' && c.sim.nowMs < 200 ? [] : [m]));
    c.sim.setInterceptor('ring-1', (m) => (m.kind === 'reply' && c.sim.nowMs < 200 ? [] : [m]));
    c.sim.setInterceptor('ring-2', (m) => (m.kind === 'reply' && c.sim.nowMs < 200 ? [] : [m]));
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, 'x'), -1, value('once')));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 3_000)).toBe(true);
    expect(c.client(0)!.counters.retransmissions).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 4; i++) expect(c.replica(i)!.counters.executedRequests).toBe(1);
    expect(c.executedDigests.size).toBe(1);
  });

  it('reaches the primary through any replica when the client only talks to a backup', () => {
    const c = buildCluster({ seed: 3, f: 1, clientCount: 1, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 } });
    // The client-to-primary link is cut; the client's retransmission to all replicas gets relayed.
    c.sim.setInterceptor('client-0', (m, to) => (to === 'ring-0' ? [] : [m]));
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, 'y'), -1, value('relayed')));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 3_000)).toBe(true);
    expect(c.replica(0)!.view).toBe(0);
    expect(c.replica(0)!.counters.executedRequests).toBe(1);
  });
});
