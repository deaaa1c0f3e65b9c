// Randomised resharing rounds (issue 10 must-show, as a seeded sweep): with at most f Byzantine
// old members (any mix of bad sub-shares, silence, wrong or missing answers, dealing a wrong
// secret) and at most f Byzantine new members filing false complaints, every round completes,
// keeps the public key, excludes every dealer that cheated in public, and old shares do not mix
// with new ones. Runs per seed cost ~1 s of CPU, so CI runs two; set THRESHOLD_SWEEP_RUNS for more.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { combineShares, hashMessage, signShare, verifyKeyShare, verifySignature, type ResharingConfig } from './imports.ts';
import { ringKey } from './fixtures.ts';
import { runRound, type DealerFault } from './resharing-harness.ts';

const runs = Number(process.env['THRESHOLD_SWEEP_RUNS'] ?? 2);
const hashed = hashMessage(new TextEncoder().encode('sweep'));

const faultArb: fc.Arbitrary<DealerFault> = fc.record({
  corruptFor: fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { maxLength: 3 }),
  silentFor: fc.uniqueArray(fc.integer({ min: 1, max: 7 }), { maxLength: 2 }),
  answer: fc.constantFrom('honest' as const, 'wrong' as const, 'none' as const),
  wrongSecret: fc.boolean(),
});

describe('resharing under random Byzantine behaviour (seeded sweep)', () => {
  it('always completes with the same public key, and never lets old and new shares mix', () => {
    fc.assert(
      fc.property(
        fc.constantFrom([4, 2], [7, 3]),
        fc.integer({ min: 1, max: 4 }),
        faultArb,
        fc.tuple(fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 4 })),
        ([newShareCount, newThreshold], badDealer, fault, [falseComplainer, accused]) => {
          const oldKey = ringKey(51, 4, 2); // f = 1: one Byzantine dealer at most
          const config: ResharingConfig = { epoch: 1, oldKey, oldShareCount: 4, newShareCount: newShareCount!, newThreshold: newThreshold! };
          const complainer = Math.min(falseComplainer, newShareCount!);
          const { transcripts, newShares } = runRound(oldKey, config, { [badDealer]: fault }, [[complainer, accused]]);
          const cheatedInPublic = fault.wrongSecret || (fault.answer !== 'honest' && (fault.corruptFor!.some((j) => j <= newShareCount!) || fault.silentFor!.some((j) => j <= newShareCount!) || accused === badDealer));
          const qualified = transcripts[0]!.qualifiedDealers();
          expect(transcripts[1]!.qualifiedDealers()).toEqual(qualified);
          for (let d = 1; d <= 4; d++) if (d !== badDealer) expect(qualified).toContain(d);
          if (cheatedInPublic) expect(qualified).not.toContain(badDealer);
          const newKey = transcripts[0]!.newKey();
          expect(newKey.publicKey).toEqual(oldKey.publicKey);
          for (const share of newShares) expect(verifyKeyShare(share, newKey.commitments)).toBe(true);
          const signers = newShares.slice(-newThreshold!);
          expect(verifySignature(oldKey.publicKey, hashed, combineShares(newThreshold!, signers.map((s) => signShare(s, hashed))))).toBe(true);
          const mixed = [oldKey.shares[0]!, ...newShares.slice(1, newThreshold!)];
          expect(verifySignature(oldKey.publicKey, hashed, combineShares(newThreshold!, mixed.map((s) => signShare(s, hashed))))).toBe(false);
        },
      ),
      { numRuns: runs, seed: 20261122 },
    );
  });
});
