/**
 * Repair calls a block healthy without fetching only under a root this server once decoded to the
 * block's BGUID (session-20 archive review, finding 2). A faulty archive server that stores one
 * junk encoding of the configured shape beside every block on every other server (all k + m
 * fragments, its root sorting first) made every coordinator find "all k + m indices held" under the
 * junk root in its own store and stop: a lost server's fragments were never re-protected.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { fragmentKeyOf } from '../../archive/fragment-store.ts';
import type { SimArchive } from '../../archive/sim/sim-archive.ts';
import type { History } from '../../archive/sim/history.ts';
import { allBlocks, archiveAll, crypto, expectedContent, k, m, makeCluster, makeHistory, restoreEverything, runUntilChecked, shortOfGenuine } from './sim-helpers.ts';

/** `writer` stores a (k, m) junk encoding of every block, root starting with '0', on every other archive server. */
function storeShapedJunk(cluster: SimArchive, history: History, writer: string): void {
  for (const bguid of allBlocks(history)) {
    let junk = makeFragments(crypto, k, m, bguid, new Uint8Array([0, 0, 1]));
    for (let i = 1; !toHex(junk.fragmentRoot).startsWith('0'); i++) junk = makeFragments(crypto, k, m, bguid, new Uint8Array([i & 255, i >> 8, 1]));
    const items = junk.fragments.map((f) => ({ fragment: encodeFragment(f), fragmentRoot: junk.fragmentRoot, certificate: null }));
    for (const id of cluster.archiveServers) if (id !== writer) cluster.server(id)!.onMessage(writer, { type: 'store', requestId: 1, items }, cluster.sim.nowMs);
  }
}

describe('repair and unverified roots', () => {
  it('re-protects a lost server although a faulty archive server stored a (k, m) junk encoding of every block everywhere', async () => {
    const cluster = makeCluster(61);
    const history = makeHistory(10, 2, 2);
    archiveAll(cluster, history);
    storeShapedJunk(cluster, history, 'archive-7');
    // archive-7 is the faulty one: it runs no repair of its own (it still answers probes and fetches).
    cluster.server('archive-7')!.repairer.onTick = () => [];
    cluster.sim.crash('archive-3');
    expect(shortOfGenuine(cluster, history)).toBeGreaterThan(0);
    expect(runUntilChecked(cluster, () => shortOfGenuine(cluster, history) === 0, 60_000)).toBe(true);
    const { report, restored } = await restoreEverything(cluster, history);
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
  });

  it('a block decoded once is judged healthy again from its home servers\' claims alone (no fetch)', () => {
    const cluster = makeCluster(62);
    const history = makeHistory(11, 1, 1);
    archiveAll(cluster, history);
    cluster.sim.crash('archive-3');
    expect(runUntilChecked(cluster, () => shortOfGenuine(cluster, history) === 0, 60_000)).toBe(true);
    // Every block is whole again; each server's repairer has decoded the blocks it coordinated. A
    // corruption report on a whole block now costs one census and no fetch.
    const server = cluster.server('archive-0')!;
    const bguid = allBlocks(history).find((b) => server.repairer.verifiedRootOf(b) !== undefined);
    expect(bguid).toBeDefined();
    const before = server.repairer.counters.alreadyHealthy;
    let fetches = 0;
    for (const id of cluster.archiveServers) {
      const peer = cluster.server(id);
      if (!peer || id === 'archive-0') continue;
      const real = peer.onMessage.bind(peer);
      peer.onMessage = (from, message, nowMs) => {
        if (from === 'archive-0' && message.type === 'fetch') fetches++;
        return real(from, message, nowMs);
      };
    }
    server.repairer.enqueue(bguid!, 'manual');
    expect(runUntilChecked(cluster, () => server.repairer.queuedCount() === 0, 10_000)).toBe(true);
    expect(server.repairer.counters.alreadyHealthy).toBe(before + 1);
    expect(fetches).toBe(0);
  });

  it('re-encodes with the configured code when the root it decoded has another shape (one stored before servers checked shapes)', () => {
    const cluster = makeCluster(63);
    const history = makeHistory(12, 1, 1);
    archiveAll(cluster, history);
    const block = history.versions[0]!.newBlocks[0]!;
    const genuine = makeFragments(crypto, k, m, block.bguid, block.bytes!);
    // archive-0 holds a genuine k = 1, m = 7 encoding of the block, written straight to its store
    // (put refuses that shape now) and read at restart; its 8 indices out-claim the genuine root's 7.
    const legacy = makeFragments(crypto, 1, 7, block.bguid, block.bytes!);
    const store = cluster.sim.store('archive-0');
    for (const f of legacy.fragments) store.put(fragmentKeyOf(block.bguid, legacy.fragmentRoot, f.index), encodeFragment(f));
    cluster.sim.crash('archive-0');
    cluster.sim.restart('archive-0');
    const holder = cluster.archiveServers.find((id) => id !== 'archive-0' && cluster.server(id)!.fragments.heldOf(block.bguid).length > 0)!;
    for (const key of cluster.sim.store(holder).keys(`f/${toHex(block.bguid)}/`)) cluster.sim.store(holder).delete(key);
    cluster.sim.crash(holder);
    cluster.sim.restart(holder);
    cluster.server('archive-0')!.repairer.enqueue(block.bguid, 'manual');
    const whole = () => {
      const indexes = new Set<number>();
      for (const id of cluster.archiveServers) {
        const server = cluster.server(id)!;
        for (const h of server.fragments.heldOf(block.bguid)) if (toHex(h.fragmentRoot) === toHex(genuine.fragmentRoot)) indexes.add(h.index);
      }
      return indexes.size === k + m;
    };
    expect(whole()).toBe(false);
    expect(runUntilChecked(cluster, whole, 20_000)).toBe(true);
    expect(cluster.outputs.filter((o) => o.event.kind === 'unrepairable')).toEqual([]);
  });
});
