// The hot-path msgpack writer must produce byte-for-byte what core/codec.ts's encode (msgpackr)
// produces, so BGUIDs, VGUIDs, digests and signatures do not depend on which one ran.
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
    fc.array(tie('value'), { maxLength: 20 }),
  ),
})).value;

describe('packFast', () => {
  it('writes the same bytes as msgpackr for every value kind the data model uses', () => {
    fc.assert(
      fc.property(packable, (v) => {
        expect(packFast(v)).toEqual(encode(v));
      }),
      { numRuns: 1000 },
    );
  });

  it('matches at the size boundaries of every header (bin, str, array up to 32-bit lengths)', () => {
    for (const n of [0, 15, 16, 31, 32, 255, 256, 65535, 65536]) {
      const values: Packable[] = [new Uint8Array(n).fill(7), 'a'.repeat(n), Array.from({ length: n }, (_, i) => i % 200)];
      for (const v of values) expect(packFast(v)).toEqual(encode(v));
    }
    expect(decode(packFast([1, 'x', new Uint8Array(2), null]), 100)).toEqual([1, 'x', new Uint8Array(2), null]);
  });

  it('returns a fresh array each call (a later pack never changes an earlier result)', () => {
    const first = packFast([1, 2, 3]);
    const copy = first.slice();
    packFast([9, 9, 9, new Uint8Array(100000)]);
    expect(first).toEqual(copy);
  });
});
