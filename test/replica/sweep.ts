/**
 * Randomised dissemination-tree runs, VOPR-style: one seed picks the world (replicas, fan-out,
 * roots, network loss and duplication, log bound), up to two Byzantine secondaries with random
 * behaviours, crashes and restarts and a partition during a fault phase; then a heal phase that
 * must converge. Safety (no correct replica accepts a false version) is checked at every
 * acceptance; at the end every correct replica must hold an exact suffix of the ring's history.
 *
 *   npx tsx test/replica/sweep.ts [firstSeed] [seedCount]     (long sweeps; test/ runs a few seeds)
 */
import type { Interceptor } from '../../sim/simulation.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import { Prng } from '../../sim/prng.ts';
import { behindClaimer, blockForger, forger, heartbeatForger, reorderer, withholder } from './byzantine.ts';
import { TreeSim } from './tree-harness.ts';

export interface SweepResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly problem: string | null;
  readonly replicas: number;
  readonly byzantine: readonly string[];
  readonly crashed: readonly string[];
  readonly virtualMs: number;
}

export function runSeed(seed: number): SweepResult {
  const r = new Prng(seed).fork('sweep');
  const world = new TreeSim({
    seed,
    replicaCount: 10 + r.int(21),
    fanOutMax: 2 + r.int(5),
    rootCount: 1 + r.int(3),
    versionCount: 12 + r.int(14),
    updateIntervalMs: 30 + r.int(70),
    network: { lossRate: r.float() * 0.08, duplicateRate: r.float() * 0.05 },
    logEntriesMax: r.chance(0.5) ? 3 + r.int(6) : undefined,
    // Sometimes every entry with a referenced block goes by reference (children fetch the blocks).
    inlineBlockBytesMax: r.chance(0.4) ? 1024 : undefined,
  });
  const ids = r.shuffle([...world.replicaIds]);
  const byzantine = ids.slice(0, r.int(3));
  const behaviours: ((w: TreeSim) => Interceptor<TreeMessage>)[] = [(w) => forger(w.aguid), () => withholder(), () => heartbeatForger(), () => reorderer(), () => behindClaimer(), () => blockForger()];
  for (const id of byzantine) {
    world.byzantine.add(id);
    world.sim.setInterceptor(id, r.pick(behaviours)(world));
  }
  // Fault phase: crashes, a partition of a few replicas, restarts.
  const crashed = ids.slice(byzantine.length, byzantine.length + r.int(4));
  const faultEndMs = world.startMs + world.history.length * world.updateIntervalMs * 0.7;
  world.sim.runFor(world.startMs + r.int(400));
  for (const id of crashed) world.sim.crash(id);
  const cut = ids.slice(byzantine.length + crashed.length, byzantine.length + crashed.length + r.int(3));
  if (cut.length > 0) world.sim.partition([cut]);
  world.sim.runUntil(() => false, Math.max(0, faultEndMs - world.sim.nowMs));
  world.sim.heal();
  for (const id of crashed) if (r.chance(0.7)) world.sim.restart(id);
  // Heal phase: everything correct and up must converge.
  const converged = world.runToConvergence(60_000);
  const correct = world.correctUpReplicas();
  const badSuffix = correct.find((id) => !world.holdsExactSuffix(id));
  const problem = world.violations[0] ?? (!converged ? 'no convergence' : badSuffix ? `${badSuffix} does not hold an exact suffix` : null);
  return { seed, ok: problem === null, problem, replicas: world.replicaIds.length, byzantine, crashed, virtualMs: Math.round(world.sim.nowMs) };
}

const invokedDirectly = process.argv[1]?.endsWith('sweep.ts');
if (invokedDirectly) {
  const first = Number(process.argv[2] ?? 1);
  const count = Number(process.argv[3] ?? 50);
  let failures = 0;
  for (let seed = first; seed < first + count; seed++) {
    const result = runSeed(seed);
    if (!result.ok) failures++;
    console.log(JSON.stringify(result));
  }
  console.log(`${count - failures}/${count} seeds passed`);
  process.exitCode = failures > 0 ? 1 : 0;
}
