/** A few fixed seeds of the randomised tree sweep (test/replica/sweep.ts runs long sweeps). */
import { describe, expect, it } from 'vitest';
import { runSeed } from './sweep.ts';

describe('randomised dissemination-tree runs (Byzantine members, crashes, partitions, loss), fixed seeds', () => {
  for (const seed of [3, 11]) {
    it(`seed ${seed}: safety at every acceptance, then every correct replica converges to an exact suffix`, () => {
      const result = runSeed(seed);
      expect(result.problem).toBeNull();
      expect(result.ok).toBe(true);
    });
  }
});
