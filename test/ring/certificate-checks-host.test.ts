/**
 * Pairing checks answered later by the host (ReplicaConfig.certificateChecks 'host'): a backup
 * certifier checks one span-certified per sender at a time, keeps up to 4 more that come meanwhile
 * and replays them in order after the verdict, and drops the rest ('busy'). A span it could not
 * take is certified by its own takeover round later: nothing is lost, only done twice.
 */
import { describe, expect, it } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { Replica } from '../../ring/replica.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

type Cluster = ReturnType<typeof buildCluster>;

/** One write, run until certified, then one more certificate round's worth of time. */
function certifiedWrite(c: Cluster, k: number): void {
  const before = c.certified[0]!;
  c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
  expect(c.sim.runUntil(() => c.certified[0] === before + 1, 2_000)).toBe(true);
  c.sim.runFor(30);
}

/** Six spans certified by the primary while ring-1 (the backup certifier in view 0) has its first check out. */
function sixSpansWhileHeld(): { c: Cluster; backup: Replica; primary: Replica } {
  const c = buildCluster({ seed: 21, f: 1, clientCount: 1, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 }, certificateChecks: 'host' });
  certifiedWrite(c, 0);
  const backup = c.replica(1)!;
  const primary = c.replica(0)!;
  expect(backup.certificateState.certifiedThrough).toBe(primary.certificateState.certifiedThrough);
  c.holdChecks.add('ring-1');
  for (let k = 1; k <= 6; k++) certifiedWrite(c, k);
  return { c, backup, primary };
}

function answer(c: Cluster, valid: (held: boolean) => boolean): void {
  c.holdChecks.delete('ring-1');
  for (const h of c.heldChecks.splice(0)) c.sim.later(h.node, 0, 'answer', (m, nowMs) => (m as Replica).onCertificateChecked(h.token, valid(h.valid), nowMs));
}

describe("a backup certifier's span-certified checks answered by the host", () => {
  it('one check out per sender, four more kept and replayed in order, the sixth dropped; the takeover certifies the rest', () => {
    const { c, backup, primary } = sixSpansWhileHeld();
    const before = backup.certificateState.certifiedThrough;
    expect(c.heldChecks.length).toBe(1);
    expect(backup.certificateState.spanChecks.get(0)?.length).toBe(4);
    expect(backup.drops.get('busy')).toBe(1);
    expect(c.certified[0]).toBe(7); // clients never waited for the backup
    answer(c, (valid) => valid);
    c.sim.runFor(100);
    // The held span and the four kept ones: certified in order; the sixth is not.
    expect(backup.certificateState.spanChecks.size).toBe(0);
    expect(backup.certificateState.certifiedThrough).toBeGreaterThan(before);
    expect(backup.certificateState.certifiedThrough).toBeLessThan(primary.certificateState.certifiedThrough);
    // Spans from the primary after the gap start above ring-1's floor: ring-1 certifies it itself.
    certifiedWrite(c, 7);
    c.sim.runFor(3_000);
    expect(backup.certificateState.certifiedThrough).toBe(primary.certificateState.certifiedThrough);
  });

  it('a false verdict on the first: it and the kept ones are not taken, and the takeover still certifies everything', () => {
    const { c, backup, primary } = sixSpansWhileHeld();
    const before = backup.certificateState.certifiedThrough;
    answer(c, () => false);
    c.sim.runFor(100);
    expect(backup.drops.get('bad-proof')).toBe(1);
    expect(backup.certificateState.certifiedThrough).toBe(before);
    c.sim.runFor(3_000);
    expect(backup.certificateState.certifiedThrough).toBe(primary.certificateState.certifiedThrough);
  });
});
