/**
 * A fetch reply carries at most 256 fragments of a block. A faulty writer must not be able to fill
 * that with junk that sorts before the genuine encoding (session-20 archive review, finding 1):
 * stores of any shape but the configured (k, m) are refused, and a reply takes a block's roots in
 * turn, so even more writers than fit in one reply cannot crowd the genuine fragments out.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { encodeFragment, makeFragments, type FragmentSet } from '../../archive/erasure/index.ts';
import { interleaveByRoot } from '../../archive/fragment-store.ts';
import type { SimArchive } from '../../archive/sim/sim-archive.ts';
import type { History } from '../../archive/sim/history.ts';
import { allBlocks, archiveAll, crypto, expectedContent, k, liveIndexCount, m, makeCluster, makeHistory, restoreEverything } from './sim-helpers.ts';

/** An encoding of `bguid` (shape k', m') whose root sorts before `genuineRootHex` (a writer with the block's bytes needs ~2 tries). */
function junkSortingBefore(bguid: Uint8Array, genuineRootHex: string, junkK: number, junkM: number, salt: number): FragmentSet {
  for (let i = 0; ; i++) {
    const junk = makeFragments(crypto, junkK, junkM, bguid, new Uint8Array([salt & 255, salt >> 8, i & 255, i >> 8]));
    if (toHex(junk.fragmentRoot) < genuineRootHex) return junk;
  }
}

/** `writer` stores one junk encoding per block on every archive server; returns the reply types. */
function storeJunk(cluster: SimArchive, history: History, writer: string, junkK: number, junkM: number, salt: number): string[] {
  const replies: string[] = [];
  for (const v of history.versions) {
    for (const b of v.newBlocks) {
      const genuine = toHex(makeFragments(crypto, k, m, b.bguid, b.bytes!).fragmentRoot);
      const junk = junkSortingBefore(b.bguid, genuine, junkK, junkM, salt);
      const items = junk.fragments.map((f) => ({ fragment: encodeFragment(f), fragmentRoot: junk.fragmentRoot, certificate: null }));
      for (const id of cluster.archiveServers) {
        const effects = cluster.server(id)!.onMessage(writer, { type: 'store', requestId: 1, items }, cluster.sim.nowMs);
        const reply = effects.find((e) => e.kind === 'send');
        replies.push(reply?.kind === 'send' ? reply.message.type : 'none');
      }
    }
  }
  return replies;
}

describe('fetch replies and junk encodings', () => {
  it('takes roots in turn: each root first, then each root second', () => {
    const key = (root: string, index: number) => `f/${'a'.repeat(64)}/${root.repeat(64)}/${String(index).padStart(3, '0')}`;
    const keys = [key('0', 0), key('0', 1), key('0', 2), key('5', 0), key('9', 3), key('9', 4)];
    expect(interleaveByRoot(keys)).toEqual([key('0', 0), key('5', 0), key('9', 3), key('0', 1), key('9', 4), key('0', 2)]);
  });

  it('a faulty ring server storing a k = 1, m = 255 junk encoding sorting first does not hide any version from restore', async () => {
    const cluster = makeCluster(31);
    const history = makeHistory(7, 2, 2);
    // ring-3 executes each update, so it has the blocks before the archivers do, and stores first.
    const replies = storeJunk(cluster, history, 'ring-3', 1, 255, 0);
    expect(new Set(replies)).toEqual(new Set(['refused']));
    archiveAll(cluster, history, ['ring-3']);
    const { report, restored } = await restoreEverything(cluster, history);
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
  });

  it('more writers than one reply holds, each with a (k, m) junk encoding sorting first: restore still finds the genuine fragments', async () => {
    const cluster = makeCluster(33);
    const history = makeHistory(9, 1, 2);
    archiveAll(cluster, history);
    // 40 writers x (k + m) = 320 junk fragments per block on every server, all sorting before the genuine root.
    const rogues = Array.from({ length: 40 }, (_, i) => `rogue-${i}`);
    for (const id of cluster.archiveServers) cluster.server(id)!.setRingServers([...cluster.ringServers, ...rogues]);
    rogues.forEach((rogue, i) => expect(new Set(storeJunk(cluster, history, rogue, k, m, i + 1))).toEqual(new Set(['receipt'])));
    expect(allBlocks(history).every((b) => liveIndexCount(cluster, b) === k + m)).toBe(true);
    const { report, restored } = await restoreEverything(cluster, history);
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
  });
});
