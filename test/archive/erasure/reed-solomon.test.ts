/**
 * Reed-Solomon coder (issue 3): field arithmetic, ISA-L's generator, and the MDS property — every
 * block decodes from any k of its n fragments — over random sizes including 0, 1 and non-multiples
 * of k, for the shapes the archive uses.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../core/bytes.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { NotEnoughFragmentsError } from '../../../archive/erasure/errors.ts';
import { gfInv, gfMul } from '../../../archive/erasure/gf256.ts';
import { referenceKernel } from '../../../archive/erasure/kernel.ts';
import { cauchyGenerator, invert, multiply } from '../../../archive/erasure/matrix.ts';
import {
  decode,
  decodeInto,
  encode,
  encodeParityInto,
  planCacheEntriesMax,
  planCacheSize,
  reconstruct,
  shardBytesOf,
} from '../../../archive/erasure/reed-solomon.ts';
import { Prng } from '../../../sim/prng.ts';

const shapes: [number, number][] = [
  [4, 4],
  [10, 4],
  [16, 16],
  [8, 24],
];

function randomBytes(prng: Prng, length: number): Uint8Array {
  return prng.bytes(length);
}

describe('GF(2^8) with polynomial 0x11D', () => {
  it('reduces by 0x11D: 2 * 0x80 = 0x1D, and x * inv(x) = 1 for every nonzero x', () => {
    expect(gfMul(2, 0x80)).toBe(0x1d);
    expect(gfMul(0x53, 0)).toBe(0);
    for (let x = 1; x < 256; x++) expect(gfMul(x, gfInv(x))).toBe(1);
  });

  it('multiplication is commutative and distributes over XOR', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (a, b, c) => {
        expect(gfMul(a, b)).toBe(gfMul(b, a));
        expect(gfMul(a, b ^ c)).toBe(gfMul(a, b) ^ gfMul(a, c));
      }),
      { numRuns: 500 },
    );
  });
});

describe('Cauchy generator (as ISA-L gf_gen_cauchy1_matrix)', () => {
  it('is the identity on top and 1/(i XOR j) below', () => {
    const g = cauchyGenerator(3, 2);
    expect([...g.cells]).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1, gfInv(3), gfInv(2), gfInv(1), gfInv(4), gfInv(5), gfInv(6)]);
  });

  it('any k rows of (10,4) invert (sampled subsets), and inverse times matrix is the identity', () => {
    const g = cauchyGenerator(10, 4);
    const prng = new Prng(7);
    for (let trial = 0; trial < 30; trial++) {
      const rows = prng.shuffle([...Array(14).keys()]).slice(0, 10);
      const sub = { rows: 10, cols: 10, cells: new Uint8Array(rows.flatMap((r) => [...g.cells.subarray(r * 10, r * 10 + 10)])) };
      const inv = invert(sub);
      expect(inv).not.toBeNull();
      const identity = multiply(inv!, sub);
      for (let i = 0; i < 10; i++) for (let j = 0; j < 10; j++) expect(identity.cells[i * 10 + j]).toBe(i === j ? 1 : 0);
    }
  });
});

describe('encode / decode / reconstruct', () => {
  it('lays the block out as k equal zero-padded shards followed by m parity shards', () => {
    const block = Uint8Array.from([1, 2, 3, 4, 5, 6, 7]);
    const fragments = encode(3, 2, block);
    expect(fragments.map((f) => [...f])).toEqual(expect.arrayContaining([[1, 2, 3], [4, 5, 6], [7, 0, 0]]));
    expect(fragments.slice(0, 3).map((f) => [...f])).toEqual([[1, 2, 3], [4, 5, 6], [7, 0, 0]]);
    expect(fragments).toHaveLength(5);
    // parity row 0 of (3,2) is [1/3, 1/2, 1/1]: check the first byte by hand.
    expect(fragments[3]![0]).toBe(gfMul(gfInv(3), 1) ^ gfMul(gfInv(2), 4) ^ gfMul(gfInv(1), 7));
  });

  it('matches a parity vector produced by ISA-L 2.30 ec_encode_data, (4,2), 20-byte block', () => {
    // Block bytes (37 * i + 11) mod 256; parity captured from test/archive/erasure/isal-harness.c.
    const block = Uint8Array.from({ length: 20 }, (_, i) => (37 * i + 11) & 255);
    expect(toHex(block)).toBe('0b30557a9fc4e90e33587da2c7ec11365b80a5ca');
    const fragments = encode(4, 2, block);
    expect(toHex(fragments[4]!) + toHex(fragments[5]!)).toBe('3708f2af085c0fa87a38');
    expect(encode(4, 2, block, { kernel: referenceKernel })[5]).toEqual(fragments[5]);
  });

  it('every block decodes from any k of n fragments (random sizes, random subsets)', () => {
    for (const [k, m] of shapes) {
      fc.assert(
        fc.property(
          fc.oneof(fc.constantFrom(0, 1, k - 1, k + 1, 2 * k + 3), fc.integer({ min: 0, max: 3000 })),
          fc.integer({ min: 1, max: 2 ** 31 - 1 }),
          (blockBytes, seed) => {
            const prng = new Prng(seed);
            const block = randomBytes(prng, blockBytes);
            const fragments = encode(k, m, block);
            expect(fragments).toHaveLength(k + m);
            for (const f of fragments) expect(f.length).toBe(shardBytesOf(k, blockBytes));
            const order = prng.shuffle([...Array(k + m).keys()]);
            const subset = order.slice(0, k).map((index) => ({ index, bytes: fragments[index]! }));
            expect(decode(k, m, subset, blockBytes)).toEqual(block);
            const wanted = order.slice(k, k + Math.min(m, 3));
            const rebuilt = reconstruct(k, m, subset, wanted);
            wanted.forEach((w, i) => expect(rebuilt[i]).toEqual(fragments[w]));
          },
        ),
        { numRuns: 25 },
      );
    }
  });

  it('decodes with all m parity used (the worst case: m data shards lost)', () => {
    for (const [k, m] of shapes) {
      const lost = Math.min(m, k);
      const block = randomBytes(new Prng(k * 100 + m), 64 * k + 5);
      const fragments = encode(k, m, block);
      const shards = fragments.map((bytes, index) => ({ index, bytes })).slice(lost, lost + k);
      expect(decode(k, m, shards, block.length)).toEqual(block);
    }
  });

  it('m = 0 and k = 1 are valid edge shapes; k + m = 256 works', () => {
    const block = randomBytes(new Prng(3), 1000);
    expect(decode(5, 0, encode(5, 0, block).map((bytes, index) => ({ index, bytes })), 1000)).toEqual(block);
    const one = encode(1, 3, block);
    expect(one.every((f) => f.length === 1000)).toBe(true);
    expect(decode(1, 3, [{ index: 2, bytes: one[2]! }], 1000)).toEqual(block);
    const wide = encode(128, 128, block);
    const tail = wide.map((bytes, index) => ({ index, bytes })).slice(128);
    expect(decode(128, 128, tail, 1000)).toEqual(block);
  });

  it('refuses bad arguments with named errors', () => {
    const f = encode(4, 2, new Uint8Array(40));
    const shards = f.map((bytes, index) => ({ index, bytes }));
    expect(() => encode(0, 2, new Uint8Array(1))).toThrow(InvalidArgumentError);
    expect(() => encode(200, 57, new Uint8Array(1))).toThrow(/at most 256/);
    expect(() => decode(4, 2, shards.slice(0, 3), 40)).toThrow(NotEnoughFragmentsError);
    expect(() => decode(4, 2, [shards[0]!, shards[0]!, shards[1]!, shards[2]!], 40)).toThrow(/given twice/);
    expect(() => decode(4, 2, [{ index: 6, bytes: f[0]! }, ...shards.slice(1, 4)], 40)).toThrow(/index/);
    expect(() => decode(4, 2, [{ index: 0, bytes: f[0]!.subarray(1) }, ...shards.slice(1, 4)], 40)).toThrow(/expected 10 bytes/);
    expect(() => reconstruct(4, 2, shards.slice(0, 4), [5, 5])).toThrow(/distinct/);
  });

  it('encodeParityInto and decodeInto write the same bytes into caller-owned arrays', () => {
    const block = randomBytes(new Prng(21), 16 * 512);
    const fragments = encode(16, 16, block);
    const parity = Array.from({ length: 16 }, () => new Uint8Array(512).fill(7));
    encodeParityInto(16, 16, fragments.slice(0, 16), parity);
    expect(parity).toEqual(fragments.slice(16));
    const out = new Uint8Array(block.length);
    decodeInto(16, 16, fragments.map((bytes, index) => ({ index, bytes })).slice(16), out);
    expect(out).toEqual(block);
    expect(() => encodeParityInto(16, 16, fragments.slice(0, 15), parity)).toThrow(/k = 16 shards/);
    expect(() => encodeParityInto(16, 16, fragments.slice(0, 16), [...parity.slice(1), new Uint8Array(3)])).toThrow(/parity\[15\]/);
  });

  it('keeps the decode-plan cache bounded (LRU at planCacheEntriesMax)', () => {
    const k = 3;
    const m = 5;
    const f = encode(k, m, randomBytes(new Prng(9), 30));
    // 56 survivor sets x 28 wanted pairs = 1568 distinct plans, far past the bound.
    let plans = 0;
    for (let a = 0; a < 8; a++) for (let b = a + 1; b < 8; b++) for (let c = b + 1; c < 8; c++) {
      const shards = [a, b, c].map((index) => ({ index, bytes: f[index]! }));
      for (let w1 = 0; w1 < 8; w1++) for (let w2 = w1 + 1; w2 < 8; w2++) {
        const [x, y] = reconstruct(k, m, shards, [w1, w2]);
        expect(x).toEqual(f[w1]);
        expect(y).toEqual(f[w2]);
        plans++;
      }
    }
    expect(plans).toBeGreaterThan(planCacheEntriesMax);
    expect(planCacheSize()).toBe(planCacheEntriesMax);
  });

  it('uses the reference kernel when asked, with the same bytes as the default kernel', () => {
    const block = randomBytes(new Prng(11), 5000);
    expect(encode(10, 4, block, { kernel: referenceKernel })).toEqual(encode(10, 4, block));
  });
});
