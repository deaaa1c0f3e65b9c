/**
 * Threshold BLS signing (Boldyreva): server i signs σ_i = x_i·H(m); σ_i verifies alone under
 * PK_i; any t valid shares combine by Lagrange interpolation at 0 into σ = x·H(m), an ordinary
 * BLS signature under the ring key, byte-identical whichever t servers signed.
 *
 * Combining is optimistic (NOTES.md): combine the first t shares and verify once; only when
 * that fails check every share to name the bad senders and retry with good ones. In the normal
 * case a certificate costs one pairing check instead of t + 1.
 */
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { mulAddUnsafe, pippenger } from '@noble/curves/abstract/curve.js';
import { assert } from '../assert.ts';
import { checkArgument } from '../errors.ts';
import type { RandomSource } from '../machine.ts';
import { blsEngine } from './accelerator.ts';
import { decodeCommitments, evaluateCommitments, type KeyShare, type RingKeyPublic } from './dealer.ts';
import { ThresholdNotReachedError } from './errors.ts';
import {
  G1,
  G2,
  g1FromBytes,
  g1ToBytes,
  g2FromBytes,
  g2ToBytes,
  hashedBytesOf,
  hashedPointOf,
  hashMessage,
  publicKeyBytes,
  type G1Point,
  type G2Point,
  type HashedMessage,
} from './points.ts';
import { checkShareIndex, lagrangeAtZero, scalarFromBytes, shareIndexMax } from './scalar.ts';

/** One server's signature share: 48-byte compressed G1 point, tagged with the signer's index. */
export interface SignatureShare {
  readonly index: number;
  readonly signature: Uint8Array;
}

type Precompute = ReturnType<typeof bls12_381.utils.calcPairingPrecomputes>;
const Fp12 = bls12_381.fields.Fp12;
let g2BasePrecompute: Precompute | undefined;

/** Signs with one key share. Pass a HashedMessage when the same message is signed and checked again. */
export function signShare(share: KeyShare, message: Uint8Array | HashedMessage): SignatureShare {
  checkShareIndex(share?.index, 'share.index');
  const secret = scalarFromBytes(share.secretKey);
  checkArgument(secret !== null && secret !== 0n, 'share.secretKey', '32 canonical big-endian bytes of a non-zero scalar');
  const engine = blsEngine();
  if (engine) return { index: share.index, signature: engine.g1Multiply(hashedBytesOf(message), secret) };
  const point = hashedPointOf(message).multiply(secret);
  return { index: share.index, signature: g1ToBytes(point) };
}

/**
 * e(σ, G2) = e(H(m), PK) as one Miller loop over two precomputed G2 points. The precomputes for
 * a fixed key are made once; see RingKeyVerifier.
 */
function pairingCheck(signature: G1Point, hashed: G1Point, negatedKey: Precompute): boolean {
  if (signature.is0() || hashed.is0()) return false; // the pairing is undefined there: never valid
  g2BasePrecompute ??= bls12_381.utils.calcPairingPrecomputes(G2.BASE);
  const s = signature.toAffine();
  const h = hashed.toAffine();
  const f = bls12_381.millerLoopBatch([
    [g2BasePrecompute, s.x, s.y],
    [negatedKey, h.x, h.y],
  ]);
  return Fp12.eql(Fp12.finalExponentiate(f), Fp12.ONE);
}

function precomputeNegated(key: G2Point): Precompute {
  return bls12_381.utils.calcPairingPrecomputes(key.negate());
}

/** Plain BLS verification under any 96-byte G2 key (the ring public key). Never throws. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array | HashedMessage, signature: Uint8Array): boolean {
  const engine = blsEngine();
  if (engine) return signature instanceof Uint8Array && publicKey instanceof Uint8Array && engine.verify(signature, hashedBytesOf(message), publicKey);
  const key = g2FromBytes(publicKey);
  const sig = g1FromBytes(signature);
  if (!key || !sig) return false;
  return pairingCheck(sig, hashedPointOf(message), precomputeNegated(key));
}

/** Checks one share against its signer's verification key PK_i. Never throws. */
export function verifySignatureShare(verificationKey: Uint8Array, message: Uint8Array | HashedMessage, share: SignatureShare): boolean {
  return verifySignature(verificationKey, message, share?.signature);
}

/**
 * Lagrange-combines shares at 0. Takes exactly the first `threshold` distinct valid-looking
 * shares; does not verify them (see combineOptimistic). Throws ThresholdNotReachedError when
 * fewer than `threshold` decodable shares with distinct indices are given.
 */
