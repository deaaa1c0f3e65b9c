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
