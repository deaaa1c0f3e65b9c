/** Tree message codec: round trips, and hostile bytes only ever give DecodeError (STYLE.md: decode at the boundary). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../core/errors.ts';
import { decodeTreeMessage, encodeTreeMessage, type TreeMessage } from '../../replica/messages.ts';

const guid = fc.uint8Array({ minLength: 32, maxLength: 32 });
const bytes = fc.uint8Array({ maxLength: 64 });
const nodeId = fc.string({ minLength: 1, maxLength: 20 });
const uint = fc.nat({ max: 2 ** 40 });
const entry = fc.record({ update: bytes, certificate: bytes, blocks: fc.array(bytes, { maxLength: 3 }) });

const message: fc.Arbitrary<TreeMessage> = fc.oneof(
  fc.record({ type: fc.constant('attach' as const), aguid: guid, nextVersion: uint }),
  fc.record({ type: fc.constant('attach-ok' as const), aguid: guid, path: fc.array(nodeId, { maxLength: 5 }), nextVersion: uint }),
  fc.record({ type: fc.constant('attach-refused' as const), aguid: guid, redirect: fc.array(nodeId, { maxLength: 5 }) }),
  fc.record({ type: fc.constant('detach' as const), aguid: guid }),
  fc.record({ type: fc.constant('push' as const), aguid: guid, entries: fc.array(entry, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('fetch' as const), aguid: guid, fromVersion: uint }),
  fc.record({ type: fc.constant('heartbeat' as const), aguid: guid, heartbeat: bytes }),
  fc.record({
    type: fc.constant('snapshot' as const),
    aguid: guid,
    certificate: bytes,
    blocks: fc.array(fc.record({ kind: fc.constantFrom('data' as const, 'interior' as const, 'root' as const), bytes }), { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant('read' as const),
    requestId: uint,
    aguid: guid,
    version: fc.option(uint, { nil: null }),
    offset: uint,
    length: fc.nat({ max: 1 << 20 }),
    maxAgeMs: uint,
  }),
  fc.record({ type: fc.constant('fetch-blocks' as const), aguid: guid, bguids: fc.array(guid, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('blocks' as const), aguid: guid, blocks: fc.array(bytes, { maxLength: 3 }), absent: fc.array(guid, { maxLength: 3 }) }),
  fc.record({ type: fc.constant('batch-certificate' as const), sequence: uint, epoch: uint, root: guid, signature: bytes, statements: fc.array(bytes, { maxLength: 4 }) }),
  fc.record({
    type: fc.constant('read-reply' as const),
    requestId: uint,
    status: fc.constantFrom('ok' as const, 'too-stale' as const, 'not-cached' as const, 'unknown-object' as const, 'out-of-range' as const),
    certificate: fc.option(bytes, { nil: null }),
    heartbeat: fc.option(bytes, { nil: null }),
    blocks: fc.array(fc.record({ kind: fc.constantFrom('data' as const, 'interior' as const, 'root' as const), bytes }), { maxLength: 3 }),
  }),
);

/** Byte arrays compare by content; msgpack gives Buffers back, the codec plain Uint8Arrays. */
function normalise(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('hex')}` : v)));
}

describe('tree message codec', () => {
  it('round-trips every message kind', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(normalise(decodeTreeMessage(encodeTreeMessage(m)))).toEqual(normalise(m));
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes decode to DecodeError, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), (junk) => {
        try {
          decodeTreeMessage(junk);
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('mutated valid frames decode to a message or DecodeError, never another exception', () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), (m, at, xor, truncate) => {
        const frame = encodeTreeMessage(m).slice();
        const i = at % frame.length;
        const mutated = truncate ? frame.subarray(0, i) : (frame[i]! ^= xor, frame);
        try {
          decodeTreeMessage(mutated);
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses fields of the wrong size: a 31-byte AGUID, an unknown format version', () => {
    const attach = encodeTreeMessage({ type: 'attach', aguid: new Uint8Array(32), nextVersion: 1 });
    expect(() => decodeTreeMessage(encodeTreeMessage({ type: 'attach', aguid: new Uint8Array(31), nextVersion: 1 }))).toThrow(DecodeError);
    const badFormat = attach.slice();
    badFormat[2] = 7; // [type, format, ...]: the format byte follows the array header and the type
    expect(() => decodeTreeMessage(badFormat)).toThrow(DecodeError);
  });
});
