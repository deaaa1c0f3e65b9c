/**
 * The dissemination tree in the deterministic simulator (Pond, FAST 2003: the ring pushes
 * certified updates down a tree of secondary replicas; DESIGN.md "Dissemination tree").
 * Must-shows of issue 8: convergence of 50 secondaries at fan-out 4 to the ring's exact history;
 * delivery latency that follows tree depth, not replica count; Byzantine secondaries (forging,
 * reordering, withholding) that cannot make a correct descendant accept a false version, and
 * whose children re-parent and catch up; parent crashes healed with no gap.
 */
import { describe, expect, it } from 'vitest';
import type { ReplicaEvent } from '../../replica/events.ts';
import { behindClaimer, forger, heartbeatForger, reorderer, withholder } from './byzantine.ts';
import { TreeSim } from './tree-harness.ts';

const bound = 30_000; // virtual ms; every run below converges far sooner

/** Runs until every correct replica is attached, then picks the attached replica with the most descendants. */
function busiestInnerReplica(world: TreeSim): string {
  expect(world.sim.runUntil(() => world.correctUpReplicas().every((id) => world.replica(id)!.parentOf(world.aguid)!.isAttached), bound)).toBe(true);
  const descendants = (id: string): number => world.replica(id)!.childrenOf(world.aguid).reduce((n, c) => n + 1 + descendants(c), 0);
  const ranked = [...world.replicaIds].sort((a, b) => descendants(b) - descendants(a));
  expect(descendants(ranked[0]!)).toBeGreaterThan(0);
  return ranked[0]!;
}

/** Who left `parent`, and why. */
function detachesFrom(world: TreeSim, parent: string): { child: string; reason: string }[] {
  const out: { child: string; reason: string }[] = [];
  for (const { nodeId, event } of world.events) {
    const e = event as ReplicaEvent;
    if (e.kind === 'detached' && e.parent === parent) out.push({ child: nodeId, reason: e.reason });
  }
  return out;
}

describe('dissemination tree: convergence', () => {
  it('50 secondaries at fan-out 4 converge to the ring exact history (every version, VGUID and certificate)', () => {
    const world = new TreeSim({ seed: 11, replicaCount: 50, fanOutMax: 4, versionCount: 24 });
    expect(world.runToConvergence(bound)).toBe(true);
    expect(world.violations).toEqual([]);
    for (const id of world.replicaIds) expect(world.holdsExactHistory(id), id).toBe(true);
    // Fan-out is bounded everywhere, so the tree really is a tree of depth about log4(50).
    const depths = world.replicaIds.map((id) => world.depthOf(id));
    expect(Math.max(...depths)).toBeLessThanOrEqual(5);
    for (const id of world.replicaIds) expect(world.replica(id)!.childrenOf(world.aguid).length).toBeLessThanOrEqual(4);
    expect(world.root('ring-0')!.childrenOf(world.aguid).length).toBeLessThanOrEqual(4);
  });

  it('converges over a lossy, duplicating network with several ring roots', () => {
    const world = new TreeSim({ seed: 12, replicaCount: 30, rootCount: 4, versionCount: 20, network: { lossRate: 0.05, duplicateRate: 0.05 } });
    expect(world.runToConvergence(bound)).toBe(true);
    expect(world.violations).toEqual([]);
    for (const id of world.replicaIds) expect(world.holdsExactHistory(id), id).toBe(true);
  });

  it('is deterministic: one seed, one trace', () => {
    const run = (): string => {
      const world = new TreeSim({ seed: 13, replicaCount: 12, versionCount: 6 });
      world.runToConvergence(bound);
      return world.sim.traceHash();
    };
    expect(run()).toBe(run());
  });

  it('latency to reach every replica follows tree depth, not replica count', () => {
    const measure = (replicaCount: number, fanOutMax: number): { latencyMs: number; depth: number } => {
      const world = new TreeSim({ seed: 14, replicaCount, fanOutMax, versionCount: 12, network: { delayMsMin: 5, delayMsMax: 5 } });
      expect(world.runToConvergence(bound)).toBe(true);
      // Steady state: versions published after the tree formed.
      const latencies = [6, 7, 8, 9, 10, 11].map((v) => world.latencyToAllMs(v));
      return { latencyMs: Math.max(...latencies), depth: Math.max(...world.replicaIds.map((id) => world.depthOf(id))) };
    };
    const small = measure(12, 4);
    const large = measure(64, 4);
    const deep = measure(12, 1); // a chain: depth = count
    // With 5 ms links, one hop costs 5 ms plus at most one 10 ms tick of nothing: latency ~ 5 ms x depth.
    for (const m of [small, large, deep]) {
      expect(m.latencyMs).toBeGreaterThanOrEqual(5 * m.depth);
      expect(m.latencyMs).toBeLessThanOrEqual(5 * m.depth + 1);
    }
    // 5x the replicas costs about one or two extra levels, not 5x the time...
    expect(large.depth - small.depth).toBeLessThanOrEqual(3);
    expect(large.latencyMs).toBeLessThan(3 * small.latencyMs);
    // ...while the same 12 replicas in a chain take as long as the chain is deep.
    expect(deep.depth).toBe(12);
    expect(deep.latencyMs).toBeGreaterThan(2 * small.latencyMs);
  });
});

