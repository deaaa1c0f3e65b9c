/**
 * The relaxed-SIMD kernel (i8x16.relaxed_swizzle) equals the reference. Node 20 hides relaxed SIMD
 * behind a V8 flag, so this file turns the flag on in its own worker before compiling the module
 * (Node >= 21 has it on by default); without it the relaxed path would go untested here.
 */
import { setFlagsFromString } from 'node:v8';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { referenceKernel } from '../../../archive/erasure/kernel.ts';
import { decode, encode } from '../../../archive/erasure/reed-solomon.ts';
import { relaxedKernelBase64 } from '../../../archive/erasure/wasm-binary.ts';
import { base64ToBytes, wasmKernelFrom } from '../../../archive/erasure/wasm-kernel.ts';
import { Prng } from '../../../sim/prng.ts';

setFlagsFromString('--experimental-wasm-relaxed-simd');
const relaxed = wasmKernelFrom('wasm-relaxed-simd', base64ToBytes(relaxedKernelBase64));

describe('relaxed SIMD kernel', () => {
  it('compiles once the runtime has relaxed SIMD', () => {
    expect(relaxed?.name).toBe('wasm-relaxed-simd');
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
