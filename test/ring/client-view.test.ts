/**
 * The client sends each request to the primary of the view it believes current. Before session 18
 * it took that view from any single reply: one faulty replica answering with view 3 (naming itself
 * primary) and dropping what it got made every later request wait a retransmission timeout. Now
 * the view is moved only when a request completes, to the (f+1)-th highest view among its replies,
 * which at least one correct replica has reached.
 */
import { describe, expect, it } from 'vitest';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const op = (c: Cluster, name: string): Uint8Array => kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, name), -1, new TextEncoder().encode(name));

function latencies(faultyReplicaThree: boolean): number[] {
  const c = buildCluster({ seed: 51, f: 1, clientCount: 1, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 }, channelIntegrity: true });
  if (faultyReplicaThree) {
    c.sim.setInterceptor('ring-3', (m: RingMessage, to: string) => {
      if (m.kind === 'reply') return [{ ...m, view: 3 }]; // primaryOf(3, 4) = ring-3
      if (m.kind === 'request' && to === 'ring-0') return []; // and it relays nothing
      return [m];
    });
  }
  const out: number[] = [];
  for (let k = 0; k < 8; k++) {
    const t = c.sim.nowMs;
    c.submit(0, op(c, `k${k}`));
    expect(c.sim.runUntil(() => c.completed[0] === k + 1, 10_000)).toBe(true);
    out.push(c.sim.nowMs - t);
  }
  return out;
}

describe('the client\'s view', () => {
  it('control: requests complete in a few network delays', () => {
    expect(Math.max(...latencies(false))).toBeLessThan(100);
  });

  it('one faulty replica claiming a later view does not redirect the client\'s requests to it', () => {
    expect(Math.max(...latencies(true))).toBeLessThan(100);
  });
});
