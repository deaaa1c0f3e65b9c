/**
 * Coding matrices over GF(2^8), stored row-major in a Uint8Array. The generator is ISA-L's
 * `gf_gen_cauchy1_matrix`: identity on the top k rows (systematic: fragment i < k is data shard i),
 * and row i >= k, column j = 1 / (i XOR j). The rows k..n-1 and columns 0..k-1 index disjoint sets,
 * so i XOR j is never 0 and every square submatrix of the Cauchy part is invertible: any k of the
 * n fragments determine the block (MDS).
 */
import { assert } from '../../core/assert.ts';
import { gfInv, gfMul } from './gf256.ts';

export interface Matrix {
  readonly rows: number;
  readonly cols: number;
  readonly cells: Uint8Array;
}

export function cauchyGenerator(k: number, m: number): Matrix {
  const n = k + m;
  assert(k >= 1 && m >= 0 && n <= 256, 'cauchyGenerator wants 1 <= k and k + m <= 256');
  const cells = new Uint8Array(n * k);
  for (let i = 0; i < k; i++) cells[i * k + i] = 1;
  for (let i = k; i < n; i++) for (let j = 0; j < k; j++) cells[i * k + j] = gfInv(i ^ j);
  return { rows: n, cols: k, cells };
}

/** The rows `rowIndices` of `a`, in that order. */
export function selectRows(a: Matrix, rowIndices: readonly number[]): Matrix {
  const cells = new Uint8Array(rowIndices.length * a.cols);
  rowIndices.forEach((r, i) => {
    assert(r >= 0 && r < a.rows, 'selectRows: row out of range');
    cells.set(a.cells.subarray(r * a.cols, (r + 1) * a.cols), i * a.cols);
  });
  return { rows: rowIndices.length, cols: a.cols, cells };
}

export function multiply(a: Matrix, b: Matrix): Matrix {
  assert(a.cols === b.rows, 'multiply: inner dimensions differ');
  const cells = new Uint8Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++) {
    for (let t = 0; t < a.cols; t++) {
      const c = a.cells[i * a.cols + t]!;
      if (c === 0) continue;
      for (let j = 0; j < b.cols; j++) cells[i * b.cols + j]! ^= gfMul(c, b.cells[t * b.cols + j]!);
    }
  }
  return { rows: a.rows, cols: b.cols, cells };
}

/**
 * Gauss-Jordan inverse of a square matrix; null when singular (never for k rows of a Cauchy
 * generator, but the function is general and the caller decides what singular means).
 */
export function invert(a: Matrix): Matrix | null {
  assert(a.rows === a.cols, 'invert wants a square matrix');
  const n = a.rows;
  const work = a.cells.slice();
  const inv = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && work[pivot * n + col] === 0) pivot++;
    if (pivot === n) return null;
    if (pivot !== col) {
      swapRows(work, n, pivot, col);
      swapRows(inv, n, pivot, col);
    }
    const scale = gfInv(work[col * n + col]!);
    scaleRow(work, n, col, scale);
    scaleRow(inv, n, col, scale);
    for (let r = 0; r < n; r++) {
      const factor = work[r * n + col]!;
      if (r === col || factor === 0) continue;
      for (let j = 0; j < n; j++) {
        work[r * n + j]! ^= gfMul(factor, work[col * n + j]!);
        inv[r * n + j]! ^= gfMul(factor, inv[col * n + j]!);
      }
    }
  }
  return { rows: n, cols: n, cells: inv };
}

function swapRows(cells: Uint8Array, n: number, a: number, b: number): void {
  for (let j = 0; j < n; j++) {
    const t = cells[a * n + j]!;
    cells[a * n + j] = cells[b * n + j]!;
    cells[b * n + j] = t;
  }
}

function scaleRow(cells: Uint8Array, n: number, row: number, scale: number): void {
  for (let j = 0; j < n; j++) cells[row * n + j] = gfMul(scale, cells[row * n + j]!);
}
