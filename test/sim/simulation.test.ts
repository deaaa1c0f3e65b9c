// The simulator's contract (issue 2, "Deterministic simulator"): a seed reproduces a run exactly,
// faults happen as configured, and a crash keeps durable state while losing volatile state.
import { describe, expect, it } from 'vitest';
import { EchoNode, runEcho, type EchoMessage, type EchoOutput } from '../../sim/echo-scenario.ts';
import { Prng } from '../../sim/prng.ts';
import { Simulation } from '../../sim/simulation.ts';

describe('simulator determinism', () => {
  it('gives identical traces for one seed, across fault and heal phases', () => {
    const a = runEcho(7);
    const b = runEcho(7);
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.stats).toEqual(b.stats);
    expect(a.stats.dropped).toBeGreaterThan(0);
    expect(a.stats.duplicated).toBeGreaterThan(0);
  });

  it('gives different traces for different seeds', () => {
    const hashes = new Set([1, 2, 3, 4, 5].map((seed) => runEcho(seed).traceHash));
    expect(hashes.size).toBe(5);
  });
});

describe('PRNG', () => {
  it('is reproducible and roughly uniform', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const x = a.int(10);
      expect(b.int(10)).toBe(x);
      counts[x]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('forks independent streams that do not depend on later draws of the parent', () => {
    const p1 = new Prng(9);
    const f1 = p1.fork('x');
    const p2 = new Prng(9);
    const f2 = p2.fork('x');
    p2.next();
    expect(f1.next()).toBe(f2.next());
    expect(new Prng(9).fork('x').next()).not.toBe(new Prng(9).fork('y').next());
  });
});

describe('faults', () => {
  function twoNodes(seed: number): Simulation<EchoMessage, EchoOutput> {
    const sim = new Simulation<EchoMessage, EchoOutput>({ seed });
    const ids = ['a', 'b'];
    for (const id of ids) sim.addNode(id, (ctx) => new EchoNode(ctx, ids));
    return sim;
  }

  it('a crash keeps the durable store and rebuilds the core from it', () => {
    const sim = twoNodes(1);
    sim.runFor(2_000);
    const before = (sim.machine('a') as EchoNode).pongCount;
    expect(before).toBeGreaterThan(0);
    sim.crash('a');
    expect(sim.isUp('a')).toBe(false);
    sim.runFor(500);
    sim.restart('a');
    expect((sim.machine('a') as EchoNode).pongCount).toBe(before);
  });

  it('a partition stops all traffic between groups until healed', () => {
    const sim = twoNodes(2);
    let pongs = 0;
    sim.onOutput(() => pongs++);
    sim.partition([['a'], ['b']]);
    sim.runFor(2_000);
    expect(pongs).toBe(0);
    sim.heal();
    expect(sim.runUntil(() => pongs > 0, 2_000)).toBe(true);
  });

  it('an interceptor rewrites what a Byzantine node sends', () => {
    const sim = twoNodes(3);
    sim.setInterceptor('b', () => []); // b never answers
    let pongsForA = 0;
    sim.onOutput((node) => node === 'a' && pongsForA++);
    sim.runFor(2_000);
    expect(pongsForA).toBe(0);
  });

  it('runUntil stops at its time bound when the condition never holds', () => {
    const sim = twoNodes(4);
    const start = sim.nowMs;
    expect(sim.runUntil(() => false, 1_000)).toBe(false);
    expect(sim.nowMs).toBe(start + 1_000);
  });
});
