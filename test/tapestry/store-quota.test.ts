/**
 * A faulty member against an honest heavy server (twentieth session's second review, finding 2):
 * a full store used to even the largest server out against the newcomer's, so one member sending
 * side copies of its own statements to every node cut an honest server holding most of a node's
 * pointers down to an equal share, and its republish was refused for good (located 170/170 ->
 * 139/170, still 139 after the republish). Adapted from the reviewer's repro.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../sim/prng.ts';
import { SignedCluster } from './signed-cluster.ts';

function hex(prng: Prng): string {
  return Array.from({ length: 40 }, () => '0123456789abcdef'[prng.int(16)]).join('');
}

/** Locates each object once from a node other than `holder` and m7; how many name `holder`. */
function located(c: SignedCluster, objects: string[], holder: string): number {
  const prng = new Prng(3).fork('o');
  const origins = c.names.filter((n) => n !== holder && n !== 'm7');
  let found = 0;
  for (const o of objects) {
    const via = origins[prng.int(origins.length)]!;
    const l = c.nodes.get(via)!.locate(o, c.nowMs);
    c.apply(via, l.effects);
    c.run();
    const r = c.outputs.find((x) => x.node === via && x.event.kind === 'locateResult' && x.event.requestId === l.requestId)?.event as { server: { name: string } | null } | undefined;
    if (r?.server?.name === holder) found++;
  }
  return found;
}

describe('pointer store quota: a faulty member against an honest heavy server', () => {
  it('m1 holds 85% of the cap at some nodes; m7\'s side copies to every node take only free room and m7\'s quota, and m1\'s objects stay found, also after its republish', () => {
    const cap = 200;
    const c = new SignedCluster(8, { pointersMax: cap, republishIntervalMs: 30_000 });
    c.connectAll();
    const prng = new Prng(9).fork('h');
    const honest = Array.from({ length: 170 }, () => hex(prng));
    for (const o of honest) c.apply('m1', c.nodes.get('m1')!.publish(o, c.nowMs));
    c.run();
    const m1 = c.refs.get('m1')!.id;
    const counts = () => c.names.map((n) => c.nodes.get(n)!.pointers.serverCount(m1));
    const countsBefore = counts();
    expect(Math.max(...countsBefore)).toBe(170);
    expect(located(c, honest, 'm1')).toBe(170);
    // m7 signs statements for 200 object ids of its own and sends them as side copies to every node.
    const junk = Array.from({ length: cap }, () => hex(prng));
    for (const to of c.names.filter((n) => n !== 'm7')) for (const o of junk) c.inject('m7', to, c.statementOf('m7', o, c.nowMs));
    c.run();
    expect(counts()).toEqual(countsBefore); // before: 170 -> 100 at the nodes m1 filled most
    expect(located(c, honest, 'm1')).toBe(170); // before: 139
    // m1 republishes (every node ticks past its republish time); m7 keeps its statements fresh.
    c.nowMs += 31_000;
    for (const to of c.names.filter((n) => n !== 'm7')) for (const o of junk) c.inject('m7', to, c.statementOf('m7', o, c.nowMs));
    c.run();
    for (const n of c.names) c.apply(n, c.nodes.get(n)!.onTick(c.nowMs));
    c.run();
    expect(located(c, honest, 'm1')).toBe(170); // before: 139
    // The refusals are counted where m7 met a full store.
    const refused = c.names.filter((n) => n !== 'm7').reduce((sum, n) => sum + c.nodes.get(n)!.stats.pointersRefused, 0);
    expect(refused).toBeGreaterThan(0);
  });
});
