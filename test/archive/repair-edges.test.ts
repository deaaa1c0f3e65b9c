/**
 * Repair with fewer than k fragments left says so (session-20 archive review, finding 8a): with
 * every holder answering and no root holding k fragments, the block was tried attemptsMax times
 * and reported only as "gave up after 5 attempts".
 */
import { describe, expect, it } from 'vitest';
import { allBlocks, archiveAll, k, liveIndexCount, makeCluster, makeHistory } from './sim-helpers.ts';

describe('repair at the edge', () => {
  it('k - 1 fragments left: reported unrepairable with the live count, on the first attempt', () => {
    const cluster = makeCluster(52);
    const history = makeHistory(9, 2, 2, 9000, 4096);
    archiveAll(cluster, history);
    for (const id of ['archive-0', 'archive-1', 'archive-2', 'archive-3', 'archive-4']) cluster.sim.crash(id);
    expect(Math.max(...allBlocks(history).map((b) => liveIndexCount(cluster, b)))).toBeLessThan(k);
    const before = cluster.outputs.length;
    cluster.sim.runFor(20_000);
    const reasons = cluster.outputs.slice(before).flatMap((o) => (o.event.kind === 'unrepairable' ? [o.event.reason] : []));
    expect(reasons.length).toBeGreaterThan(0);
    for (const reason of reasons) expect(reason).toMatch(new RegExp(`^only [0-${k - 1}] of the k = ${k} fragments are live$`));
  });
});
