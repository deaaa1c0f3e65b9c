/**
 * Key setup by a trusted dealer at cluster initialisation (Shamir sharing with Feldman
 * commitments). The ring secret x is f(0) of a random polynomial f of degree t−1; server i
 * (1-based) gets x_i = f(i). The commitments C_k = a_k·G2 are public: anyone derives server i's
 * verification key PK_i = Σ C_k·i^k, each server checks its own share against them, and the
 * ring public key is C_0. The dealer forgets everything after handing the shares out.
 */
import { assert } from '../assert.ts';
import { bytesEqual } from '../bytes.ts';
import { checkArgument } from '../errors.ts';
import { blsEngine } from './accelerator.ts';
import type { RandomSource } from '../machine.ts';
import { G2, g2FromBytes, g2ToBytes, publicKeyBytes, type G2Point } from './points.ts';
import {
  checkShareIndex,
  evaluatePolynomial,
  randomPolynomial,
  randomScalar,
  scalarFromBytes,
  scalarToBytes,
  shareIndexMax,
} from './scalar.ts';

/** One server's secret share: x_i as 32 big-endian bytes. Keep it secret; store it durably. */
export interface KeyShare {
  readonly index: number;
  readonly secretKey: Uint8Array;
}

/** What everyone may know about a ring key. */
export interface RingKeyPublic {
  /** Shares needed to sign (f+1 for a ring of 3f+1). */
  readonly threshold: number;
  /** The ring public key C_0 (96-byte compressed G2). Clients trust exactly this. */
  readonly publicKey: Uint8Array;
  /** Feldman commitments C_0..C_{t−1} (each 96 bytes). */
  readonly commitments: readonly Uint8Array[];
}

export interface DealtRingKey extends RingKeyPublic {
  readonly shareCount: number;
  /** shares[i−1] is server i's share. */
  readonly shares: readonly KeyShare[];
}

export function checkThreshold(shareCount: number, threshold: number): void {
  checkArgument(Number.isSafeInteger(shareCount) && shareCount >= 1 && shareCount <= shareIndexMax, 'n', `an integer in 1..${shareIndexMax}`);
  checkArgument(Number.isSafeInteger(threshold) && threshold >= 1 && threshold <= shareCount, 't', `an integer in 1..n (n = ${shareCount})`);
}

/** Deals a fresh ring key: n shares, any t of which sign. `random` must be secret in production. */
export function dealRingKey(random: RandomSource, shareCount: number, threshold: number): DealtRingKey {
  checkThreshold(shareCount, threshold);
  const secret = randomScalar(random);
  return dealSecret(random, secret, shareCount, threshold);
}

/** Shares a given secret (also the resharing dealer's step, where the secret is its own share). */
export function dealSecret(random: RandomSource, secret: bigint, shareCount: number, threshold: number): DealtRingKey {
  checkThreshold(shareCount, threshold);
  const coefficients = randomPolynomial(random, secret, threshold - 1);
  const commitments = coefficients.map((a) => g2BaseBytes(a));
  const shares: KeyShare[] = [];
  for (let i = 1; i <= shareCount; i++) {
    shares.push({ index: i, secretKey: scalarToBytes(evaluatePolynomial(coefficients, BigInt(i))) });
  }
  coefficients.fill(0n);
  return { threshold, publicKey: commitments[0]!, commitments, shareCount, shares };
}

/**
 * s·G2 compressed, on the installed engine when there is one: noble's first base multiplication
 * costs ~1 s of CPU (its precompute), paid by every ring server start that checks its share.
 */
export function g2BaseBytes(scalar: bigint): Uint8Array {
  const engine = blsEngine();
  return engine ? engine.g2MultiplyBase(scalar) : g2ToBytes(multiplyBase(scalar));
}

/** s·G2, with s = 0 giving the identity (noble's multiply refuses 0). */
export function multiplyBase(scalar: bigint): G2Point {
  return scalar === 0n ? G2.ZERO : G2.BASE.multiply(scalar);
}

/** Decodes commitments; null if any is malformed or there are none. Never throws. */
export function decodeCommitments(commitments: readonly Uint8Array[]): G2Point[] | null {
  if (!Array.isArray(commitments) || commitments.length === 0 || commitments.length > shareIndexMax) return null;
  const points: G2Point[] = [];
  for (const c of commitments) {
    const point = g2FromBytes(c);
    if (!point) return null;
    points.push(point);
  }
  return points;
}

/** Σ C_k·i^k by Horner's rule: only small-scalar multiplications, so it is cheap. */
export function evaluateCommitments(points: readonly G2Point[], index: number): G2Point {
  assert(points.length > 0, 'evaluateCommitments needs at least one commitment');
  const x = BigInt(index);
  let acc = points[points.length - 1]!;
  for (let k = points.length - 2; k >= 0; k--) acc = acc.multiplyUnsafe(x).add(points[k]!);
  return acc;
}

/** PK_i: the key server i's signature shares verify under (96 bytes). */
export function verificationKeyOf(index: number, commitments: readonly Uint8Array[]): Uint8Array {
  checkShareIndex(index, 'index');
  const points = decodeCommitments(commitments);
  checkArgument(points, 'commitments', `a non-empty list of valid ${publicKeyBytes}-byte G2 points`);
  return g2ToBytes(evaluateCommitments(points, index));
}

/** True iff x_i·G2 = Σ C_k·i^k: the share is the dealer's polynomial at i. Never throws on bad input. */
export function verifyKeyShare(share: KeyShare, commitments: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(share?.index) || share.index < 1 || share.index > shareIndexMax) return false;
  const secret = scalarFromBytes(share.secretKey);
  const points = decodeCommitments(commitments);
  if (secret === null || !points) return false;
  return bytesEqual(g2BaseBytes(secret), g2ToBytes(evaluateCommitments(points, share.index)));
}

/** The ring public key of a dealing, checked to be a valid point. */
export function ringPublicKeyOf(commitments: readonly Uint8Array[]): Uint8Array {
  const points = decodeCommitments(commitments);
  checkArgument(points, 'commitments', `a non-empty list of valid ${publicKeyBytes}-byte G2 points`);
  return commitments[0]!;
}
