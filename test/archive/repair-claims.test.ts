/**
 * Repair judges what is live by what holders return, verified, not by probe replies (second
 * archive review, finding 5): a server that claims every index, or a junk encoding with more
 * fragments than the genuine one, must not stop repair.
 */
import { describe, expect, it } from 'vitest';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import type { ArchiveMessage } from '../../archive/messages.ts';
import type { SimArchive } from '../../archive/sim/sim-archive.ts';
import { Prng } from '../../sim/prng.ts';
import { allBlocks, archiveAll, crypto, fullyRedundant, k, m, makeCluster, makeHistory, runUntilChecked } from './sim-helpers.ts';

/** `id` claims, in every probe reply, to hold every index under each root it really holds one fragment of (and runs no repair itself). */
function lieInProbeReplies(cluster: SimArchive, id: string): void {
  const server = cluster.server(id)!;
  server.repairer.onTick = () => [];
  const real = server.onMessage.bind(server);
  server.onMessage = (from, message, nowMs) =>
    real(from, message, nowMs).map((e) => {
      if (e.kind !== 'send' || e.message.type !== 'probeReply') return e;
      const held = e.message.held.flatMap((h) => Array.from({ length: k + m }, (_, index) => ({ ...h, index })));
      return { ...e, message: { ...e.message, held } as ArchiveMessage };
    });
}

function scrubbedAndRepaired(cluster: SimArchive, id: string, corruptCount: number): boolean {
  return runUntilChecked(cluster, () => {
    const s = cluster.server(id)!.status();
    return s.corruptFoundCount >= corruptCount && s.repairQueuedCount === 0;
  }, 60_000);
}

describe('repair and probe claims', () => {
  it('repairs corrupt fragments although one archive server claims to hold every index', () => {
    const cluster = makeCluster(15);
    const history = makeHistory(5, 3, 2);
    archiveAll(cluster, history);
    lieInProbeReplies(cluster, 'archive-2');
    expect(cluster.corruptFragments('archive-5', 6, new Prng(9))).toHaveLength(6);
    expect(scrubbedAndRepaired(cluster, 'archive-5', 6)).toBe(true);
    expect(runUntilChecked(cluster, () => fullyRedundant(cluster, history), 30_000)).toBe(true);
  });

  it('repairs after a peer is lost for good although one archive server claims to hold every index', () => {
    const cluster = makeCluster(16, 12);
    const history = makeHistory(6, 4, 2);
    archiveAll(cluster, history);
    lieInProbeReplies(cluster, 'archive-2');
    cluster.sim.crash('archive-3');
    expect(runUntilChecked(cluster, () => fullyRedundant(cluster, history), 60_000)).toBe(true);
  });

  it('repairs although a writer stored a 256-fragment junk encoding of each block on one server', () => {
    const cluster = makeCluster(15);
    const history = makeHistory(5, 3, 2);
    archiveAll(cluster, history);
    for (const bguid of allBlocks(history)) {
      const junk = makeFragments(crypto, 1, 255, bguid, new Uint8Array([7]));
      const items = junk.fragments.map((f) => ({ fragment: encodeFragment(f), fragmentRoot: junk.fragmentRoot, certificate: null }));
      cluster.server('archive-0')!.onMessage('ring-3', { type: 'store', requestId: 1, items }, cluster.sim.nowMs);
    }
    expect(cluster.corruptFragments('archive-5', 6, new Prng(9))).toHaveLength(6);
    expect(scrubbedAndRepaired(cluster, 'archive-5', 6)).toBe(true);
    expect(runUntilChecked(cluster, () => fullyRedundant(cluster, history), 30_000)).toBe(true);
    expect(cluster.outputs.filter((o) => o.event.kind === 'unrepairable')).toEqual([]);
  });
});
