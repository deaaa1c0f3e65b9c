/**
 * replica/sized-pack.ts: the exactly sized encoder for block-carrying tree messages must write
 * the very bytes msgpackr writes (peers and stored frames decode either), size its buffer
 * exactly, and leave reserved bytes in front for the transport's channel byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../../core/codec.ts';
import { decodeTreeMessage, encodeTreeFrame, encodeTreeMessage, type TreeMessage } from '../../replica/messages.ts';
import { packSized, type Packable } from '../../replica/sized-pack.ts';

// Integers around every msgpack width boundary, and byte arrays around the bin8/bin16/bin32 ones.
const uint = fc.oneof(
  fc.constantFrom(0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffffff, 0x100000000, Number.MAX_SAFE_INTEGER),
  fc.nat({ max: 2 ** 40 }),
);
const bytes = fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0xfff0, max: 0x10010 }).map((n) => new Uint8Array(n).fill(n & 0xff)));
const packable: fc.Arbitrary<Packable> = fc.letrec<{ value: Packable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    uint,
    bytes,
    fc.array(tie('value'), { maxLength: 20 }),
  ),
})).value;

describe('sized msgpack', () => {
  it('writes the same bytes as msgpackr for null, booleans, safe integers, byte arrays and arrays', () => {
    fc.assert(
      fc.property(packable, (value) => {
        expect(Buffer.from(packSized(value)).equals(Buffer.from(encode(value)))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('arrays of 15, 16 and 65,536 items use the right headers', () => {
    for (const n of [15, 16, 65_535, 65_536]) {
      const value = Array.from({ length: n }, (_v, i) => i & 0x7f);
      expect(Buffer.from(packSized(value)).equals(Buffer.from(encode(value)))).toBe(true);
    }
  });

  it('a frame leaves the reserved bytes in front and is the message encoding after them', () => {
    const reply: TreeMessage = {
      type: 'read-reply',
      requestId: 7,
      status: 'ok',
      certificate: new Uint8Array(100).fill(1),
      heartbeat: null,
      blocks: [
        { kind: 'root', bytes: new Uint8Array(200).fill(2) },
        { kind: 'data', bytes: new Uint8Array(1 << 20).fill(3) },
      ],
    };
    const small: TreeMessage = { type: 'fetch', aguid: new Uint8Array(32).fill(4), fromVersion: 3 };
    for (const m of [reply, small]) {
      const frame = encodeTreeFrame(m, 1);
      expect(frame[0]).toBe(0);
      expect(frame.buffer.byteLength).toBe(frame.length); // one exactly sized allocation
      expect(Buffer.from(frame.subarray(1)).equals(Buffer.from(encodeTreeMessage(m)))).toBe(true);
      expect(decodeTreeMessage(frame.subarray(1)).type).toBe(m.type);
    }
  });
});
