/**
 * The relaxed-SIMD kernel (i8x16.relaxed_swizzle) equals the reference. Node 20 hides relaxed SIMD
 * behind a V8 flag, so this file turns it on in its own worker with the process shell
 * (relaxed-simd-shell.ts; Node >= 21 has it on by default); else the relaxed path goes untested.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { referenceKernel } from '../../../archive/erasure/kernel.ts';
import { decode, encode } from '../../../archive/erasure/reed-solomon.ts';
import { enableRelaxedSimd } from '../../../archive/erasure/relaxed-simd-shell.ts';
import { defaultKernel, relaxedSimdKernel } from '../../../archive/erasure/select-kernel.ts';
import { Prng } from '../../../sim/prng.ts';

// Detection first (as a library user would see it), then the shell switch.
defaultKernel();
const enabled = enableRelaxedSimd();
const relaxed = relaxedSimdKernel();

describe('relaxed SIMD kernel', () => {
  it('enableRelaxedSimd turns it on and re-detection makes it the default kernel', () => {
    expect(enabled).toBe(true);
    expect(relaxed?.name).toBe('wasm-relaxed-simd');
    expect(defaultKernel()).toBe(relaxed);
  });

  it('equals the reference for random matrices and lengths', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 0, max: 500 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), (cols, rows, shardBytes, seed) => {
        const prng = new Prng(seed);
        const coefficients = { rows, cols, cells: prng.bytes(rows * cols) };
        const inputs = Array.from({ length: cols }, () => prng.bytes(shardBytes));
        expect(relaxed!.apply(coefficients, inputs, shardBytes)).toEqual(referenceKernel.apply(coefficients, inputs, shardBytes));
      }),
      { numRuns: 60 },
    );
  });

  it('encodes and decodes (8,24) like the reference', () => {
    const block = new Prng(3).bytes(8_001);
    const fragments = encode(8, 24, block, { kernel: relaxed! });
    expect(fragments).toEqual(encode(8, 24, block, { kernel: referenceKernel }));
    const parity = fragments.map((bytes, index) => ({ index, bytes })).slice(8, 16);
    expect(decode(8, 24, parity, block.length, { kernel: relaxed! })).toEqual(block);
  });
});
