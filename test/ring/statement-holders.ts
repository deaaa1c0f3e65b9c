/**
 * A ring where only the two replicas that are no certifiers hold some writes' statements (both
 * certifiers gave them up, as a state transfer past them would), and one of those two is cut off
 * while the other takes over and skips on the certifiers' refusals, one answer short of all.
 * Shared by the certificate-skip and certificate-restart tests.
 */
import { expect } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { resetBelow } from '../../ring/replica-certificates.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

export interface HoldersScenario {
  readonly c: Cluster;
  /** One write per client of key `k${k}`. */
  write(k: number): void;
  /** The holder that was cut off, and the one that took over and skipped. */
  readonly silent: number;
  readonly taker: number;
}

/**
 * `certifiedFirst` writes (per client) are certified, then three more complete while no share gets
 * through; those three are the ones only the two non-certifiers hold. Returns once the taker has
 * skipped, with the partition healed.
 */
export function holdersOnly(certifiedFirst: number): HoldersScenario {
  const c = buildCluster({ seed: 3, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 3 }, parameters: { heartbeatIntervalMs: 0 } });
  const write = (k: number) => {
    for (let i = 0; i < 2; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
  };
  for (let k = 0; k < certifiedFirst; k++) write(k);
  expect(c.sim.runUntil(() => c.certified.every((n) => n === certifiedFirst), 10_000)).toBe(true);
  let blocking = true;
  c.replicaIds.forEach((id) => c.sim.setInterceptor(id, (m): RingMessage[] => (blocking && m.kind === 'share' ? [] : [m])));
  for (let k = certifiedFirst; k < certifiedFirst + 3; k++) write(k);
  expect(c.sim.runUntil(() => c.completed.every((n) => n === certifiedFirst + 3), 10_000)).toBe(true);
  c.sim.runFor(50);
  const view = c.replica(0)!.view;
  const [first, second, silent, taker] = [0, 1, 2, 3].map((k) => (view + k) % 4) as [number, number, number, number];
  for (const i of [first, second]) resetBelow(c.replica(i)!, c.replica(i)!.lastExecuted);
  const cut = c.replicaIds[silent]!;
  c.sim.partition([[cut], c.replicaIds.filter((id) => id !== cut).concat(c.clientIds)]);
  blocking = false;
  // (The skip waits a round more for the silent replica: ring/replica-certificates.ts skipDeferred.)
  expect(c.sim.runUntil(() => c.replica(taker)!.certificateState.skipTo > 0, 10_000)).toBe(true);
  c.sim.heal();
  return { c, write, silent, taker };
}