export function combineShares(threshold: number, shares: readonly SignatureShare[]): Uint8Array {
  checkArgument(Number.isSafeInteger(threshold) && threshold >= 1, 'threshold', 'a positive integer');
  const engine = blsEngine();
  if (engine) {
    const first = firstDistinct(shares, shareIndexMax, threshold);
    const combined = first && engine.g1MultiplyAdd(first.map((s) => s.signature), lagrangeAtZero(first.map((s) => s.index)));
    if (combined) return combined;
  }
  const picked = decodeDistinct(shares, shareIndexMax);
  if (picked.good.length < threshold) {
    throw new ThresholdNotReachedError(`need ${threshold} distinct decodable shares, got ${picked.good.length}`, picked.bad);
  }
  return g1ToBytes(combinePoints(picked.good.slice(0, threshold)));
}

/** The first `count` shares with distinct in-range indices (undecoded), or null if there are fewer. */
function firstDistinct(shares: readonly SignatureShare[], indexMax: number, count: number): SignatureShare[] | null {
  checkArgument(Array.isArray(shares), 'shares', 'an array of signature shares');
  const out: SignatureShare[] = [];
  const seen = new Set<number>();
  for (const share of shares) {
    const index = share?.index;
    if (!Number.isSafeInteger(index) || index < 1 || index > indexMax || seen.has(index) || !(share.signature instanceof Uint8Array)) continue;
    seen.add(index);
    out.push(share);
    if (out.length === count) return out;
  }
  return null;
}

interface DecodedShare {
  readonly index: number;
  readonly point: G1Point;
}

function combinePoints(shares: readonly DecodedShare[]): G1Point {
  const lambdas = lagrangeAtZero(shares.map((s) => s.index));
  return mulAddUnsafe(G1, shares.map((s) => s.point), lambdas);
}

/** Keeps the first share per index; undecodable shares and out-of-range indices are named bad. */
function decodeDistinct(shares: readonly SignatureShare[], indexMax: number): { good: DecodedShare[]; bad: number[] } {
  checkArgument(Array.isArray(shares), 'shares', 'an array of signature shares');
  const good: DecodedShare[] = [];
  const bad: number[] = [];
  const seen = new Set<number>();
  for (const share of shares) {
    const index = share?.index;
    if (!Number.isSafeInteger(index) || index < 1 || index > indexMax) continue;
    if (seen.has(index)) continue;
    seen.add(index);
    const point = g1FromBytes(share.signature);
    if (point) good.push({ index, point });
    else bad.push(index);
  }
  return { good, bad };
}

export interface CombineResult {
  /** The 48-byte ring signature; verifies under the ring public key. */
  readonly signature: Uint8Array;
  /** Servers whose shares failed verification (empty on the fast path). */
  readonly badIndices: readonly number[];
  /** Indices whose shares went into the signature. */
  readonly signerIndices: readonly number[];
  /** Pairing checks spent (1 on the fast path). */
  readonly pairingChecks: number;
}

/**
 * Verifies signatures under one fixed G2 key (what a client holds: just the ring public key),
 * with the pairing precomputes for that key made once in the constructor.
 */
export class PublicKeyVerifier {
  readonly publicKey: Uint8Array;
  private readonly precompute: Precompute;

  constructor(publicKey: Uint8Array) {
    const point = g2FromBytes(publicKey);
    checkArgument(point, 'publicKey', `a valid ${publicKeyBytes}-byte compressed G2 point`);
    this.publicKey = publicKey;
    this.precompute = precomputeNegated(point);
  }

  /** True iff `signature` is valid for `message` under this key. Never throws. */
  verify(message: Uint8Array | HashedMessage, signature: Uint8Array): boolean {
    const engine = blsEngine();
    if (engine) return signature instanceof Uint8Array && engine.verify(signature, hashedBytesOf(message), this.publicKey);
    const sig = g1FromBytes(signature);
    return sig !== null && pairingCheck(sig, hashedPointOf(message), this.precompute);
  }

  /**
   * Checks many signatures under this one key with a single pairing check, by a random linear
   * combination: e(Σ r_i σ_i, G2) = e(Σ r_i H(m_i), PK) with secret 64-bit r_i from `random`
   * (a forger who does not know the r_i passes with probability about 2^-64). Returns one
   * verdict per item; on a failed combined check it falls back to checking each one, so the
   * answer is always exact. Never throws on bad items.
   */
  verifyMany(random: RandomSource, items: readonly { message: Uint8Array | HashedMessage; signature: Uint8Array }[]): boolean[] {
    checkArgument(Array.isArray(items), 'items', 'an array of { message, signature }');
    if (blsEngine()) return items.map((item) => this.verify(item?.message, item?.signature));
    const decoded = items.map((item) => g1FromBytes(item?.signature));
    const live = items.flatMap((item, i) => (decoded[i] ? [{ i, sig: decoded[i]!, hashed: hashedPointOf(item.message) }] : []));
    const verdicts = decoded.map(() => false);
    if (live.length === 0) return verdicts;
    if (live.length > 1 && weightedCheck(random, live, this.precompute)) {
      for (const x of live) verdicts[x.i] = true;
      return verdicts;
    }
    for (const x of live) verdicts[x.i] = pairingCheck(x.sig, x.hashed, this.precompute);
    return verdicts;
  }
}

