/**
 * A faulty ring server is a configured writer of every archive server: what it can store first
 * must not lock the honest archivers out or hide a version from restore (second archive review,
 * findings 1 and 2).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { certificateCheckOf } from '../../archive/certificate-check.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { placementOf, serverRingOf } from '../../archive/placement.ts';
import { SimArchive } from '../../archive/sim/sim-archive.ts';
import { Prng } from '../../sim/prng.ts';
import { allBlocks, archiveAll, crypto, expectedContent, fullyRedundant, k, m, makeCluster, makeHistory, restoreEverything, runUntilChecked } from './sim-helpers.ts';

describe('a Byzantine ring server as an archive writer', () => {
  it('a junk certificate stored first beside a root block does not hide the version from restore', async () => {
    const history = makeHistory(3, 2, 2);
    const cluster = new SimArchive({ seed: 21, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, ringPublicKey: history.ringPublicKey });
    // ring-3 executes the updates, so it knows each VGUID before the certifiers hand the version over.
    for (const v of history.versions) {
      const junk = makeFragments(crypto, k, m, v.vguid, new Prng(1).bytes(10));
      for (const id of cluster.archiveServers) {
        const item = { fragment: encodeFragment(junk.fragments[0]!), fragmentRoot: junk.fragmentRoot, certificate: new Uint8Array([1, 2, 3]) };
        cluster.server(id)!.onMessage('ring-3', { type: 'store', requestId: 1, items: [item] }, cluster.sim.nowMs);
      }
    }
    archiveAll(cluster, history);
    const { report, restored, discovered, rejected } = await restoreEverything(cluster, history);
    expect(report.failed).toEqual([]);
    expect(rejected).toBe(0);
    expect(discovered).toBe(history.versions.length);
    expect(restored).toEqual(expectedContent(history));
  });

  it('a certificate that passes the check replaces junk kept beside the block before servers checked', () => {
    const history = makeHistory(5, 1, 1);
    const cluster = new SimArchive({ seed: 22, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, ringPublicKey: history.ringPublicKey });
    const v = history.versions[0]!;
    const key = `c/${toHex(v.vguid)}`;
    for (const id of cluster.archiveServers) cluster.sim.store(id).put(key, new Uint8Array([1, 2, 3]));
    archiveAll(cluster, history);
    const holders = cluster.archiveServers.filter((id) => cluster.sim.store(id).keys(`f/${toHex(v.vguid)}/`).length > 0);
    expect(holders).toHaveLength(k + m);
    for (const id of holders) expect(cluster.sim.store(id).get(key)).toEqual(v.certificate);
  });

  it('repair spreads only a certificate that passes the check', () => {
    const history = makeHistory(4, 1, 1);
    const cluster = new SimArchive({ seed: 23, crypto, archiveServerCount: 12, ringServerCount: 4, k, m, ringPublicKey: history.ringPublicKey });
    archiveAll(cluster, history);
    const check = certificateCheckOf(crypto, history.ringPublicKey);
    const vguid = history.versions[0]!.vguid;
    const key = `c/${toHex(vguid)}`;
    // Holders in placement order: the best-ranked live one coordinates the repair.
    const holders = placementOf(serverRingOf(cluster.archiveServers), vguid, k + m);
    expect(holders.every((id) => cluster.sim.store(id).get(key) !== undefined)).toBe(true);
    // Junk beside the root block on every holder but the last (kept before servers checked
    // certificates), so the coordinator's own copy is junk and only a peer has the genuine one.
    for (const id of holders.slice(0, -1)) cluster.sim.store(id).put(key, new Uint8Array([1, 2, 3]));
    cluster.sim.crash(holders[0]!);
    expect(runUntilChecked(cluster, () => fullyRedundant(cluster, history), 60_000)).toBe(true);
    const targets = cluster.archiveServers.filter((id) => !holders.includes(id) && cluster.sim.store(id).keys(`f/${toHex(vguid)}/`).length > 0);
    expect(targets.length).toBeGreaterThan(0);
    for (const id of targets) expect(check(vguid, cluster.sim.store(id).get(key) ?? new Uint8Array(0))).toBe(true);
  });
});