describe('dissemination tree: Byzantine secondaries', () => {
  const cases = [
    { name: 'forges updates, certificates and blocks', seed: 21, make: (w: TreeSim) => forger(w.aguid), reason: 'lied: ' },
    { name: 'withholds updates but forwards heartbeats', seed: 22, make: () => withholder(), reason: 'withholding' },
    { name: 'corrupts heartbeats', seed: 23, make: () => heartbeatForger(), reason: 'lied: heartbeat' },
    { name: 'withholds updates and claims to lack them too', seed: 25, make: () => behindClaimer(), reason: 'parent-behind' },
    { name: 'reorders updates', seed: 24, make: () => reorderer(), reason: null },
  ];
  for (const c of cases) {
    it(`a secondary that ${c.name} cannot make a correct descendant accept a false version; the tree heals`, () => {
      const world = new TreeSim({ seed: c.seed, replicaCount: 30, versionCount: 20, updateIntervalMs: 60 });
      const liar = busiestInnerReplica(world);
      const children = world.replica(liar)!.childrenOf(world.aguid);
      world.byzantine.add(liar);
      world.sim.setInterceptor(liar, c.make(world));
      expect(world.runToConvergence(bound)).toBe(true);
      // Safety was checked at every acceptance of every correct replica.
      expect(world.violations).toEqual([]);
      for (const id of world.correctUpReplicas()) expect(world.holdsExactHistory(id), id).toBe(true);
      if (c.reason !== null) {
        // Every child it had left it, for the reason the behaviour gives away.
        const left = detachesFrom(world, liar);
        for (const child of children) expect(left.some((e) => e.child === child && e.reason.startsWith(c.reason!)), child).toBe(true);
        // Every former child now hangs below someone else, and nobody correct is the liar's child.
        for (const child of children) expect(world.replica(child)!.parentOf(world.aguid)!.parentId, child).not.toBe(liar);
        for (const id of world.correctUpReplicas()) expect(world.replica(id)!.parentOf(world.aguid)!.parentId).not.toBe(liar);
      }
      if (c.name.startsWith('forges')) {
        const rejected = world.events.filter((e) => e.event.kind === 'rejected' && e.event.from === liar);
        expect(rejected.length).toBeGreaterThanOrEqual(children.length);
      }
    });
  }
});