/** e(Σ r_i σ_i, G2) = e(Σ r_i H_i, PK) for fresh secret weights r_i: one pairing for all. */
function weightedCheck(random: RandomSource, items: readonly { sig: G1Point; hashed: G1Point }[], negatedKey: Precompute): boolean {
  const weights = items.map(() => randomWeight(random));
  const sigSum = multiScalar(items.map((x) => x.sig), weights);
  const hashSum = multiScalar(items.map((x) => x.hashed), weights);
  return pairingCheck(sigSum, hashSum, negatedKey);
}

function randomWeight(random: RandomSource): bigint {
  const bytes = random.bytes(8);
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value === 0n ? 1n : value;
}

/** Strauss–Shamir for the few-point shapes, Pippenger beyond (NOTES.md). */
function multiScalar(points: G1Point[], scalars: bigint[]): G1Point {
  return points.length <= 4 ? mulAddUnsafe(G1, points, scalars) : pippenger(G1, points, scalars);
}

/**
 * The public side of a ring key with its expensive parts cached: decoded commitments, each
 * server's PK_i, and the pairing precomputes for the ring key and every PK_i used so far.
 * Build one per ring key and keep it; it holds no secrets.
 */
export class RingKeyVerifier {
  readonly threshold: number;
  readonly publicKey: Uint8Array;
  readonly shareCount: number;
  private readonly commitmentPoints: G2Point[];
  private readonly ringPrecompute: Precompute;
  private readonly shareKeys = new Map<number, Precompute>();
  private readonly shareKeyEncodings = new Map<number, Uint8Array>();

  constructor(key: RingKeyPublic, shareCount: number) {
    checkArgument(Number.isSafeInteger(shareCount) && shareCount >= 1, 'shareCount', 'a positive integer');
    checkArgument(key?.commitments?.length === key?.threshold, 'key', 'one commitment per coefficient (threshold of them)');
    checkArgument(key.threshold <= shareCount, 'key.threshold', `at most shareCount (${shareCount})`);
    const points = decodeCommitments(key.commitments);
    checkArgument(points, 'key.commitments', `valid ${publicKeyBytes}-byte G2 points`);
    this.threshold = key.threshold;
    this.shareCount = shareCount;
    this.publicKey = key.commitments[0]!;
    this.commitmentPoints = points;
    this.ringPrecompute = precomputeNegated(points[0]!);
  }

  /** True iff `signature` is the ring's signature of `message`. Never throws. */
  verify(message: Uint8Array | HashedMessage, signature: Uint8Array): boolean {
    const engine = blsEngine();
    if (engine) return signature instanceof Uint8Array && engine.verify(signature, hashedBytesOf(message), this.publicKey);
    const sig = g1FromBytes(signature);
    return sig !== null && pairingCheck(sig, hashedPointOf(message), this.ringPrecompute);
  }

  /** True iff `share` is server share.index's valid share of `message`. Never throws. */
  verifyShare(message: Uint8Array | HashedMessage, share: SignatureShare): boolean {
    const index = share?.index;
    if (!Number.isSafeInteger(index) || index < 1 || index > this.shareCount) return false;
    const engine = blsEngine();
    if (engine) return share.signature instanceof Uint8Array && engine.verify(share.signature, hashedBytesOf(message), this.shareKeyBytes(index));
    const sig = g1FromBytes(share.signature);
    return sig !== null && pairingCheck(sig, hashedPointOf(message), this.shareKeyPrecompute(index));
  }

  /**
   * Optimistic combine (see the file comment). Shares with indices outside 1..shareCount are
   * ignored; duplicates keep the first. Throws ThresholdNotReachedError, naming the bad senders,
   * when fewer than `threshold` valid shares are present.
   */
  combine(message: Uint8Array | HashedMessage, shares: readonly SignatureShare[]): CombineResult {
    const hashed: HashedMessage = message instanceof Uint8Array ? hashMessage(message) : message;
    const engine = blsEngine();
    if (engine) {
      const first = firstDistinct(shares, this.shareCount, this.threshold);
      const combined = first && engine.g1MultiplyAdd(first.map((s) => s.signature), lagrangeAtZero(first.map((s) => s.index)));
      if (first && combined && engine.verify(combined, hashedBytesOf(hashed), this.publicKey)) {
        return { signature: combined, badIndices: [], signerIndices: first.map((s) => s.index), pairingChecks: 1 };
      }
    }
    const { good, bad } = decodeDistinct(shares, this.shareCount);
    if (good.length >= this.threshold) {
      const first = good.slice(0, this.threshold);
      const combined = combinePoints(first);
      if (pairingCheck(combined, hashed.point, this.ringPrecompute)) {
        return { signature: g1ToBytes(combined), badIndices: bad, signerIndices: first.map((s) => s.index), pairingChecks: 1 };
      }
    }
    return this.combineSlowly(hashed, good, bad);
  }

