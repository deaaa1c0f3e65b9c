/**
 * Systematic Reed-Solomon over GF(2^8), byte-compatible with Intel ISA-L.
 *
 * Layout, exactly as a caller of ISA-L's `ec_encode_data` arranges it: a block of L bytes is split
 * into k data shards of s = ceil(L / k) bytes each (shard j = bytes [j*s, (j+1)*s), the last one
 * zero-padded to s), and the m parity shards are the generator rows k..k+m-1 (matrix.ts) applied to
 * the k data shards. Fragment i is shard i, so fragments 0..k-1 are the block itself. For L = 0
 * every fragment is empty.
 */
import { assert } from '../../core/assert.ts';
import { checkArgument, InvalidArgumentError } from '../../core/errors.ts';
import { NotEnoughFragmentsError } from './errors.ts';
import type { Kernel } from './kernel.ts';
import { cauchyGenerator, invert, multiply, selectRows, type Matrix } from './matrix.ts';
import { defaultKernel } from './select-kernel.ts';

export interface Shard {
  /** Fragment index, 0..k+m-1 (0..k-1 are data shards). */
  index: number;
  bytes: Uint8Array;
}

export interface CoderOptions {
  /** Override the kernel (tests and benchmarks); default: the fastest this runtime supports. */
  kernel?: Kernel;
}

/** Bytes in each fragment of a block of `blockBytes` bytes coded with k data shards. */
export function shardBytesOf(k: number, blockBytes: number): number {
  return Math.ceil(blockBytes / k);
}

/**
 * Returns the k + m fragments of shardBytesOf(k, block.length) bytes each. They are views into one
 * new buffer (one allocation instead of n, which is most of the cost at small blocks): copy a
 * fragment (`slice()`) if you keep it alone for long, or it keeps all n alive.
 */
export function encode(k: number, m: number, block: Uint8Array, options: CoderOptions = {}): Uint8Array[] {
  checkShape(k, m);
  checkArgument(block instanceof Uint8Array, 'block', 'a Uint8Array');
  const shardBytes = shardBytesOf(k, block.length);
  // The data shards are the block itself followed by its zero padding: one copy lays them out.
  const all = new Uint8Array((k + m) * shardBytes);
  all.set(block);
  const fragments = Array.from({ length: k + m }, (_, i) => all.subarray(i * shardBytes, (i + 1) * shardBytes));
  if (m > 0 && shardBytes > 0) {
    const kernel = options.kernel ?? defaultKernel();
    kernel.applyInto(parityRows(k, m), fragments.slice(0, k), shardBytes, fragments.slice(k));
  }
  return fragments;
}

/**
 * The parity of k equal-length data shards written into m caller-owned arrays of the same length:
 * ISA-L's `ec_encode_data` contract, with no allocation, for callers that reuse buffers.
 */
export function encodeParityInto(
  k: number,
  m: number,
  data: readonly Uint8Array[],
  parity: readonly Uint8Array[],
  options: CoderOptions = {},
): void {
  checkShape(k, m);
  checkArgument(Array.isArray(data) && data.length === k, 'data', `an array of k = ${k} shards`);
  checkArgument(Array.isArray(parity) && parity.length === m, 'parity', `an array of m = ${m} shards`);
  const shardBytes = data[0]?.length ?? 0;
  for (const [name, list] of [['data', data], ['parity', parity]] as const) {
    list.forEach((shard, i) => {
      checkArgument(shard instanceof Uint8Array && shard.length === shardBytes, `${name}[${i}]`, `a Uint8Array of ${shardBytes} bytes`);
    });
  }
  if (m > 0 && shardBytes > 0) (options.kernel ?? defaultKernel()).applyInto(parityRows(k, m), data, shardBytes, parity);
}

/**
 * The block of `blockBytes` bytes from any k (or more) distinct fragments. Uses the lowest k
 * indices given, so data shards that survived are copied rather than recomputed.
 */
export function decode(
  k: number,
  m: number,
  shards: readonly Shard[],
  blockBytes: number,
  options: CoderOptions = {},
): Uint8Array {
  checkShape(k, m);
  checkArgument(Number.isSafeInteger(blockBytes) && blockBytes >= 0, 'blockBytes', 'a non-negative integer');
  const block = new Uint8Array(blockBytes);
  decodeInto(k, m, shards, block, options);
  return block;
}

/** decode() into a caller-owned array whose length is the block length (no allocation of the block). */
export function decodeInto(k: number, m: number, shards: readonly Shard[], block: Uint8Array, options: CoderOptions = {}): void {
  checkShape(k, m);
  checkArgument(block instanceof Uint8Array, 'block', 'a Uint8Array of the block length');
  const blockBytes = block.length;
  const shardBytes = shardBytesOf(k, blockBytes);
  const chosen = chooseSurvivors(k, m, shards, shardBytes);
  // Shard j's place in the block (the last may be short, or empty when k > blockBytes).
  const placeOf = (j: number) => block.subarray(Math.min(j * shardBytes, blockBytes), Math.min((j + 1) * shardBytes, blockBytes));
  const present = new Set(chosen.map((s) => s.index));
  const lost: number[] = [];
  for (let j = 0; j < k; j++) if (!present.has(j)) lost.push(j);
  for (const s of chosen) if (s.index < k) placeOf(s.index).set(s.bytes.subarray(0, placeOf(s.index).length));
  if (lost.length > 0) {
    const plan = planFor(k, m, chosen.map((s) => s.index), lost);
    const kernel = options.kernel ?? defaultKernel();
    kernel.applyInto(plan, chosen.map((s) => s.bytes), shardBytes, lost.map(placeOf));
  }
}

