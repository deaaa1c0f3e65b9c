/**
 * Rings whose last writes executed and were acknowledged but not certified, for the certificate
 * tests (restart, skip, takeover): every replica's shares are held back by an interceptor until
 * the test lets them through.
 */
import { expect } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { resetBelow } from '../../ring/replica-certificates.ts';
import { buildCluster, type Cluster, type ClusterOptions } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

export interface UncertifiedWrites {
  readonly c: Cluster;
  /** One write per client, of key `k${k}`. */
  write(k: number): void;
  /** Whether shares are still held back (each replica's interceptor drops them). */
  blocking(): boolean;
  /** Lets shares through again. */
  unblock(): void;
}

/**
 * Four replicas (f = 1) and two clients: `certified` writes per client are certified, then three
 * more complete while no share gets through, and a tick passes, so their held execution writes are
 * staged (durable on a real host).
 */
export function ringWithUncertifiedWrites(o: { seed: number; certified: number; cluster?: Partial<ClusterOptions> }): UncertifiedWrites {
  const c = buildCluster({ seed: o.seed, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 3 }, ...o.cluster });
  const write = (k: number) => {
    for (let i = 0; i < 2; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
  };
  for (let k = 0; k < o.certified; k++) write(k);
  expect(c.sim.runUntil(() => c.certified.every((n) => n === o.certified), 10_000)).toBe(true);
  let blocking = true;
  c.replicaIds.forEach((id) => c.sim.setInterceptor(id, (m): RingMessage[] => (blocking && m.kind === 'share' ? [] : [m])));
  for (let k = o.certified; k < o.certified + 3; k++) write(k);
  expect(c.sim.runUntil(() => c.completed.every((n) => n === o.certified + 3), 10_000)).toBe(true);
  c.sim.runFor(50);
  expect(c.certified).toEqual([o.certified, o.certified]);
  return { c, write, blocking: () => blocking, unblock: () => void (blocking = false) };
}

export interface HoldersScenario {
  readonly c: Cluster;
  write(k: number): void;
  /** The holder that was cut off, and the one that took over and skipped. */
  readonly silent: number;
  readonly taker: number;
}

/**
 * Only the two replicas that are no certifiers hold the uncertified writes' statements (both
 * certifiers gave them up, as a state transfer past them would); one of the two is cut off while
 * the other takes over and skips on the certifiers' refusals, one answer short of all. Returns once
 * the taker has skipped, with the partition healed.
 */
export function holdersOnly(certified: number): HoldersScenario {
  const { c, write, unblock } = ringWithUncertifiedWrites({ seed: 3, certified, cluster: { parameters: { heartbeatIntervalMs: 0 } } });
  const view = c.replica(0)!.view;
  const [first, second, silent, taker] = [0, 1, 2, 3].map((k) => (view + k) % 4) as [number, number, number, number];
  for (const i of [first, second]) resetBelow(c.replica(i)!, c.replica(i)!.lastExecuted);
  const cut = c.replicaIds[silent]!;
  c.sim.partition([[cut], c.replicaIds.filter((id) => id !== cut).concat(c.clientIds)]);
  unblock();
  // (The skip waits a round more for the silent replica: ring/replica-certificates.ts skipDeferred.)
  expect(c.sim.runUntil(() => c.replica(taker)!.certificateState.skipTo > 0, 10_000)).toBe(true);
  c.sim.heal();
  return { c, write, silent, taker };
}