  /**
   * Optimistic combine for several batches at once (a pipeline of batches waiting for their
   * certificates): combine each batch's first t shares, check all the combined signatures with
   * one weighted pairing check (see PublicKeyVerifier.verifyMany), and send only the batches that
   * fail through the per-batch and per-share checks. Returns, per batch, its result or the
   * ThresholdNotReachedError that combine() would have thrown. A shared check counts as one
   * pairing in every batch's `pairingChecks`.
   */
  combineMany(
    random: RandomSource,
    batches: readonly { message: Uint8Array | HashedMessage; shares: readonly SignatureShare[] }[],
  ): (CombineResult | ThresholdNotReachedError)[] {
    checkArgument(Array.isArray(batches), 'batches', 'an array of { message, shares }');
    const prepared = batches.map((batch) => {
      const hashed: HashedMessage = { kind: 'hashed-message', point: hashedPointOf(batch.message) };
      const { good, bad } = decodeDistinct(batch.shares, this.shareCount);
      const first = good.length >= this.threshold ? good.slice(0, this.threshold) : null;
      return { hashed, good, bad, first, combined: first ? combinePoints(first) : null };
    });
    const candidates = prepared.flatMap((p) => (p.combined ? [{ sig: p.combined, hashed: p.hashed.point }] : []));
    const allValid = candidates.length > 1 && weightedCheck(random, candidates, this.ringPrecompute);
    return prepared.map((p) => {
      if (p.combined && p.first && (allValid || pairingCheck(p.combined, p.hashed.point, this.ringPrecompute))) {
        return { signature: g1ToBytes(p.combined), badIndices: p.bad, signerIndices: p.first.map((s) => s.index), pairingChecks: allValid ? 1 : candidates.length > 1 ? 2 : 1 };
      }
      try {
        return this.combineSlowly(p.hashed, p.good, p.bad);
      } catch (error) {
        if (error instanceof ThresholdNotReachedError) return error;
        throw error;
      }
    });
  }

  private combineSlowly(hashed: HashedMessage, good: DecodedShare[], bad: number[]): CombineResult {
    const valid: DecodedShare[] = [];
    const badIndices = [...bad];
    let pairingChecks = good.length >= this.threshold ? 1 : 0;
    for (const share of good) {
      if (valid.length === this.threshold) break; // enough: later shares are not needed
      pairingChecks++;
      if (pairingCheck(share.point, hashed.point, this.shareKeyPrecompute(share.index))) valid.push(share);
      else badIndices.push(share.index);
    }
    if (valid.length < this.threshold) {
      throw new ThresholdNotReachedError(
        `need ${this.threshold} valid signature shares, got ${valid.length}; bad senders: [${badIndices.join(', ')}]`,
        badIndices,
      );
    }
    const combined = combinePoints(valid);
    // Valid shares of one polynomial always interpolate to the ring signature.
    assert(pairingCheck(combined, hashed.point, this.ringPrecompute), 'valid shares combined to an invalid signature');
    return { signature: g1ToBytes(combined), badIndices, signerIndices: valid.map((s) => s.index), pairingChecks: pairingChecks + 1 };
  }

  /** PK_i as bytes (for logs, and for peers that verify shares without a verifier). */
  verificationKey(index: number): Uint8Array {
    checkShareIndex(index, 'index');
    checkArgument(index <= this.shareCount, 'index', `at most shareCount (${this.shareCount})`);
    return g2ToBytes(evaluateCommitments(this.commitmentPoints, index));
  }

  private shareKeyBytes(index: number): Uint8Array {
    let bytes = this.shareKeyEncodings.get(index);
    if (!bytes) {
      bytes = g2ToBytes(evaluateCommitments(this.commitmentPoints, index));
      this.shareKeyEncodings.set(index, bytes);
    }
    return bytes;
  }

  private shareKeyPrecompute(index: number): Precompute {
    let pre = this.shareKeys.get(index);
    if (!pre) {
      pre = precomputeNegated(evaluateCommitments(this.commitmentPoints, index));
      this.shareKeys.set(index, pre);
    }
    return pre;
  }
}