/**
 * The fragments `wantedIndices` (for repair) from any k distinct fragments, all of one length.
 * Only the wanted rows are computed, so repairing one fragment costs one row, not a whole decode.
 */
export function reconstruct(
  k: number,
  m: number,
  shards: readonly Shard[],
  wantedIndices: readonly number[],
  options: CoderOptions = {},
): Uint8Array[] {
  checkShape(k, m);
  checkArgument(Array.isArray(shards) && shards.length > 0, 'shards', 'a non-empty array');
  const first = shards[0];
  // The common length is taken from the first shard; chooseSurvivors checks every shard against it.
  const shardBytes = first !== null && typeof first === 'object' && first.bytes instanceof Uint8Array ? first.bytes.length : 0;
  checkArgument(Array.isArray(wantedIndices), 'wantedIndices', 'an array');
  const seen = new Set<number>();
  for (const w of wantedIndices) {
    checkArgument(Number.isSafeInteger(w) && w >= 0 && w < k + m, 'wantedIndices', `indices in 0..${k + m - 1}`);
    checkArgument(!seen.has(w), 'wantedIndices', `distinct indices (${w} twice)`);
    seen.add(w);
  }
  const chosen = chooseSurvivors(k, m, shards, shardBytes);
  const given = new Map(shards.map((s) => [s.index, s.bytes]));
  const missing = wantedIndices.filter((w) => !given.has(w));
  const computed = new Map<number, Uint8Array>();
  if (missing.length > 0) {
    const plan = planFor(k, m, chosen.map((s) => s.index), missing);
    const outputs = (options.kernel ?? defaultKernel()).apply(plan, chosen.map((s) => s.bytes), shardBytes);
    missing.forEach((w, r) => computed.set(w, outputs[r]!));
  }
  return wantedIndices.map((w) => computed.get(w) ?? given.get(w)!.slice());
}

function checkShape(k: number, m: number): void {
  checkArgument(Number.isSafeInteger(k) && k >= 1, 'k', 'an integer >= 1');
  checkArgument(Number.isSafeInteger(m) && m >= 0, 'm', 'an integer >= 0');
  checkArgument(k + m <= 256, 'k + m', `at most 256 in GF(2^8), got ${k + m}`);
}

/** Validates the shards and returns the k with the lowest indices, sorted by index. */
function chooseSurvivors(k: number, m: number, shards: readonly Shard[], shardBytes: number): Shard[] {
  checkArgument(Array.isArray(shards), 'shards', 'an array of {index, bytes}');
  const byIndex = new Map<number, Shard>();
  for (const s of shards) {
    checkArgument(s !== null && typeof s === 'object', 'shards', 'objects {index, bytes}');
    const { index, bytes } = s;
    checkArgument(Number.isSafeInteger(index) && index >= 0 && index < k + m, 'shards[].index', `in 0..${k + m - 1}, got ${index}`);
    checkArgument(bytes instanceof Uint8Array, 'shards[].bytes', 'a Uint8Array');
    if (bytes.length !== shardBytes) {
      throw new InvalidArgumentError(`argument 'shards[${index}].bytes': expected ${shardBytes} bytes, got ${bytes.length}`);
    }
    if (byIndex.has(index)) throw new InvalidArgumentError(`argument 'shards': index ${index} given twice`);
    byIndex.set(index, s);
  }
  if (byIndex.size < k) {
    throw new NotEnoughFragmentsError(`need ${k} distinct fragments to decode, got ${byIndex.size}`);
  }
  return [...byIndex.values()].sort((a, b) => a.index - b.index).slice(0, k);
}

const parityCache = new Map<string, Matrix>();
const planCache = new Map<string, Matrix>();
/** Bounded so a stream of unusual loss patterns cannot grow memory without limit. */
export const planCacheEntriesMax = 512;

function parityRows(k: number, m: number): Matrix {
  const key = `${k},${m}`;
  let rows = parityCache.get(key);
  if (!rows) {
    rows = selectRows(cauchyGenerator(k, m), Array.from({ length: m }, (_, i) => k + i));
    if (parityCache.size >= planCacheEntriesMax) parityCache.delete(parityCache.keys().next().value!);
    parityCache.set(key, rows);
  }
  return rows;
}

/**
 * Coefficients that turn the survivors (in the given order) into the wanted fragments: the
 * wanted generator rows times the inverse of the survivors' rows. Inverting costs O(k^3), which
 * dominates decoding small blocks, so plans are cached per (k, m, survivors, wanted) in LRU order.
 */
function planFor(k: number, m: number, survivors: readonly number[], wanted: readonly number[]): Matrix {
  const key = `${k},${m}:${survivors.join(',')}>${wanted.join(',')}`;
  const hit = planCache.get(key);
  if (hit) {
    planCache.delete(key);
    planCache.set(key, hit);
    return hit;
  }
  const generator = cauchyGenerator(k, m);
  const inverse = invert(selectRows(generator, survivors));
  assert(inverse, `any k distinct rows of a Cauchy-systematic generator are independent (${key})`);
  const plan = multiply(selectRows(generator, wanted), inverse);
  if (planCache.size >= planCacheEntriesMax) planCache.delete(planCache.keys().next().value!);
  planCache.set(key, plan);
  return plan;
}

/** Number of cached decode plans (for tests of the bound). */
export function planCacheSize(): number {
  return planCache.size;
}
