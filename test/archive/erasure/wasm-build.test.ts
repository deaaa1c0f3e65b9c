/**
 * Reproducibility (issue 3): the committed WAT and base64 binaries are exactly what
 * `npx tsx archive/erasure/build-wasm.ts` produces from the generator, so the binary that runs is
 * the source that is reviewed. Run the build script and commit if this fails.
 */
import { describe, expect, it } from 'vitest';
import { buildKernels, readCommitted } from '../../../archive/erasure/build-wasm.ts';
import { relaxedKernelBase64, simdKernelBase64 } from '../../../archive/erasure/wasm-binary.ts';
import { base64ToBytes } from '../../../archive/erasure/wasm-kernel.ts';

describe('WebAssembly build', () => {
  it('committed kernel-*.wat and wasm-binary.ts equal a fresh build', async () => {
    const built = await buildKernels();
    const committed = readCommitted();
    expect(committed.simd).toBe(built.wat.simd);
    expect(committed.relaxed).toBe(built.wat.relaxed);
    expect(committed.binaryModuleText).toBe(built.binaryModuleText);
    expect(base64ToBytes(simdKernelBase64)).toEqual(built.binary.simd);
    expect(base64ToBytes(relaxedKernelBase64)).toEqual(built.binary.relaxed);
  });

  it('the relaxed module really uses relaxed_swizzle and the plain one only swizzle', () => {
    const committed = readCommitted();
    expect(committed.relaxed).toMatch(/i8x16\.relaxed_swizzle/);
    expect(committed.simd).not.toMatch(/relaxed/);
    expect(committed.simd).toMatch(/i8x16\.swizzle/);
  });
});