describe('dissemination tree: parent crash', () => {
  it('children of a crashed parent re-attach elsewhere and catch up with no gap; the parent rejoins after restart', () => {
    const world = new TreeSim({ seed: 31, replicaCount: 30, versionCount: 24, updateIntervalMs: 60 });
    const parent = busiestInnerReplica(world);
    const orphans = world.replica(parent)!.childrenOf(world.aguid);
    world.sim.runFor(300);
    world.sim.crash(parent);
    expect(world.runToConvergence(bound)).toBe(true);
    for (const id of orphans) {
      expect(world.replica(id)!.parentOf(world.aguid)!.parentId).not.toBe(parent);
      expect(world.holdsExactHistory(id), id).toBe(true);
    }
    expect(detachesFrom(world, parent).some((e) => e.reason === 'silent')).toBe(true);
    world.sim.restart(parent);
    expect(world.sim.runUntil(() => world.converged(world.replicaIds), bound)).toBe(true);
    expect(world.holdsExactHistory(parent)).toBe(true);
    expect(world.violations).toEqual([]);
  });

  it('children of a crashed ring server (a root) move to another root and catch up with no gap', () => {
    const world = new TreeSim({ seed: 33, replicaCount: 20, rootCount: 2, versionCount: 24, updateIntervalMs: 60 });
    expect(world.sim.runUntil(() => world.correctUpReplicas().every((id) => world.replica(id)!.parentOf(world.aguid)!.isAttached), bound)).toBe(true);
    const orphans = world.replicaIds.filter((id) => world.replica(id)!.parentOf(world.aguid)!.parentId === 'ring-0');
    expect(orphans.length).toBeGreaterThan(0);
    world.sim.crash('ring-0');
    expect(world.runToConvergence(bound)).toBe(true);
    for (const id of orphans) expect(world.replica(id)!.parentOf(world.aguid)!.parentId).not.toBe('ring-0');
    for (const id of world.replicaIds) expect(world.holdsExactHistory(id), id).toBe(true);
    expect(world.violations).toEqual([]);
  });

  it('survives crashing a quarter of the replicas mid-stream', () => {
    const world = new TreeSim({ seed: 32, replicaCount: 40, versionCount: 30, updateIntervalMs: 50 });
    busiestInnerReplica(world);
    world.sim.runFor(400);
    const victims = world.sim.random.fork('victims').shuffle([...world.replicaIds]).slice(0, 10);
    for (const id of victims) world.sim.crash(id);
    expect(world.runToConvergence(bound)).toBe(true);
    for (const id of world.correctUpReplicas()) expect(world.holdsExactHistory(id), id).toBe(true);
    expect(world.violations).toEqual([]);
  });
});

describe('dissemination tree: bounded logs', () => {
  it('a late joiner below members that kept only recent updates catches up from a snapshot, then follows', () => {
    const world = new TreeSim({ seed: 51, replicaCount: 20, versionCount: 30, updateIntervalMs: 40, logEntriesMax: 4 });
    expect(world.sim.runUntil(() => world.sim.nowMs > world.startMs + 20 * world.updateIntervalMs && world.converged(), bound)).toBe(true);
    world.addReplica('late');
    expect(world.runToConvergence(bound)).toBe(true);
    // The snapshot can overtake the attach-ok (links reorder): wait for that too before asking the depth.
    expect(world.sim.runUntil(() => world.replica('late')!.parentOf(world.aguid)!.isAttached, 1000)).toBe(true);
    const copy = world.replica('late')!.copyOf(world.aguid)!;
    // Root full: it joined below a secondary, which could not replay from version 0.
    expect(world.depthOf('late')).toBeGreaterThan(1);
    expect(copy.snapshotsInstalled).toBe(1);
    expect(copy.log.firstVersion).toBeGreaterThan(0);
    for (const id of world.replicaIds) expect(world.holdsExactSuffix(id), id).toBe(true);
    expect(world.violations).toEqual([]);
  });
});

describe('dissemination tree: real threshold BLS certificates', () => {
  it('members verify real BLS-signed certificates and heartbeats and converge', () => {
    const world = new TreeSim({ seed: 41, replicaCount: 6, versionCount: 6, signer: 'bls', heartbeatMs: 400, updateIntervalMs: 100 });
    expect(world.runToConvergence(bound)).toBe(true);
    for (const id of world.replicaIds) expect(world.holdsExactHistory(id), id).toBe(true);
  }, 60_000);
});
