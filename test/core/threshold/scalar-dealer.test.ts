// Shamir sharing over Fr with Feldman commitments (Boldyreva 2003 key setup; issue 4 "Key setup").
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../sim/prng.ts';
import {
  Fr,
  G2,
  InvalidArgumentError,
  evaluatePolynomial,
  g2ToBytes,
  lagrangeAtZero,
  randomPolynomial,
  scalarFromBytes,
  scalarToBytes,
  verificationKeyOf,
  verifyKeyShare,
} from './imports.ts';
import { ringKey } from './fixtures.ts';

describe('Lagrange interpolation at 0', () => {
  it('any t distinct points of a degree t-1 polynomial give back f(0) (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 8 }), fc.uniqueArray(fc.integer({ min: 1, max: 64 }), { minLength: 8, maxLength: 8 }), (seed, t, indices) => {
        const poly = randomPolynomial(new Prng(seed), 12345n + BigInt(seed), t - 1);
        const chosen = indices.slice(0, t);
        const lambdas = lagrangeAtZero(chosen);
        let acc = 0n;
        chosen.forEach((i, n) => (acc = Fr.add(acc, Fr.mul(lambdas[n]!, evaluatePolynomial(poly, BigInt(i))))));
        expect(acc).toBe(Fr.create(12345n + BigInt(seed)));
      }),
      { numRuns: 200 },
    );
  });

  it('t-1 points of a degree t-1 polynomial do not give f(0)', () => {
    const poly = randomPolynomial(new Prng(9), 777n, 2);
    const chosen = [1, 2];
    const lambdas = lagrangeAtZero(chosen);
    const acc = Fr.add(Fr.mul(lambdas[0]!, evaluatePolynomial(poly, 1n)), Fr.mul(lambdas[1]!, evaluatePolynomial(poly, 2n)));
    expect(acc).not.toBe(777n);
  });

  it('rejects duplicate and out-of-range indices with a named error', () => {
    expect(() => lagrangeAtZero([1, 1])).toThrow(InvalidArgumentError);
    expect(() => lagrangeAtZero([0, 1])).toThrow(/indices/);
  });

  it('scalar bytes are strict: 32 bytes, canonical', () => {
    expect(scalarFromBytes(scalarToBytes(5n))).toBe(5n);
    expect(scalarFromBytes(new Uint8Array(31))).toBeNull();
    expect(scalarFromBytes(new Uint8Array(32).fill(0xff))).toBeNull(); // >= r
  });
});

describe('dealer key setup with Feldman commitments', () => {
  const key = ringKey(1, 4, 2);

  it('every server can verify its own share against the public commitments', () => {
    expect(key.shares).toHaveLength(4);
    expect(key.commitments).toHaveLength(2);
    for (const share of key.shares) expect(verifyKeyShare(share, key.commitments)).toBe(true);
  });

  it('a share that is off by one, given to the wrong index, or checked against other commitments fails', () => {
    const share = key.shares[0]!;
    const bumped = scalarToBytes(Fr.add(scalarFromBytes(share.secretKey)!, 1n));
    expect(verifyKeyShare({ index: 1, secretKey: bumped }, key.commitments)).toBe(false);
    expect(verifyKeyShare({ index: 2, secretKey: share.secretKey }, key.commitments)).toBe(false);
    expect(verifyKeyShare(share, ringKey(2, 4, 2).commitments)).toBe(false);
    expect(verifyKeyShare({ index: 1, secretKey: new Uint8Array(5) }, key.commitments)).toBe(false);
  });

  it('PK_i from the commitments equals x_i·G2, and the ring key is C_0', () => {
    for (const share of key.shares) {
      expect(verificationKeyOf(share.index, key.commitments)).toEqual(g2ToBytes(G2.BASE.multiply(scalarFromBytes(share.secretKey)!)));
    }
    expect(key.publicKey).toEqual(key.commitments[0]);
    expect(key.publicKey).toHaveLength(96);
  });

  it('the same seed deals the same key; a different seed a different one', () => {
    expect(ringKey(1, 4, 2).publicKey).toEqual(key.publicKey);
    expect(ringKey(3, 4, 2).publicKey).not.toEqual(key.publicKey);
  });
});
