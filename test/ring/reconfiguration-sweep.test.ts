/**
 * Randomized reconfigurations (test/ring/reconfiguration-sweep.ts): a few seeds in every run; a
 * longer sweep with RECONFIGURATION_SWEEP=FIRST:COUNT (failures printed with their plan and state).
 * Seed 49 lost certificates of writes executed just before the switch until session 31 (the
 * rebuild gave them up once its bounded wait ran out; it fails without that change). Seeds 21 and
 * 70 lost them too in a first version of this harness whose clients kept the old member list (70
 * with no crash at all: a leaving member that drops most of what it sends, and 5 % loss); 6 leaves
 * the replaced member cut off at the switch.
 */
import { describe, expect, it } from 'vitest';
import { runReconfigurationSeed } from './reconfiguration-sweep.ts';

const sweep = process.env.RECONFIGURATION_SWEEP?.split(':').map(Number);
const seeds = sweep ? Array.from({ length: sweep[1]! }, (_, i) => sweep[0]! + i) : [21, 49, 70, 6];

describe('randomized reconfiguration under faults (simulation)', () => {
  it(`seeds ${sweep ? `${seeds[0]}..${seeds.at(-1)}` : seeds.join(', ')}: refresh or replace with crashes, loss and a Byzantine node; every write completes and is certified, the ring key holds`, () => {
    const failures: string[] = [];
    const limits: number[] = [];
    for (const seed of seeds) {
      const r = runReconfigurationSeed(seed);
      if (sweep) console.log(`seed ${seed}: ${r.failure ? 'FAIL' : r.limit ? 'limit' : 'ok'} — ${r.plan}${r.failure ? `\n  ${r.failure}` : r.limit ? `\n  ${r.limit}` : ''}`);
      if (r.failure) failures.push(`seed ${seed} (${r.plan}): ${r.failure}`);
      if (r.limit) limits.push(seed);
    }
    expect(failures).toEqual([]);
    // The known limit is reached where it is expected, and nowhere else (a change either way is news).
    if (!sweep) expect(limits).toEqual([6]);
  }, sweep ? 3_600_000 : 120_000);
});
