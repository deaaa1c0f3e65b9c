/**
 * The one operation every coding step reduces to, and its plain TypeScript reference.
 * Encode, decode and repair all compute outputs[r] = XOR over j of c[r][j] * inputs[j], byte by
 * byte, for a coefficient matrix c (rows = outputs, cols = inputs). Kernels differ only in speed
 * and must give identical bytes; the WebAssembly kernels are checked against this one.
 */
import { assert } from '../../core/assert.ts';
import { mulTable } from './gf256.ts';
import type { Matrix } from './matrix.ts';

export interface Kernel {
  /** Name for benchmark tables and logs ('reference', 'wasm-simd', 'wasm-relaxed-simd'). */
  readonly name: string;
  /**
   * Returns `coefficients.rows` new arrays of `shardBytes` bytes. An input shorter than
   * `shardBytes` reads as zero-padded (the tail of the last data shard); `inputs.length` must equal
   * `coefficients.cols`. The caller keeps `coefficients` immutable so kernels may cache per matrix.
   */
  apply(coefficients: Matrix, inputs: readonly Uint8Array[], shardBytes: number): Uint8Array[];
}

export const referenceKernel: Kernel = {
  name: 'reference',
  apply(coefficients, inputs, shardBytes) {
    assert(inputs.length === coefficients.cols, 'kernel: one input per coefficient column');
    const outputs: Uint8Array[] = [];
    for (let r = 0; r < coefficients.rows; r++) {
      const out = new Uint8Array(shardBytes);
      for (let j = 0; j < inputs.length; j++) {
        const c = coefficients.cells[r * coefficients.cols + j]!;
        if (c === 0) continue;
        const input = inputs[j]!;
        const row = mulTable.subarray(c * 256, c * 256 + 256);
        const end = Math.min(input.length, shardBytes);
        for (let i = 0; i < end; i++) out[i]! ^= row[input[i]!]!;
      }
      outputs.push(out);
    }
    return outputs;
  },
};
