// Threshold BLS signing (Boldyreva 2003; issue 4 "Threshold certificates"): shares verify alone
// under PK_i, any t combine to the same ring signature, t-1 cannot, and a bad share is caught and
// its sender named by the optimistic combine.
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../core/bytes.ts';
import { Prng } from '../../../sim/prng.ts';
import {
  PublicKeyVerifier,
  RingKeyVerifier,
  ThresholdNotReachedError,
  Fr,
  combineShares,
  g1ToBytes,
  lagrangeAtZero,
  scalarFromBytes,
  scalarToBytes,
  hashMessage,
  signShare,
  verificationKeyOf,
  verifySignature,
  verifySignatureShare,
  type SignatureShare,
} from './imports.ts';
import { ringKey } from './fixtures.ts';

const message = new TextEncoder().encode('batch 42');
const key = ringKey(11, 4, 2);
const hashed = hashMessage(message);
const shares = key.shares.map((s) => signShare(s, hashed));
const verifier = new RingKeyVerifier(key, 4);

/** Every k-subset of xs (small n only). */
function subsets<T>(xs: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (xs.length < k) return [];
  const [head, ...rest] = xs;
  return [...subsets(rest, k - 1).map((s) => [head!, ...s]), ...subsets(rest, k)];
}

describe('signature shares', () => {
  it('each share verifies under its own PK_i and not under another server\'s key', () => {
    expect(shares[0]!.signature).toHaveLength(48);
    expect(verifySignatureShare(verificationKeyOf(1, key.commitments), message, shares[0]!)).toBe(true);
    expect(verifier.verifyShare(hashed, shares[2]!)).toBe(true);
    expect(verifySignatureShare(verificationKeyOf(2, key.commitments), message, shares[0]!)).toBe(false);
    expect(verifier.verifyShare(hashed, { index: 2, signature: shares[0]!.signature })).toBe(false);
  });

  it('a share of another message does not verify, and hashing once equals hashing each time', () => {
    expect(signShare(key.shares[0]!, message).signature).toEqual(shares[0]!.signature);
    expect(verifier.verifyShare(new TextEncoder().encode('batch 43'), shares[0]!)).toBe(false);
  });
});

describe('combining shares', () => {
  it('any t of n (n=4, t=2) combine to the same signature bytes, which verify under the ring key', () => {
    const signatures = subsets(shares, 2).map((pair) => combineShares(2, pair));
    expect(signatures).toHaveLength(6);
    for (const s of signatures) expect(s).toEqual(signatures[0]);
    expect(verifySignature(key.publicKey, message, signatures[0]!)).toBe(true);
    expect(new PublicKeyVerifier(key.publicKey).verify(hashed, signatures[0]!)).toBe(true);
  });

  it('any t of n (n=7, t=3) agree too; order of the shares does not matter', () => {
    const key7 = ringKey(12, 7, 3);
    const s7 = key7.shares.map((s) => signShare(s, hashed));
    const a = combineShares(3, [s7[0]!, s7[3]!, s7[6]!]);
    const b = combineShares(3, [s7[5]!, s7[1]!, s7[2]!]);
    const c = combineShares(3, [s7[6]!, s7[0]!, s7[3]!]);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect(verifySignature(key7.publicKey, hashed, a)).toBe(true);
  });

  it('t-1 shares cannot make a valid signature (interpolating a degree-0 guess fails)', () => {
    const forged = combineShares(1, [shares[0]!]);
    expect(verifySignature(key.publicKey, hashed, forged)).toBe(false);
    expect(() => verifier.combine(hashed, [shares[0]!])).toThrow(ThresholdNotReachedError);
  });

  it('the ring signature is bound to the oceanstore DST: the same key with the default BLS tag does not verify', () => {
    const signature = verifier.combine(hashed, shares).signature;
    const otherDst = bls12_381.shortSignatures.hash(message);
    expect(verifySignature(key.publicKey, { kind: 'hashed-message', point: otherDst }, signature)).toBe(false);
  });
});

