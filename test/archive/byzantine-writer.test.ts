/**
 * A faulty ring server is a configured writer of every archive server: what it can store first
 * must not lock the honest archivers out or hide a version from restore (second archive review,
 * findings 1 and 2).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { certificateCheckOf } from '../../archive/certificate-check.ts';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { encodeFragment, makeFragments, type FragmentSet } from '../../archive/erasure/index.ts';
import { fragmentKeyOf } from '../../archive/fragment-store.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { placementOf, serverRingOf } from '../../archive/placement.ts';
import { SimArchive } from '../../archive/sim/sim-archive.ts';
import { Prng } from '../../sim/prng.ts';
import { allBlocks, archiveAll, crypto, expectedContent, fullyRedundant, k, liveIndexCount, m, makeCluster, makeHistory, restoreEverything, runUntilChecked } from './sim-helpers.ts';

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

  it('a writer that stored three made-up encodings of a block does not lock the genuine one out', () => {
    const server = rootSlotServer();
    const block = new Prng(7).bytes(1000);
    const bguid = crypto.sha256([block]);
    // ring-1 (faulty) needs only the BGUID: three junk blocks coded under it.
    const replies = [0, 1, 2].map((r) => replyType(server, 'ring-1', makeFragments(crypto, k, m, bguid, new Prng(100 + r).bytes(10)), 0));
    expect(replies).toEqual(['receipt', 'refused', 'refused']);
    expect(replyType(server, 'ring-0', makeFragments(crypto, k, m, bguid, block), 0)).toBe('receipt');
    // The faulty writer may add to the genuine root (anyone may), not a second one of its own.
    expect(replyType(server, 'ring-1', makeFragments(crypto, k, m, bguid, block), 1)).toBe('receipt');
  });

  it('a stored copy that no longer verifies is replaced when the fragment is stored again', () => {
    const server = rootSlotServer();
    const block = new Prng(8).bytes(1000);
    const set = makeFragments(crypto, k, m, crypto.sha256([block]), block);
    expect(replyType(server, 'ring-0', set, 0)).toBe('receipt');
    const key = server.fragments.heldOf(set.fragments[0]!.bguid).map((h) => fragmentKeyOf(h.bguid, h.fragmentRoot, h.index))[0]!;
    const store = (server as unknown as { fragments: { store: MemoryKvStore } }).fragments.store;
    const flipped = store.get(key)!.slice();
    flipped[flipped.length >> 1]! ^= 1;
    store.put(key, flipped);
    expect(server.fragments.verifyKey(key)).toBeUndefined();
    expect(replyType(server, 'ring-0', set, 0)).toBe('receipt');
    expect(server.fragments.verifyKey(key)).toBeDefined();
  });

  it('end to end: junk encodings stored first by a ring server leave every version archived and restorable', async () => {
    const cluster = makeCluster(22);
    const history = makeHistory(4, 1, 1);
    for (const bguid of allBlocks(history)) {
      for (let r = 0; r < 3; r++) {
        const junk = makeFragments(crypto, k, m, bguid, new Prng(10 + r).bytes(10));
        const item = { fragment: encodeFragment(junk.fragments[0]!), fragmentRoot: junk.fragmentRoot, certificate: null };
        for (const id of cluster.archiveServers) cluster.server(id)!.onMessage('ring-3', { type: 'store', requestId: 1, items: [item] }, cluster.sim.nowMs);
      }
    }
    archiveAll(cluster, history);
    // ring-3 is the faulty one: its own (here honest) archiver may not add a second root, so only the others count.
    expect(cluster.outputs.filter((o) => o.event.kind === 'incomplete' && o.node !== 'ring-3')).toEqual([]);
    expect(allBlocks(history).every((b) => liveIndexCount(cluster, b) === k + m)).toBe(true);
    const { report, restored } = await restoreEverything(cluster, history);
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
  });
});

function rootSlotServer(): ArchiveServer {
  return new ArchiveServer({ nodeId: 'archive-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 }, {
    crypto, signer: signerOf(crypto, new Uint8Array(32).fill(3)), archiveServers: ['archive-0', 'archive-1'], ringServers: ['ring-0', 'ring-1'], coding: { k, m },
    ...defaultArchiveTiming, repair: defaultRepairOptions,
  });
}

/** Stores fragment `index` of `set` from `from`; the reply's type. */
function replyType(server: ArchiveServer, from: string, set: FragmentSet, index: number): string | undefined {
  const item = { fragment: encodeFragment(set.fragments[index]!), fragmentRoot: set.fragmentRoot, certificate: null };
  const reply = server.onMessage(from, { type: 'store', requestId: 1, items: [item] }, 1).find((e) => e.kind === 'send');
  return reply?.kind === 'send' ? reply.message.type : undefined;
}
