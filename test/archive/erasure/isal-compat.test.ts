/**
 * Cross-implementation check against Intel ISA-L itself (issue 3): for random blocks and the
 * archive's shapes, ISA-L's parity (gf_gen_cauchy1_matrix + ec_encode_data) is byte-identical to
 * ours, we decode ISA-L's fragments, and ISA-L decodes ours. Skipped, with the reason in the test
 * name, where libisal-dev or gcc is missing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceKernel } from '../../../archive/erasure/kernel.ts';
import { decode, encode } from '../../../archive/erasure/reed-solomon.ts';
import { Prng } from '../../../sim/prng.ts';
import { IsalHarness, isalUnavailableReason } from './isal-harness.ts';

const reason = isalUnavailableReason();
const shapes: [number, number][] = [
  [4, 4],
  [10, 4],
  [16, 16],
  [8, 24],
  [3, 1],
  [100, 156],
];

describe.skipIf(reason !== null)(`ISA-L cross-check${reason ? ` (SKIPPED: ${reason})` : ''}`, () => {
  let isal: IsalHarness;
  beforeAll(() => {
    isal = IsalHarness.build();
  });
  afterAll(() => isal?.dispose());

  it.each(shapes)('(%i,%i): ISA-L parity equals ours, from both kernels', (k, m) => {
    const prng = new Prng(k * 1000 + m);
    for (const blockBytes of [1, k * 64, k * 100 + 3]) {
      const block = prng.bytes(blockBytes);
      const ours = encode(k, m, block);
      const theirs = isal.encode(k, m, ours.slice(0, k));
      expect(ours.slice(k)).toEqual(theirs);
      expect(encode(k, m, block, { kernel: referenceKernel }).slice(k)).toEqual(theirs);
    }
  });

  it.each(shapes)('(%i,%i): we decode ISA-L fragments and ISA-L decodes ours, with data shards lost', (k, m) => {
    const prng = new Prng(k * 7 + m);
    const block = prng.bytes(k * 333 + 1);
    const shardBytes = Math.ceil(block.length / k);
    const data = Array.from({ length: k }, (_, j) => {
      const shard = new Uint8Array(shardBytes);
      shard.set(block.subarray(j * shardBytes, (j + 1) * shardBytes));
      return shard;
    });
    const isalFragments = [...data, ...isal.encode(k, m, data)].map((bytes, index) => ({ index, bytes }));
    const survivors = prng.shuffle([...isalFragments]).slice(0, k);
    expect(decode(k, m, survivors, block.length)).toEqual(block);
    const ours = encode(k, m, block).map((bytes, index) => ({ index, bytes }));
    const lostData = Math.min(m, k);
    const theirDecode = isal.decode(k, m, ours.slice(lostData, lostData + k));
    expect(theirDecode).toEqual(data);
  });
});

describe('ISA-L availability', () => {
  it('reports why the cross-check is skipped, if it is', () => {
    if (reason !== null) console.warn(`ISA-L cross-check skipped: ${reason}`);
    expect(reason === null || reason.includes('apt-get install')).toBe(true);
  });
});
