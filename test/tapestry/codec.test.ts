import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode } from '../../core/codec.ts';
import { toHex } from '../../core/bytes.ts';
import { DecodeError } from '../../core/errors.ts';
import { decodeTapestryMessage, encodeTapestryMessage, hopsMax } from '../../tapestry/codec.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';

const id = fc.uint8Array({ minLength: 20, maxLength: 20 }).map(toHex);
const ref = fc.record({ id, name: fc.string({ minLength: 1, maxLength: 40 }) });
const level = fc.integer({ min: 0, max: 40 });
const hops = fc.integer({ min: 0, max: hopsMax });
const uint = fc.nat();
/** Request ids are 53 random bits (requests.ts randomRequestId). */
const requestId = fc.maxSafeNat();
const time = fc.oneof(uint, fc.double({ min: 0, max: 1e12, noNaN: true }));
const signature = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ minLength: 64, maxLength: 64 }));

const message: fc.Arbitrary<TapestryMessage> = fc.oneof(
  fc.record({ kind: fc.constantFrom('ping' as const, 'pong' as const), sender: ref, sentAtMs: time }),
  fc.record({ kind: fc.constant('ping' as const), sender: ref, sentAtMs: time, holding: fc.constant(true as const) }),
  fc.record({ kind: fc.constant('backpointer' as const), sender: ref, add: fc.boolean() }),
  fc.record({ kind: fc.constant('route' as const), requestId, origin: ref, targetId: id, level, hops }),
  fc.record({ kind: fc.constant('routeReply' as const), requestId, targetId: id, root: ref, hops }),
  fc.record({ kind: fc.constant('publish' as const), objectId: id, server: ref, level, hops, op: fc.constantFrom('publish' as const, 'unpublish' as const, 'retract' as const), issuedAtMs: time, signature, sideCopy: fc.boolean() }),
  fc.record({ kind: fc.constant('locate' as const), requestId, origin: ref, objectId: id, level, hops }),
  fc.record({ kind: fc.constant('locateReply' as const), requestId, objectId: id, server: fc.option(ref, { nil: null }), issuedAtMs: time, signature, answeredBy: ref, hops }),
  fc.record({ kind: fc.constant('joinRequest' as const), joiner: ref, level, hops }),
  fc.record({ kind: fc.constant('candidates' as const), nodes: fc.array(ref, { maxLength: 20 }) }),
  fc.record({ kind: fc.constant('multicast' as const), sender: ref, joiner: ref, prefixLength: level, rootPrefixLength: level }),
  fc.record({ kind: fc.constant('multicastAck' as const), joinerId: id }),
  fc.record({ kind: fc.constant('joinDone' as const), prefixLength: level }),
  fc.record({ kind: fc.constant('neighbourQuery' as const), level: fc.integer({ min: 0, max: 39 }) }),
  fc.record({ kind: fc.constant('leaving' as const), sender: ref, replacements: fc.array(ref, { maxLength: 10 }) }),
  fc.record({ kind: fc.constant('lookup' as const), requestId, objectId: id }),
  fc.record({ kind: fc.constant('lookupReply' as const), requestId, objectId: id, server: fc.option(ref, { nil: null }), issuedAtMs: time, signature, hops, answered: fc.boolean() }),
);

describe('tapestry wire codec', () => {
  it('every message kind round-trips exactly (property)', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeTapestryMessage(encodeTapestryMessage(m))).toEqual(m);
      }),
      { numRuns: 500 },
    );
  });

  it('a ping has a fixed, small encoding (test vector)', () => {
    const bytes = encodeTapestryMessage({ kind: 'ping', sender: { id: '00'.repeat(20), name: 'a' }, sentAtMs: 5 });
    expect(toHex(bytes)).toBe('9301' + '92' + 'c414' + '00'.repeat(20) + 'a161' + '05');
  });

  it('hostile input is a DecodeError naming the problem', () => {
    const bad: [unknown, RegExp][] = [
      [[99], /unknown tag/],
      [[1, [new Uint8Array(19), 'a'], 0], /sender\.id: expected 20 bytes/],
      [[1, [new Uint8Array(20), ''], 0], /sender\.name: empty/],
      [[1, [new Uint8Array(20), 'a'], -1], /sentAtMs/],
      [[1, [new Uint8Array(20), 'a'], 0, false], /holding: expected true or absent/],
      [[2, [new Uint8Array(20), 'a'], 0, true], /expected 3\.\.3 fields/],
      [[4, 1, [new Uint8Array(20), 'a'], new Uint8Array(20), 0, hopsMax + 1], /hops: .* exceeds/],
      [[14, 40], /level: 40 exceeds 39/],
      [[10, Array.from({ length: 257 }, () => [new Uint8Array(20), 'a'])], /exceeds 256/],
      [[6, new Uint8Array(20), [new Uint8Array(20), 'a'], 0, 0, false], /expected 9\.\.9 fields/],
      [[6, new Uint8Array(20), [new Uint8Array(20), 'a'], 0, 0, 3, 0, new Uint8Array(0), false], /publish\.op: 3 exceeds 2/],
      [[6, new Uint8Array(20), [new Uint8Array(20), 'a'], 0, 0, 0, 0, new Uint8Array(63), false], /publish\.signature: expected 0 or 64 bytes, got 63/],
      [[6, new Uint8Array(20), [new Uint8Array(20), 'a'], 0, 0, 0, -5, new Uint8Array(0), false], /publish\.issuedAtMs/],
      // A map is refused by the codec's scan, before any record decoder (core/codec.ts).
      [{ a: 1 }, /a map at byte 1/],
      ['text', /tagged array/],
      [[16, 1, new Uint8Array(21)], /lookup\.objectId: expected 20 bytes/],
      [[17, 1, new Uint8Array(20), null, 0, new Uint8Array(0), 0, 1], /lookupReply\.answered/],
      [[16, 2 ** 53, new Uint8Array(20)], /lookup\.requestId/],
      [[16, -1, new Uint8Array(20)], /lookup\.requestId/],
    ];
    for (const [value, why] of bad) {
      expect(() => decodeTapestryMessage(encode(value))).toThrow(DecodeError);
      expect(() => decodeTapestryMessage(encode(value))).toThrow(why);
    }
    expect(() => decodeTapestryMessage(new Uint8Array(64 * 1024 + 1))).toThrow(/exceeds the limit/);
  });

  it('random bytes and truncated messages only ever raise DecodeError (fuzz)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), message.chain((m) => {
        const bytes = encodeTapestryMessage(m);
        return fc.nat(bytes.length).map((cut) => bytes.subarray(0, cut));
      })), (bytes) => {
        try {
          decodeTapestryMessage(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
