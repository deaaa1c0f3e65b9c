// The codec boundary (STYLE.md "Errors" 2): hostile bytes give DecodeError, never a crash or hang,
// and sizes are bounded before msgpack sees the input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asBytesField, asList, asTuple, asUint, decode, encode } from '../../core/codec.ts';
import { DecodeError } from '../../core/errors.ts';

describe('codec', () => {
  it('round-trips the value kinds records use, deterministically', () => {
    const value = [1, 'x', new Uint8Array([1, 2, 3]), [2 ** 40, 0, true, null]];
    const a = encode(value);
    expect(encode(value)).toEqual(a);
    const back = decode(a, 1024) as unknown[];
    expect(back[0]).toBe(1);
    expect(asBytesField(back[2], 'b')).toEqual(new Uint8Array([1, 2, 3]));
    expect((back[3] as unknown[])[0]).toBe(2 ** 40);
  });

  it('refuses oversized and empty input before decoding', () => {
    expect(() => decode(new Uint8Array(11), 10)).toThrow(DecodeError);
    expect(() => decode(new Uint8Array(0), 10)).toThrow(DecodeError);
  });

  it('shape helpers name the field and the problem', () => {
    expect(() => asTuple('x', 'frame', 2)).toThrow(/frame: expected an array/);
    expect(() => asTuple([1], 'frame', 2)).toThrow(/frame: expected 2..2 fields/);
    expect(() => asUint(-1, 'version')).toThrow(/version: expected a non-negative integer/);
    expect(() => asUint(1.5, 'version')).toThrow(DecodeError);
    expect(() => asUint(11, 'count', 10)).toThrow(/count: 11 exceeds 10/);
    expect(() => asBytesField(new Uint8Array(3), 'key', { bytes: 32 })).toThrow(/key: expected 32 bytes/);
    expect(() => asList([1, 2, 3], 'items', 2, (v) => v)).toThrow(/items: 3 items exceeds 2/);
  });

  it('scans a frame before msgpack builds it: no maps, extensions, trailing bytes or arrays beyond its size', () => {
    // Everything our records use still decodes (nested arrays, strings, bins, big and negative ints, floats).
    const value = [['a', ['b', [new Uint8Array(70_000), 'x'.repeat(300)]]], [], -1, -(2 ** 40), 2 ** 52, 0.5, true, false, null];
    expect(decode(encode(value), 1 << 20)).toEqual(value);
    const junk = (byte: number, n: number): Uint8Array => {
      const b = new Uint8Array(n + 5);
      b.set([0xdd, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
      return b.fill(byte, 5);
    };
    // 4 MiB of empty maps cost ~1.5 s and ~800 MiB in msgpackr; empty arrays ~350 ms.
    expect(() => decode(junk(0x80, 4 << 20), 8 << 20)).toThrow(/a map at byte 6/);
    expect(() => decode(junk(0x90, 4 << 20), 8 << 20)).toThrow(/too many arrays and strings/);
    // Empty byte arrays (c4 00) count too: 64 MiB of them cost 18 s and 3.5 GiB.
    const bins = new Uint8Array(4 << 20).fill(0);
    bins.set([0xdd, 0, 0x20, 0, 0]);
    for (let i = 5; i + 1 < bins.length; i += 2) bins[i] = 0xc4;
    expect(() => decode(bins, 8 << 20)).toThrow(/too many arrays and strings/);
    expect(() => decode(Uint8Array.of(0x91, 0xd4, 1, 1), 16)).toThrow(/extension type/);
    expect(decode(encode([undefined]), 16)).toEqual([undefined]);
    expect(() => decode(Uint8Array.of(0x91, 0xc1), 16)).toThrow(/reserved byte/);
    expect(() => decode(Uint8Array.of(0x92, 1), 16)).toThrow(/array longer than the bytes left/);
    expect(() => decode(Uint8Array.of(0x91, 0xcd, 1), 16)).toThrow(/truncated/);
    expect(() => decode(Uint8Array.of(0xc4, 5, 1, 2), 16)).toThrow(/truncated/);
    expect(() => decode(Uint8Array.of(1, 2), 16)).toThrow(/trailing bytes/);
    expect(() => decode(new Uint8Array(40).fill(0x91), 64)).toThrow(/nested deeper than 32/);
    // A thousand small arrays in a small message are fine (the allowance is 1,024 plus one per 8 bytes).
    expect((decode(encode(Array.from({ length: 1000 }, () => [])), 4096) as unknown[]).length).toBe(1000);
  });

  it('random and mutated frames decode or throw DecodeError, nothing else', () => {
    const valid = encode([1, 'abc', new Uint8Array(40), [1, 2, [3, 4]]]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (random, at, byte) => {
        for (const bytes of [random, mutate(valid, at, byte)]) {
          try {
            decode(bytes, 1 << 16);
          } catch (error) {
            expect(error).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

function mutate(bytes: Uint8Array, at: number, byte: number): Uint8Array {
  const out = bytes.slice();
  out[at % out.length] = byte;
  return out;
}
