// Verifiable resharing (issue 10 "Verifiable resharing"; Pond §2 plans proactive refresh with an
// unchanged ring key): old members deal sub-shares of their shares with Feldman commitments, new
// members check, complain and combine; the ring public key never changes; old and new shares do
// not mix; a Byzantine dealer is detected and excluded without stopping the refresh.
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../sim/prng.ts';
import {
  RingKeyVerifier,
  ResharingError,
  ResharingTranscript,
  ThresholdNotReachedError,
  combineShares,
  dealResharing,
  hashMessage,
  signShare,
  verifyKeyShare,
  verifySignature,
  type KeyShare,
  type ResharingConfig,
} from './imports.ts';
import { ringKey } from './fixtures.ts';
import { runRound, type DealerFault } from './resharing-harness.ts';

const message = new TextEncoder().encode('certificate batch after refresh');
const hashed = hashMessage(message);

function signWith(shares: readonly KeyShare[]): Uint8Array {
  return combineShares(shares.length, shares.map((s) => signShare(s, hashed)));
}

describe('proactive refresh (same n and t)', () => {
  const oldKey = ringKey(31, 4, 2);
  const config: ResharingConfig = { epoch: 1, oldKey, oldShareCount: 4, newShareCount: 4, newThreshold: 2 };
  const { transcripts, newShares } = runRound(oldKey, config, {});
  const newKey = transcripts[0]!.newKey();

  it('keeps the ring public key, and every member derives the same new commitments', () => {
    expect(newKey.publicKey).toEqual(oldKey.publicKey);
    for (const t of transcripts) expect(t.newKey()).toEqual(newKey);
    expect(newKey.commitments[1]).not.toEqual(oldKey.commitments[1]);
  });

  it('gives every member a fresh share that verifies against the new commitments and differs from its old one', () => {
    for (const share of newShares) {
      expect(verifyKeyShare(share, newKey.commitments)).toBe(true);
      expect(share.secretKey).not.toEqual(oldKey.shares[share.index - 1]!.secretKey);
    }
  });

  it('signatures from t new shares verify under the unchanged public key', () => {
    expect(verifySignature(oldKey.publicKey, hashed, signWith([newShares[1]!, newShares[3]!]))).toBe(true);
  });

  it('t shares mixing old and new do not combine to a valid signature', () => {
    expect(verifySignature(oldKey.publicKey, hashed, signWith([oldKey.shares[0]!, newShares[1]!]))).toBe(false);
    expect(verifySignature(oldKey.publicKey, hashed, signWith([newShares[0]!, oldKey.shares[3]!]))).toBe(false);
    // and a verifier of the new epoch names the old share's sender as bad
    const verifier = new RingKeyVerifier(newKey, 4);
    try {
      verifier.combine(hashed, [signShare(oldKey.shares[0]!, hashed), signShare(newShares[1]!, hashed)]);
      expect.unreachable('an old share must not combine with a new one');
    } catch (error) {
      expect(error).toBeInstanceOf(ThresholdNotReachedError);
      expect((error as ThresholdNotReachedError).badIndices).toEqual([1]);
    }
    // (t old shares together still sign: the old polynomial is unchanged, which is why old
    // members must delete their old shares once the new epoch starts.)
  });
});

describe('membership change to a different n and t with Byzantine dealers', () => {
  const oldKey = ringKey(32, 4, 2); // f = 1 old ring; up to... here 3 of 4 dealers misbehave in some way
  const config: ResharingConfig = { epoch: 1, oldKey, oldShareCount: 4, newShareCount: 7, newThreshold: 3 };
  const faults: Record<number, DealerFault> = {
    2: { corruptFor: [5], answer: 'wrong' }, // bad sub-share and a bad public answer: disqualified
    3: { wrongSecret: true }, // deals a secret that is not its share: caught by D_0 != PK_3
    4: { corruptFor: [1], silentFor: [6], answer: 'honest' }, // misbehaves but answers complaints correctly
  };
  const { transcripts, members, newShares } = runRound(oldKey, config, faults, [[7, 1]]);
  const newKey = transcripts[0]!.newKey();

  it('detects the bad dealers and excludes them, in the same way for every member', () => {
    for (const t of transcripts) {
      expect(t.qualifiedDealers()).toEqual([1, 4]);
      expect(t.chosenDealers()).toEqual([1, 4]);
    }
    expect(members[4]!.hasValidSubShare(2)).toBe(false);
    expect(members[0]!.complaints()).toEqual([{ complainerIndex: 1, dealerIndex: 4 }]);
  });

  it('a false complaint against an honest dealer is answered publicly and does not exclude it', () => {
    expect(transcripts[0]!.revealedSubShare(1, 7)).not.toBeNull();
    expect(transcripts[0]!.qualifiedDealers()).toContain(1);
  });

  it('still completes: all 7 new shares verify, the public key is unchanged, any 3 new shares sign', () => {
    expect(newKey.publicKey).toEqual(oldKey.publicKey);
    expect(newKey.commitments).toHaveLength(3);
    for (const share of newShares) expect(verifyKeyShare(share, newKey.commitments)).toBe(true);
    const a = signWith([newShares[0]!, newShares[5]!, newShares[6]!]);
    expect(signWith([newShares[4]!, newShares[2]!, newShares[1]!])).toEqual(a);
    expect(verifySignature(oldKey.publicKey, hashed, a)).toBe(true);
    // old signatures and new ones are the same BLS signature: clients cannot tell the epochs apart by key
    expect(signWith([oldKey.shares[0]!, oldKey.shares[1]!])).toEqual(a);
  });

  it('2 new shares (below the new threshold) or old+new mixes do not sign', () => {
    expect(verifySignature(oldKey.publicKey, hashed, signWith([newShares[0]!, newShares[1]!]))).toBe(false);
    expect(verifySignature(oldKey.publicKey, hashed, signWith([oldKey.shares[0]!, newShares[1]!, newShares[2]!]))).toBe(false);
  });
});

describe('resharing failure and hygiene', () => {
  const oldKey = ringKey(33, 4, 2);
  const config: ResharingConfig = { epoch: 1, oldKey, oldShareCount: 4, newShareCount: 4, newThreshold: 2 };

  it('with fewer than t_old qualified dealers the round fails with a ResharingError naming them', () => {
    const faults: Record<number, DealerFault> = { 1: { silentFor: [2], answer: 'none' }, 2: { wrongSecret: true }, 3: { corruptFor: [1], answer: 'wrong' } };
    expect(() => runRound(oldKey, config, faults)).toThrow(new ResharingError('resharing needs 2 qualified dealers, has 1 ([4]); disqualified: [2, 3]'));
  });

  it('drops duplicate, out-of-range and unsolicited messages and counts them', () => {
    const t = new ResharingTranscript(config);
    const dealing = dealResharing(new Prng(5), config, oldKey.shares[0]!);
    expect(t.onCommitments(1, dealing.commitments)).toBe(true);
    expect(t.onCommitments(1, dealing.commitments)).toBe(false);
    expect(t.onCommitments(9, dealing.commitments)).toBe(false);
    expect(t.onComplaint({ complainerIndex: 0, dealerIndex: 1 })).toBe(false);
    expect(t.onComplaintResponse({ dealerIndex: 1, complainerIndex: 2, subShare: dealing.subShares[1]!.secretKey })).toBe(false);
    expect(t.droppedCount).toBe(4);
    expect(t.onCommitments(2, dealing.commitments.slice(0, 1))).toBe(false); // wrong length: disqualified
    expect(t.qualifiedDealers()).toEqual([1]);
  });
});
