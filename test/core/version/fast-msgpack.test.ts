// The exactly sized msgpack writer must produce byte-for-byte what core/codec.ts's encode (msgpackr)
// produces, so BGUIDs, VGUIDs, digests and signatures do not depend on which one ran, and peers
// decode tree frames written by either.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../../core/codec.ts';
import { type Packable, packFast } from '../../../core/version/fast-msgpack.ts';

const packable: fc.Arbitrary<Packable> = fc.letrec<{ value: Packable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.oneof(
      fc.nat(300),
      fc.integer({ min: 0, max: 2 ** 32 + 5 }),
      fc.constantFrom(0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
      fc.maxSafeNat(),
    ),
    fc.uint8Array({ maxLength: 300 }),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 10 }),
    fc.constant(null),
    fc.boolean(),
    // Byte arrays around the bin16 / bin32 boundary.
    fc.integer({ min: 0xfff0, max: 0x10010 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
    fc.array(tie('value'), { maxLength: 20 }),
  ),
})).value;

/**
 * Byte-for-byte equality, checked with Buffer.equals: toEqual walks typed arrays element by
 * element, and values with tens of 64 KiB arrays made this test take 40–50 s (over vitest's limit
 * on a loaded machine). On a mismatch, the first differing offset and the lengths.
 */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength))) return;
  let at = 0;
  while (at < actual.length && at < expected.length && actual[at] === expected[at]) at++;
  expect({ firstDifferenceAt: at, actualLength: actual.length }).toEqual({ firstDifferenceAt: -1, actualLength: expected.length });
}

describe('packFast', () => {
  it('writes the same bytes as msgpackr for every value kind the data model uses', () => {
    fc.assert(
      fc.property(packable, (v) => {
        expectSameBytes(packFast(v), encode(v));
      }),
      { numRuns: 1000 },
    );
  });

  it('matches at the size boundaries of every header (bin, str, array up to 32-bit lengths)', () => {
    for (const n of [0, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000]) {
      const values: Packable[] = [new Uint8Array(n).fill(7), 'a'.repeat(n), Array.from({ length: n }, (_, i) => i % 200)];
      for (const v of values) expect(packFast(v)).toEqual(encode(v));
    }
    expect(decode(packFast([1, 'x', new Uint8Array(2), null]), 100)).toEqual([1, 'x', new Uint8Array(2), null]);
  });

  it('sizes its buffer exactly and leaves reserved bytes in front of the encoding', () => {
    const value: Packable = [3, true, 'tag', new Uint8Array(1 << 20).fill(9), [null, false]];
    const packed = packFast(value, 2);
    expect(packed.buffer.byteLength).toBe(packed.length); // one exactly sized allocation
    expect(Array.from(packed.subarray(0, 2))).toEqual([0, 0]);
    expect(packed.subarray(2)).toEqual(encode(value));
  });

  it('returns a fresh array each call (a later pack never changes an earlier result)', () => {
    const first = packFast([1, 2, 3]);
    const copy = first.slice();
    packFast([9, 9, 9, new Uint8Array(100000)]);
    expect(first).toEqual(copy);
  });
});
