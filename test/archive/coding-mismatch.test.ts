/**
 * Archive servers whose config.erasure differs (second review, finding 1). Each stores only its
 * own (k, m), so one server configured otherwise refuses every fragment sent to it. Repair ignored
 * a `refused` reply: the store phase ran to its deadline, the next census chose the same target,
 * and every block it was the target for ended "gave up after 5 attempts". The archiver dropped
 * `refused` too and said only "did not acknowledge". Now a refused fragment goes to the next
 * server in the same attempt, the refusal's reason is reported, and pings name the mismatch.
 */
import { describe, expect, it } from 'vitest';
import { SimArchive } from '../../archive/sim/sim-archive.ts';
import { archiveAll, crypto, k, m, makeHistory, runUntilChecked, shortOfGenuine } from './sim-helpers.ts';

function eventsOf<K extends string>(cluster: SimArchive, kind: K, from = 0) {
  return cluster.outputs.slice(from).filter((o) => o.event.kind === kind) as { node: string; event: Extract<SimArchive['outputs'][number]['event'], { kind: K }> }[];
}

describe('archive servers that disagree on (k, m)', () => {
  it('one server at (2, 2) among (4, 4): a loss is repaired around it, its refusals re-placed at once', () => {
    const cluster = new SimArchive({ seed: 82, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, codingOf: (id) => (id === 'archive-6' ? { k: 2, m: 2 } : undefined) });
    const history = makeHistory(82, 2, 2, 20_000, 4096);
    // archive-6 refuses every fragment, so it holds nothing and is the repair target of every block.
    archiveAll(cluster, history);
    expect(cluster.server('archive-6')!.fragments.fragmentCount()).toBe(0);
    cluster.sim.crash('archive-3');
    const before = cluster.outputs.length;
    // Well inside one repair pass plus its rechecks; refused stores used to stall the blocks archive-6 was the target for.
    const healed = runUntilChecked(cluster, () => shortOfGenuine(cluster, history) === 0, 20_000);
    expect(shortOfGenuine(cluster, history)).toBe(0);
    expect(healed).toBe(true);
    expect(eventsOf(cluster, 'unrepairable', before).filter((o) => o.node !== 'archive-6')).toEqual([]);
  });

  it('every archive server at (2, 2), the archivers at (4, 4): the archivers report the refusal and its reason, once per server', () => {
    const cluster = new SimArchive({ seed: 81, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, server: { coding: { k: 2, m: 2 } } });
    const history = makeHistory(81, 1, 2, 9000, 4096);
    for (const v of history.versions) cluster.archiveVersion(v.newBlocks, v.vguid, v.certificate);
    expect(cluster.settleArchivers(50_000)).toBe(false);
    const incomplete = eventsOf(cluster, 'incomplete');
    expect(incomplete.length).toBeGreaterThan(0);
    for (const o of incomplete) expect(o.event.reason).toMatch(/^archive servers refused \(latest archive-\d: shape: the cluster stores only k = 2, m = 2 encodings, not k = 4, m = 4\); still retrying$/);
    const refused = eventsOf(cluster, 'refused');
    const pairs = refused.map((o) => `${o.node}->${o.event.server}`);
    // Rate-limited: each archiver reports each server at most once in 50 s (refusalReportEveryMs = 60 s).
    expect(new Set(pairs).size).toBe(pairs.length);
    expect(new Set(refused.map((o) => o.event.server)).size).toBe(cluster.archiveServers.length);
    for (const o of refused) expect(o.event.reason).toMatch(/^shape: /);
  });

  it('pings carry (k, m): every server names a peer configured otherwise, once', () => {
    const cluster = new SimArchive({ seed: 83, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, codingOf: (id) => (id === 'archive-6' ? { k: 2, m: 2 } : undefined) });
    cluster.sim.runFor(10_000);
    const said = eventsOf(cluster, 'coding-mismatch').map((o) => `${o.node}: ${o.event.peer} ${o.event.theirs.k},${o.event.theirs.m} vs ${o.event.ours.k},${o.event.ours.m}`);
    const expected = cluster.archiveServers.filter((s) => s !== 'archive-6').flatMap((s) => [`${s}: archive-6 2,2 vs 4,4`, `archive-6: ${s} 4,4 vs 2,2`]);
    expect(said.sort()).toEqual(expected.sort());
  });
});
