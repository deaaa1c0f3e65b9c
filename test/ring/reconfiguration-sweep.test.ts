/**
 * Randomized reconfigurations (test/ring/reconfiguration-sweep.ts): a few seeds in every run; a
 * longer sweep with RECONFIGURATION_SWEEP=FIRST:COUNT (or RECONFIGURATION_SEEDS=A,B,C), and
 * RECONFIGURATION_F=2 (n = 7) or RECONFIGURATION_ROUNDS=2 (two rounds in a row); failures are
 * printed with their plan and state.
 * Seed 49 lost certificates of writes executed just before the switch until session 31 (the
 * rebuild gave them up once its bounded wait ran out; it fails without that change). Seeds 21 and
 * 70 lost them too in a first version of this harness whose clients kept the old member list (70
 * with no crash at all: a leaving member that drops most of what it sends, and 5 % loss); 6 leaves
 * the replaced member cut off at the switch (it kept its share until session 32, when a leaving
 * member began to delete it once it has executed the install); 86 cuts it off before the install,
 * the known limit that remains. With two rounds, seed 20 stalled a restarted member
 * for good until session 32 (the pending switch was the newest epoch's, not the first list change
 * after the list it ran); 70 orders the second round before the first's epoch started (refused,
 * then ordered again). With f = 2, seed 20 has two Byzantine nodes (one the replaced member, both
 * dealing bad sub-shares) and crashes of both at once; 19 a Byzantine node down with a correct one.
 */
import { describe, expect, it } from 'vitest';
import { runReconfigurationSeed, type SweepOptions } from './reconfiguration-sweep.ts';

const listed = process.env.RECONFIGURATION_SEEDS?.split(',').map(Number);
const range = process.env.RECONFIGURATION_SWEEP?.split(':').map(Number);
const sweep = listed ?? (range && Array.from({ length: range[1]! }, (_, i) => range[0]! + i));
const sweepOptions: SweepOptions = {
  f: Number(process.env.RECONFIGURATION_F ?? 1),
  rounds: process.env.RECONFIGURATION_ROUNDS === '2' ? 2 : 1,
};

function run(seeds: readonly number[], options: SweepOptions, expectedLimits: readonly number[] | null): void {
  const failures: string[] = [];
  const limits: number[] = [];
  for (const seed of seeds) {
    const r = runReconfigurationSeed(seed, options);
    if (sweep) console.log(`seed ${seed}: ${r.failure ? 'FAIL' : r.limit ? 'limit' : 'ok'} — ${r.plan}${r.failure ? `\n  ${r.failure}` : r.limit ? `\n  ${r.limit}` : ''}`);
    if (r.failure) failures.push(`seed ${seed} (${r.plan}): ${r.failure}`);
    if (r.limit) limits.push(seed);
  }
  expect(failures).toEqual([]);
  // The known limit is reached where it is expected, and nowhere else (a change either way is news).
  if (expectedLimits) expect(limits).toEqual(expectedLimits);
}

describe('randomized reconfiguration under faults (simulation)', () => {
  if (sweep) {
    it(`sweep of seeds ${sweep[0]}..${sweep.at(-1)} (f = ${sweepOptions.f}, ${sweepOptions.rounds} round(s))`, () => run(sweep, sweepOptions, null), 3_600_000);
    return;
  }
  it('f = 1, seeds 21, 49, 70, 6, 86: refresh or replace with crashes, loss and a Byzantine node; every write completes and is certified, the ring key holds', () => {
    run([21, 49, 70, 6, 86], {}, [86]);
  }, 120_000);
  it('f = 1, two rounds in a row, seeds 20, 70: a member restarted inside the second round switches to the list the first brought in; a second round ordered too early is refused and ordered again', () => {
    run([20, 70], { rounds: 2 }, []);
  }, 120_000);
  it('f = 2 (n = 7), seeds 19, 20: two Byzantine nodes, or one and a correct node, down together', () => {
    run([19, 20], { f: 2 }, []);
  }, 120_000);
});
