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
  /**
   * Like apply, but writes output r into `outputs[r]`, which may be shorter than `shardBytes`
   * (it then takes the first `outputs[r].length` bytes): decode writes straight into the block.
   */
  applyInto(coefficients: Matrix, inputs: readonly Uint8Array[], shardBytes: number, outputs: readonly Uint8Array[]): void;
}

export const referenceKernel: Kernel = {
  name: 'reference',
  apply(coefficients, inputs, shardBytes) {
    const outputs = Array.from({ length: coefficients.rows }, () => new Uint8Array(shardBytes));
    this.applyInto(coefficients, inputs, shardBytes, outputs);
    return outputs;
  },
  applyInto(coefficients, inputs, shardBytes, outputs) {
    assert(inputs.length === coefficients.cols, 'kernel: one input per coefficient column');
    assert(outputs.length === coefficients.rows, 'kernel: one output per coefficient row');
    for (let r = 0; r < coefficients.rows; r++) {
      const out = outputs[r]!;
      const outBytes = Math.min(out.length, shardBytes);
      out.fill(0, 0, outBytes);
      for (let j = 0; j < inputs.length; j++) {
        const c = coefficients.cells[r * coefficients.cols + j]!;
        if (c === 0) continue;
        const input = inputs[j]!;
        const row = mulTable.subarray(c * 256, c * 256 + 256);
        const end = Math.min(input.length, outBytes);
        for (let i = 0; i < end; i++) out[i]! ^= row[input[i]!]!;
      }
    }
  },
};