describe('optimistic combine (NOTES.md: combine first, verify once, then find the culprit)', () => {
  const badShare: SignatureShare = { index: 1, signature: shares[3]!.signature }; // valid point, wrong signer

  it('the fast path uses one pairing check and names no one', () => {
    const result = verifier.combine(hashed, [shares[2]!, shares[1]!, shares[0]!]);
    expect(result.pairingChecks).toBe(1);
    expect(result.badIndices).toEqual([]);
    expect(result.signerIndices).toEqual([3, 2]);
    expect(verifier.verify(hashed, result.signature)).toBe(true);
  });

  it('a bad share among the first t is detected, its sender named, and the signature still made from others', () => {
    const result = verifier.combine(hashed, [badShare, shares[1]!, shares[2]!]);
    expect(result.badIndices).toEqual([1]);
    expect(result.signerIndices).toEqual([2, 3]);
    expect(result.signature).toEqual(combineShares(2, [shares[1]!, shares[2]!]));
    expect(verifier.verify(hashed, result.signature)).toBe(true);
  });

  it('undecodable bytes are named bad without spending a pairing on them', () => {
    const garbage: SignatureShare = { index: 4, signature: new Uint8Array(48).fill(7) };
    const result = verifier.combine(hashed, [garbage, shares[0]!, shares[1]!]);
    expect(result.badIndices).toEqual([4]);
    expect(result.pairingChecks).toBe(1);
  });

  it('too many bad shares: ThresholdNotReachedError naming every bad sender', () => {
    const other = signShare(key.shares[2]!, new TextEncoder().encode('other'));
    try {
      verifier.combine(hashed, [badShare, other, shares[3]!]);
      expect.unreachable('combine should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(ThresholdNotReachedError);
      expect((error as ThresholdNotReachedError).badIndices).toEqual([1, 3]);
    }
  });

  it('duplicates of one index count once, and indices beyond n are ignored', () => {
    expect(() => verifier.combine(hashed, [shares[0]!, shares[0]!])).toThrow(ThresholdNotReachedError);
    const outsider: SignatureShare = { index: 9, signature: g1ToBytes(bls12_381.G1.Point.BASE) };
    expect(() => verifier.combine(hashed, [outsider, shares[0]!])).toThrow(ThresholdNotReachedError);
  });
});

describe('cross-checks and vectors', () => {
  it('the combined signature equals noble\'s plain BLS signature with the interpolated secret (differential)', () => {
    const lambdas = lagrangeAtZero([2, 4]);
    const secret = Fr.add(Fr.mul(lambdas[0]!, scalarFromBytes(key.shares[1]!.secretKey)!), Fr.mul(lambdas[1]!, scalarFromBytes(key.shares[3]!.secretKey)!));
    const plain = bls12_381.shortSignatures.sign(hashed.point, scalarToBytes(secret));
    expect(combineShares(2, [shares[1]!, shares[3]!])).toEqual(g1ToBytes(plain));
    expect(bls12_381.shortSignatures.verify(plain, hashed.point, key.publicKey)).toBe(true);
  });

  it('a fixed seed gives fixed bytes (guards the DST, encodings and dealing order)', () => {
    const vectorKey = ringKey(1, 4, 2);
    const m = new TextEncoder().encode('oceanstore ring certificate test vector');
    expect(toHex(vectorKey.publicKey)).toBe(
      'b1627e2d1adbad510622ed5da3fdd86c66516cd45aa4992a3a2d9da9548e8786b8b39d359de7c75b9c74627c78d73586183866735e378e6bf1a49e0012757b2164ef79ab7f16af050f085bb2aa6a22deafde2d830ca1b738afb18260f406624b',
    );
    expect(toHex(vectorKey.shares[0]!.secretKey)).toBe('0112b1fae114c081526b9d6e7183011985f7d02e9a5dc1a5b2efce88cc712a5e');
    expect(toHex(combineShares(2, vectorKey.shares.slice(0, 2).map((s) => signShare(s, m))))).toBe(
      '83cd5f2431fa929efd6294945476db1261f424113bc81d78ffc1b087a65f4141f20bafad159bebc5328280d012b4412d',
    );
  });
});

describe('batch verification of many signatures under one key', () => {
  const messages = [1, 2, 3, 4].map((i) => new TextEncoder().encode(`batch ${i}`));
  const signatures = messages.map((m) => combineShares(2, key.shares.slice(0, 2).map((k) => signShare(k, m))));
  const pk = new PublicKeyVerifier(key.publicKey);

  it('accepts a set of valid signatures with one combined check', () => {
    expect(pk.verifyMany(new Prng(1), messages.map((message, i) => ({ message, signature: signatures[i]! })))).toEqual([true, true, true, true]);
  });

  it('names exactly the bad ones, including two that would cancel in an unweighted sum', () => {
    // σ1+δ and σ2−δ sum to σ1+σ2: without secret weights the batch check would pass
    const delta = bls12_381.G1.Point.BASE.multiply(99n);
    const s1 = g1ToBytes(bls12_381.G1.Point.fromBytes(signatures[0]!).add(delta));
    const s2 = g1ToBytes(bls12_381.G1.Point.fromBytes(signatures[1]!).subtract(delta));
    const items = [
      { message: messages[0]!, signature: s1 },
      { message: messages[1]!, signature: s2 },
      { message: messages[2]!, signature: signatures[2]! },
      { message: messages[3]!, signature: new Uint8Array(48) },
    ];
    expect(pk.verifyMany(new Prng(2), items)).toEqual([false, false, true, false]);
  });
});

describe('combining several batches at once (combineMany)', () => {
  const msgs = [5, 6, 7, 8].map((i) => hashMessage(new TextEncoder().encode(`pipelined batch ${i}`)));
  const sharesOf = (m: (typeof msgs)[number]) => key.shares.map((k) => signShare(k, m));

  it('all good: every batch gets the same signature as combine() would give, from one shared check', () => {
    const batches = msgs.slice(0, 3).map((message) => ({ message, shares: sharesOf(message).slice(0, 2) }));
    const results = verifier.combineMany(new Prng(5), batches);
    results.forEach((r, i) => {
      expect(r).not.toBeInstanceOf(Error);
      const ok = r as Exclude<typeof r, Error>;
      expect(ok.pairingChecks).toBe(1);
      expect(ok.signature).toEqual(combineShares(2, batches[i]!.shares));
      expect(verifier.verify(msgs[i]!, ok.signature)).toBe(true);
    });
  });

  it('a bad share in one batch and too few shares in another are handled per batch', () => {
    const s2 = sharesOf(msgs[2]!);
    const batches = [
      { message: msgs[0]!, shares: sharesOf(msgs[0]!).slice(0, 2) },
      { message: msgs[1]!, shares: [{ index: 1, signature: s2[0]!.signature }, ...sharesOf(msgs[1]!).slice(1)] }, // share 1 signs the wrong message
      { message: msgs[2]!, shares: s2.slice(0, 1) },
      { message: msgs[3]!, shares: sharesOf(msgs[3]!).slice(2) },
    ];
    const results = verifier.combineMany(new Prng(6), batches);
    expect(results[0]).toMatchObject({ badIndices: [], signerIndices: [1, 2] });
    expect(results[1]).toMatchObject({ badIndices: [1], signerIndices: [2, 3] });
    expect(verifier.verify(msgs[1]!, (results[1] as { signature: Uint8Array }).signature)).toBe(true);
    expect(results[2]).toBeInstanceOf(ThresholdNotReachedError);
    expect(results[3]).toMatchObject({ badIndices: [], signerIndices: [3, 4] });
  });
});
