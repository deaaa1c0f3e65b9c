/**
 * Process-level switch for the relaxed-SIMD kernel. Node 20 keeps WebAssembly relaxed SIMD behind
 * the V8 flag --experimental-wasm-relaxed-simd (Node >= 21 enables it by default), and the flag is
 * not accepted in NODE_OPTIONS; a process entry point calls this once at start instead. It only
 * sets the flag when detection says relaxed SIMD is missing, then re-runs detection.
 */
import { setFlagsFromString } from 'node:v8';
import { redetectKernels, relaxedSimdKernel } from './select-kernel.ts';

/** Returns true iff the relaxed-SIMD kernel is available afterwards. */
export function enableRelaxedSimd(): boolean {
  if (relaxedSimdKernel() !== null) return true;
  setFlagsFromString('--experimental-wasm-relaxed-simd');
  redetectKernels();
  return relaxedSimdKernel() !== null;
}
