/**
 * The WebAssembly SIMD kernels behind the Kernel interface. Shards are copied into the module's
 * memory at a stride padded to the kernel's step, the dot{R} functions compute up to R outputs per
 * pass over the inputs, and the outputs are copied out. Nibble tables are built once per
 * coefficient matrix (matrices are cached and immutable upstream) and kept in a WeakMap.
 *
 * Memory layout (bytes): [0, 1024) input pointers, [1024, 2048) output pointers,
 * [4096, 4096 + 512 KiB) nibble tables (k * rows * 32 <= 128 * 128 * 32), then input shards,
 * then output shards. Memory grows on demand up to about 64 MiB of shards and never shrinks (one
 * instance per kernel); larger calls are cut into column segments.
 */
import { assert } from '../../core/assert.ts';
import { writeNibbleTables } from './gf256.ts';
import type { Kernel } from './kernel.ts';
import { kernelShape } from './kernel-wat.ts';
import type { Matrix } from './matrix.ts';

const inputPointersAt = 0;
const outputPointersAt = 1024;
const tablesAt = 4096;
const tablesBytesMax = 128 * 128 * 32;
const shardsAt = tablesAt + tablesBytesMax;
const pageBytes = 65536;
const stepBytes = 16 * kernelShape.vectorsPerStep;
/** Column range per call: k inputs x columnBytes should sit in L1/L2 while every pass reads them. */
const columnBytes = 4096;
/** Default bound on shard bytes held in wasm memory at once (inputs + outputs). */
const shardMemoryBytesMaxDefault = 64 * 2 ** 20;

type DotFunction = (start: number, end: number, k: number, tables: number, inputs: number, outputs: number) => void;

/**
 * The slice of the WebAssembly JS API this module uses, typed here because the project's lib
 * (ES2023, no DOM) does not declare the global.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

function wasmApi(): WasmApi | undefined {
  return (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
}

/** True iff this runtime can compile `binary` (used to detect SIMD and relaxed SIMD support). */
export function wasmValidates(binary: Uint8Array): boolean {
  const api = wasmApi();
  return api !== undefined && api.validate(binary);
}

export function base64ToBytes(base64: string): Uint8Array {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Null if this runtime cannot compile the module (no WebAssembly, or no (relaxed) SIMD). */
export function wasmKernelFrom(
  name: string,
  binary: Uint8Array,
  shardMemoryBytesMax = shardMemoryBytesMaxDefault,
): Kernel | null {
  const api = wasmApi();
  if (!api || !api.validate(binary)) return null;
  const instance = new api.Instance(new api.Module(binary), {});
  const memory = instance.exports['memory'] as WasmMemory;
  const dots: DotFunction[] = [];
  for (let r = 1; r <= kernelShape.outputsPerPassMax; r++) dots.push(instance.exports[`dot${r}`] as DotFunction);
  const tableCache = new WeakMap<Matrix, Uint8Array>();
  // The matrix whose tables are in memory now: repeated calls with one shape skip the table copy.
  let tablesLoadedFor: Matrix | undefined;
  let view = new Uint8Array(memory.buffer);
  let words = new Uint32Array(memory.buffer);

  const ensureBytes = (bytes: number): void => {
    if (bytes <= memory.buffer.byteLength) return;
    memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / pageBytes));
    view = new Uint8Array(memory.buffer);
    words = new Uint32Array(memory.buffer);
  };

  const loadTables = (coefficients: Matrix): void => {
    if (coefficients === tablesLoadedFor) return;
    let tables = tableCache.get(coefficients);
    if (!tables) tableCache.set(coefficients, (tables = passTables(coefficients)));
    view.set(tables, tablesAt);
    tablesLoadedFor = coefficients;
  };

  /**
   * Columns [from, from + segmentBytes) of every shard: copy the inputs in, run the passes, copy
   * the outputs out. Large shards go through in several segments so memory stays bounded.
   */
  const segment = (
    coefficients: Matrix,
    inputs: readonly Uint8Array[],
    shardBytes: number,
    outputs: readonly Uint8Array[],
    from: number,
    segmentBytes: number,
  ): void => {
    const { rows, cols } = coefficients;
    const stride = Math.ceil(segmentBytes / stepBytes) * stepBytes;
    const outputsAt = shardsAt + cols * stride;
    ensureBytes(outputsAt + rows * stride);
    loadTables(coefficients);
    for (let j = 0; j < cols; j++) {
      const input = inputs[j]!;
      const at = shardsAt + j * stride;
      const used = Math.max(0, Math.min(input.length, shardBytes, from + segmentBytes) - from);
      if (used > 0) view.set(input.subarray(from, from + used), at);
      if (used < segmentBytes) view.fill(0, at + used, at + segmentBytes);
      words[(inputPointersAt >> 2) + j] = at;
    }
    for (let r = 0; r < rows; r++) words[(outputPointersAt >> 2) + r] = outputsAt + r * stride;
    // Column ranges first, passes inside: the k input columns stay in cache across the passes.
    for (let start = 0; start < stride; start += columnBytes) {
      const end = Math.min(start + columnBytes, stride);
      for (let first = 0; first < rows; first += kernelShape.outputsPerPassMax) {
        const count = Math.min(kernelShape.outputsPerPassMax, rows - first);
        dots[count - 1]!(start, end, cols, tablesAt + first * cols * 32, inputPointersAt, outputPointersAt + 4 * first);
      }
    }
    outputs.forEach((out, r) => {
      const wanted = Math.min(out.length, shardBytes, from + segmentBytes) - from;
      if (wanted > 0) out.set(view.subarray(outputsAt + r * stride, outputsAt + r * stride + wanted), from);
    });
  };

  const kernel: Kernel = {
    name,
    apply(coefficients, inputs, shardBytes) {
      const outputs = Array.from({ length: coefficients.rows }, () => new Uint8Array(shardBytes));
      kernel.applyInto(coefficients, inputs, shardBytes, outputs);
      return outputs;
    },
    applyInto(coefficients, inputs, shardBytes, outputs) {
      const { rows, cols } = coefficients;
      assert(inputs.length === cols, 'kernel: one input per coefficient column');
      assert(outputs.length === rows, 'kernel: one output per coefficient row');
      assert(rows * cols * 32 <= tablesBytesMax, 'kernel: k * rows within the table area (k + m <= 256)');
      const segmentBytesMax = Math.max(stepBytes, Math.floor(shardMemoryBytesMax / (rows + cols) / stepBytes) * stepBytes);
      for (let from = 0; from < shardBytes; from += segmentBytesMax) {
        segment(coefficients, inputs, shardBytes, outputs, from, Math.min(segmentBytesMax, shardBytes - from));
      }
    },
  };
  return kernel;
}

/**
 * Nibble tables in pass order: rows are taken in passes of up to outputsPerPassMax, and within a
 * pass the tables run input-major (for input j: the pass's rows' (low, high) pairs), matching the
 * kernel's walk over `tables` with a step of 32 * R bytes per input.
 */
function passTables(coefficients: Matrix): Uint8Array {
  const { rows, cols, cells } = coefficients;
  const out = new Uint8Array(rows * cols * 32);
  for (let first = 0; first < rows; first += kernelShape.outputsPerPassMax) {
    const count = Math.min(kernelShape.outputsPerPassMax, rows - first);
    for (let j = 0; j < cols; j++) {
      for (let r = 0; r < count; r++) {
        writeNibbleTables(cells[(first + r) * cols + j]!, out, (first * cols + j * count + r) * 32);
      }
    }
  }
  return out;
}
