/**
 * Picks the fastest kernel this runtime supports, once, at first use: relaxed SIMD when
 * `WebAssembly.validate` accepts the relaxed module (Node >= 21 by default; Node 20 with
 * --experimental-wasm-relaxed-simd), plain SIMD otherwise, and the TypeScript reference where
 * WebAssembly SIMD is missing. Detection only: nothing here assumes a runtime version.
 */
import { referenceKernel, type Kernel } from './kernel.ts';
import { relaxedKernelBase64, simdKernelBase64 } from './wasm-binary.ts';
import { base64ToBytes, wasmKernelFrom } from './wasm-kernel.ts';

let simd: Kernel | null | undefined;
let relaxed: Kernel | null | undefined;
let chosen: Kernel | undefined;

/** The plain-SIMD kernel, or null where WebAssembly SIMD is unavailable. */
export function simdKernel(): Kernel | null {
  if (simd === undefined) simd = wasmKernelFrom('wasm-simd', base64ToBytes(simdKernelBase64));
  return simd;
}

/** The relaxed-SIMD kernel (i8x16.relaxed_swizzle), or null where the runtime lacks relaxed SIMD. */
export function relaxedSimdKernel(): Kernel | null {
  if (relaxed === undefined) relaxed = wasmKernelFrom('wasm-relaxed-simd', base64ToBytes(relaxedKernelBase64));
  return relaxed;
}

export function defaultKernel(): Kernel {
  chosen ??= relaxedSimdKernel() ?? simdKernel() ?? referenceKernel;
  return chosen;
}

/**
 * Forgets the detection results so the next call detects again: for a process shell that has just
 * turned relaxed SIMD on (relaxed-simd-shell.ts). Kernels already handed out keep working.
 */
export function redetectKernels(): void {
  if (relaxed === null) relaxed = undefined;
  if (simd === null) simd = undefined;
  chosen = undefined;
}
