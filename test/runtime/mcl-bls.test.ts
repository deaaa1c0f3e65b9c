// The WebAssembly BLS engine (runtime/mcl-bls.ts) must be a drop-in for the @noble/curves
// reference: the same hash-to-curve bytes under our DST (RFC 9380), the same share and combined
// signature bytes, the same verdicts on valid, forged and malformed input, and the optimistic
// combine still names a bad sender (issue 4, "shares are checked ... so a bad share is caught").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installBlsEngine } from '../../core/threshold/accelerator.ts';
import { dealRingKey, g2BaseBytes, verifyKeyShare } from '../../core/threshold/dealer.ts';
import { Fr } from '../../core/threshold/scalar.ts';
import { hashMessage, g1ToBytes } from '../../core/threshold/points.ts';
import { combineShares, RingKeyVerifier, signShare, verifySignature, type SignatureShare } from '../../core/threshold/signing.ts';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { toHex } from '../../core/bytes.ts';
import { g2GeneratorCompressedHex, useMclBls } from '../../runtime/mcl-bls.ts';
import { Prng } from '../../sim/prng.ts';
import type { BlsEngine } from '../../core/threshold/accelerator.ts';

let engine: BlsEngine;
const key = dealRingKey(new Prng(7), 4, 2);
const verifier = new RingKeyVerifier(key, 4);
/** A uniform scalar mod r from 32 random bytes. */
const scalarOf = (bytes: Uint8Array): bigint => Fr.create(BigInt('0x' + toHex(bytes)));
const messages = Array.from({ length: 6 }, (_, i) => new Prng(100 + i).bytes(1 + i * 37));

/** Runs `f` with the reference code (no engine installed), then restores the engine. */
function reference<T>(f: () => T): T {
  installBlsEngine(null);
  try {
    return f();
  } finally {
    installBlsEngine(engine);
  }
}

beforeAll(async () => {
  engine = await useMclBls();
});
afterAll(() => installBlsEngine(null));

describe('mcl-wasm BLS engine against the @noble/curves reference', () => {
  it('holds the G2 generator as noble encodes it (the constant saves its subgroup check at start)', () => {
    expect(g2GeneratorCompressedHex).toBe(toHex(bls12_381.G2.Point.BASE.toBytes(true)));
  });

  it('multiplies the G2 generator as noble does, and key shares check the same either way', () => {
    const prng = new Prng(5);
    const scalars = [0n, 1n, 2n, ...Array.from({ length: 4 }, () => scalarOf(prng.bytes(32)))];
    for (const s of scalars) expect(toHex(g2BaseBytes(s))).toBe(reference(() => toHex(g2BaseBytes(s))));
    for (const share of key.shares) {
      expect(verifyKeyShare(share, key.commitments)).toBe(true);
      expect(reference(() => verifyKeyShare(share, key.commitments))).toBe(true);
      const wrong = { ...share, index: (share.index % 4) + 1 };
      expect(verifyKeyShare(wrong, key.commitments)).toBe(false);
    }
  });

  it('hashes to the same G1 point (RFC 9380, our DST) and signs the same share bytes', () => {
    for (const m of messages) {
      const fast = hashMessage(m);
      const slow = reference(() => hashMessage(m));
      expect(fast.bytes).toEqual(g1ToBytes(slow.point));
      expect(g1ToBytes(fast.point)).toEqual(fast.bytes); // the lazy reference point agrees
      for (const share of key.shares) expect(signShare(share, fast).signature).toEqual(reference(() => signShare(share, m).signature));
    }
  });

  it('combines any f+1 shares into the reference signature, which both verify', () => {
    const m = messages[2]!;
    const shares = key.shares.map((s) => signShare(s, m));
    for (const pair of [[0, 1], [1, 3], [2, 0]] as const) {
      const picked = pair.map((i) => shares[i]!);
      const fast = combineShares(2, picked);
      expect(fast).toEqual(reference(() => combineShares(2, picked)));
      expect(verifier.verify(m, fast)).toBe(true);
      expect(verifySignature(key.publicKey, m, fast)).toBe(true);
      expect(reference(() => verifier.verify(m, fast))).toBe(true);
    }
  });

  it('rejects what the reference rejects: another message, a flipped bit, garbage, identity, a wrong key', () => {
    const m = messages[3]!;
    const signature = combineShares(2, key.shares.slice(0, 2).map((s) => signShare(s, m)));
    const flipped = signature.slice();
    flipped[20]! ^= 1;
    const identity = new Uint8Array(48);
    identity[0] = 0xc0;
    const cases: [Uint8Array, Uint8Array][] = [
      [messages[4]!, signature],
      [m, flipped],
      [m, new Uint8Array(48).fill(7)],
      [m, identity],
      [m, signature.subarray(0, 47)],
    ];
    for (const [msg, sig] of cases) {
      expect(verifier.verify(msg, sig)).toBe(false);
      expect(reference(() => verifier.verify(msg, sig))).toBe(false);
    }
    const otherKey = dealRingKey(new Prng(8), 4, 2);
    expect(verifySignature(otherKey.publicKey, m, signature)).toBe(false);
  });

  it('checks shares against each server key and names the sender of a bad share in the optimistic combine', () => {
    const m = messages[5]!;
    const shares: SignatureShare[] = key.shares.map((s) => signShare(s, m));
    const bad = { index: shares[0]!.index, signature: shares[1]!.signature };
    expect(verifier.verifyShare(m, shares[0]!)).toBe(true);
    expect(verifier.verifyShare(m, bad)).toBe(false);
    const result = verifier.combine(m, [bad, shares[2]!, shares[3]!]);
    expect(result.badIndices).toEqual([bad.index]);
    expect(verifier.verify(m, result.signature)).toBe(true);
  });
});
