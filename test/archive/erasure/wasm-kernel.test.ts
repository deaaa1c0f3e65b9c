/**
 * The WebAssembly kernels (issue 3) give byte-identical results to the TypeScript reference for
 * random coefficient matrices, shard lengths (including ones that are not a multiple of the SIMD
 * step) and short, zero-padded inputs; and the loader picks a kernel by detection.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { referenceKernel, type Kernel } from '../../../archive/erasure/kernel.ts';
import { decode, encode } from '../../../archive/erasure/reed-solomon.ts';
import { defaultKernel, relaxedSimdKernel, simdKernel } from '../../../archive/erasure/select-kernel.ts';
import { relaxedKernelBase64, simdKernelBase64 } from '../../../archive/erasure/wasm-binary.ts';
import { base64ToBytes, wasmKernelFrom, wasmValidates } from '../../../archive/erasure/wasm-kernel.ts';
import { Prng } from '../../../sim/prng.ts';

const simd = simdKernel();
const relaxed = relaxedSimdKernel();
const kernels = [simd, relaxed].filter((k): k is Kernel => k !== null);

describe('kernel detection', () => {
  it('Node has WebAssembly SIMD, so the plain SIMD kernel loads', () => {
    expect(simd?.name).toBe('wasm-simd');
  });

  it('uses the relaxed kernel exactly when the runtime validates relaxed SIMD', () => {
    const supported = wasmValidates(base64ToBytes(relaxedKernelBase64));
    expect(relaxed !== null).toBe(supported);
    expect(defaultKernel().name).toBe(supported ? 'wasm-relaxed-simd' : 'wasm-simd');
  });
});

describe.each(kernels.map((k) => [k.name, k] as const))('%s kernel', (_name, kernel) => {
  it('equals the reference for random matrices, lengths and short inputs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 13 }),
        fc.integer({ min: 0, max: 700 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        (cols, rows, shardBytes, seed) => {
          const prng = new Prng(seed);
          const coefficients = { rows, cols, cells: prng.bytes(rows * cols) };
          const inputs = Array.from({ length: cols }, () => prng.bytes(prng.chance(0.2) ? prng.int(shardBytes + 1) : shardBytes));
          const want = referenceKernel.apply(coefficients, inputs, shardBytes);
          expect(kernel.apply(coefficients, inputs, shardBytes)).toEqual(want);
          // applyInto fills (possibly shorter) destinations with the same bytes, and only them.
          const into = want.map(() => new Uint8Array(prng.int(shardBytes + 1) + 2).fill(0xaa));
          const lengths = into.map((o) => Math.min(o.length, shardBytes));
          kernel.applyInto(coefficients, inputs, shardBytes, into.map((o, r) => o.subarray(0, lengths[r])));
          into.forEach((o, r) => {
            expect(o.subarray(0, lengths[r])).toEqual(want[r]!.subarray(0, lengths[r]));
            expect(o.subarray(lengths[r]).every((x) => x === 0xaa)).toBe(true);
          });
        },
      ),
      { numRuns: 80 },
    );
  });

  it('encode and decode match the reference at the archive shapes, 8,007 bytes', () => {
    const block = new Prng(5).bytes(8_007);
    for (const [k, m] of [
      [10, 4],
      [16, 16],
      [8, 24],
    ] as const) {
      const fast = encode(k, m, block, { kernel });
      expect(fast).toEqual(encode(k, m, block, { kernel: referenceKernel }));
      const parityOnly = fast.map((bytes, index) => ({ index, bytes })).slice(m >= k ? m : 0).slice(0, k).reverse();
      expect(decode(k, m, parityOnly, block.length, { kernel })).toEqual(block);
    }
  });

  it('survives memory growth between calls (views are refreshed)', () => {
    const small = new Prng(6).bytes(1000);
    const large = new Prng(7).bytes(3 * 2 ** 20);
    const before = encode(4, 4, small, { kernel });
    encode(4, 4, large, { kernel });
    expect(encode(4, 4, small, { kernel })).toEqual(before);
    expect(before).toEqual(encode(4, 4, small, { kernel: referenceKernel }));
  });
});

describe('segmented calls', () => {
  it('cuts shards larger than its memory bound into column segments, with identical bytes', () => {
    // A 2 KiB bound forces several segments per call, including a ragged last one.
    const small = wasmKernelFrom('wasm-simd-small', base64ToBytes(simdKernelBase64), 2048)!;
    const prng = new Prng(17);
    for (const [rows, cols, shardBytes] of [
      [3, 5, 1000],
      [16, 16, 777],
      [1, 1, 5000],
    ] as const) {
      const coefficients = { rows, cols, cells: prng.bytes(rows * cols) };
      const inputs = Array.from({ length: cols }, (_, j) => prng.bytes(j === cols - 1 ? shardBytes - 99 : shardBytes));
      expect(small.apply(coefficients, inputs, shardBytes)).toEqual(referenceKernel.apply(coefficients, inputs, shardBytes));
    }
  });
});
