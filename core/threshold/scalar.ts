/**
 * Arithmetic over Fr, the scalar field of BLS12-381: random scalars, polynomials (Shamir
 * sharing), and Lagrange coefficients at zero. Server indices are small positive integers
 * (1..n); index 0 is the secret itself, so it is never handed out.
 */
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { assert } from '../assert.ts';
import type { RandomSource } from '../machine.ts';
import { checkArgument } from '../errors.ts';

export const Fr = bls12_381.fields.Fr;
export const scalarBytes = 32;
/** Enough for any ring this module is meant for; keeps every loop and allocation bounded. */
export const shareIndexMax = 1024;

/** A uniform non-zero scalar: 48 random bytes reduced mod r (bias < 2^-128). */
export function randomScalar(random: RandomSource): bigint {
  for (let attempt = 0; attempt < 8; attempt++) {
    const wide = random.bytes(48);
    assert(wide.length === 48, 'RandomSource.bytes returned the wrong length');
    let value = 0n;
    for (const b of wide) value = (value << 8n) | BigInt(b);
    const reduced = Fr.create(value);
    if (reduced !== 0n) return reduced;
  }
  throw new Error('RandomSource produced zero eight times in a row: it is broken');
}

/** Coefficients a_0..a_{degree}, a_0 = `constant`, the rest random. */
export function randomPolynomial(random: RandomSource, constant: bigint, degree: number): bigint[] {
  assert(Number.isSafeInteger(degree) && degree >= 0, 'polynomial degree must be a non-negative integer');
  const coefficients = [Fr.create(constant)];
  for (let k = 1; k <= degree; k++) coefficients.push(randomScalar(random));
  return coefficients;
}

/** f(x) by Horner's rule. */
export function evaluatePolynomial(coefficients: readonly bigint[], x: bigint): bigint {
  let acc = 0n;
  for (let k = coefficients.length - 1; k >= 0; k--) acc = Fr.add(Fr.mul(acc, x), coefficients[k]!);
  return acc;
}

export function checkShareIndex(index: number, argument: string): void {
  checkArgument(Number.isSafeInteger(index) && index >= 1 && index <= shareIndexMax, argument, `an integer in 1..${shareIndexMax}`);
}

/**
 * λ_i = Π_{j≠i} j / (j − i) for every i in `indices`, so that f(0) = Σ λ_i f(i) for any
 * polynomial of degree < indices.length. Indices must be distinct and in 1..shareIndexMax.
 */
export function lagrangeAtZero(indices: readonly number[]): bigint[] {
  const seen = new Set<number>();
  for (const i of indices) {
    checkShareIndex(i, 'indices[]');
    checkArgument(!seen.has(i), 'indices', 'distinct share indices');
    seen.add(i);
  }
  return indices.map((i) => {
    let numerator = 1n;
    let denominator = 1n;
    for (const j of indices) {
      if (j === i) continue;
      numerator = Fr.mul(numerator, BigInt(j));
      denominator = Fr.mul(denominator, Fr.sub(BigInt(j), BigInt(i)));
    }
    return Fr.div(numerator, denominator);
  });
}

export function scalarToBytes(value: bigint): Uint8Array {
  return Fr.toBytes(Fr.create(value));
}

/** Strict: 32 bytes, big-endian, canonical (< r). Returns null on anything else. */
export function scalarFromBytes(bytes: Uint8Array): bigint | null {
  if (!(bytes instanceof Uint8Array) || bytes.length !== scalarBytes) return null;
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return value < Fr.ORDER ? value : null;
}
