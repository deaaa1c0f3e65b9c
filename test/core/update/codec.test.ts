// Codecs of every data-model record: round trips of arbitrary values, signatures over the
// canonical body, and hostile input (random bytes, mutated valid frames, wrong shapes) that must
// give DecodeError and nothing else — never a crash, another error type or a hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../../../core/codec.ts';
import { DecodeError } from '../../../core/errors.ts';
import { decodeInteriorBlock, encodeInteriorBlock } from '../../../core/version/interior-block.ts';
import { decodeRootBlock, encodeRootBlock, type RootBlock } from '../../../core/version/root-block.ts';
import { decodeUpdate, encodeUnsignedUpdate, encodeUpdate } from '../../../core/update/update-codec.ts';
import { signUpdate, updateDigest, verifyUpdateSignature } from '../../../core/update/update-signature.ts';
import type { Action, Predicate, Update } from '../../../core/update/update.ts';
import { nonceIsFresh } from '../../../core/update/nonce.ts';
import { aguid, alice, crypto, owner } from './fixtures.ts';

const guid = fc.uint8Array({ minLength: 32, maxLength: 32 });
const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const small = fc.nat(1_000_000);
const bytes = fc.uint8Array({ maxLength: 64 });
const source = fc.oneof(
  bytes.map((b) => ({ kind: 'inline' as const, bytes: b })),
  fc.record({ kind: fc.constant('ref' as const), bguid: guid, length: fc.nat(4096) }),
);
const predicate: fc.Arbitrary<Predicate> = fc.oneof(
  fc.constant({ kind: 'always' as const }),
  fc.record({ kind: fc.constant('version-is' as const), version: small }),
  fc.record({ kind: fc.constant('size-is' as const), sizeBytes: small }),
  fc.record({ kind: fc.constant('block-hash-is' as const), index: small, bguid: guid }),
  fc.record({ kind: fc.constant('bytes-equal' as const), offset: small, bytes }),
  fc.record({ kind: fc.constant('bytes-hash-is' as const), offset: small, length: small, sha256: guid }),
);
const action: fc.Arbitrary<Action> = fc.oneof(
  fc.record({
    kind: fc.constant('create' as const),
    name: fc.string({ maxLength: 40 }),
    blockBytes: fc.integer({ min: 1, max: 65536 }),
    fanoutMax: fc.integer({ min: 4, max: 256 }),
    writerPublicKeys: fc.array(key, { maxLength: 3 }),
  }),
  fc.record({ kind: fc.constant('write-bytes' as const), offset: small, bytes }),
  fc.record({ kind: fc.constant('append' as const), bytes }),
  fc.record({ kind: fc.constant('append-blocks' as const), blocks: fc.array(source, { maxLength: 4 }) }),
  fc.record({ kind: fc.constantFrom('replace-block' as const, 'insert-block' as const), index: small, block: source }),
  fc.record({ kind: fc.constant('delete-block' as const), index: small }),
  fc.record({ kind: fc.constant('truncate' as const), sizeBytes: small }),
  fc.record({ kind: fc.constant('set-acl' as const), writerPublicKeys: fc.array(key, { maxLength: 3 }) }),
);
const updateArb: fc.Arbitrary<Update> = fc.record({
  aguid: guid,
  writerPublicKey: key,
  nonce: fc.nat(),
  clauses: fc.array(fc.record({ predicates: fc.array(predicate, { maxLength: 3 }), actions: fc.array(action, { maxLength: 3 }) }), {
    minLength: 1,
    maxLength: 3,
  }),
  signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
});

const rootArb: fc.Arbitrary<RootBlock> = fc
  .record({
    aguid: guid,
    version: fc.nat(1000),
    previous: guid,
    tree: fc.option(fc.record({ bguid: guid, leafCount: fc.integer({ min: 1, max: 1000 }), extra: fc.nat(1000), height: fc.integer({ min: 1, max: 10 }) })),
    owner: key,
    writers: fc.array(key, { maxLength: 4 }),
    digest: guid,
    timestampMs: fc.nat(),
  })
  .map((r) => {
    const tree = r.tree ? { bguid: r.tree.bguid, leafCount: r.tree.leafCount, byteCount: r.tree.leafCount + r.tree.extra, height: r.tree.height } : null;
    return {
      aguid: r.aguid,
      version: r.version,
      previousVguid: r.version === 0 ? new Uint8Array(0) : r.previous,
      sizeBytes: tree?.byteCount ?? 0,
      blockBytes: 65536,
      fanoutMax: 64,
      tree,
      ownerPublicKey: r.owner,
      writerPublicKeys: r.writers,
      updateDigest: r.digest,
      timestampMs: r.timestampMs,
    };
  });

/** Only DecodeError may escape a decoder, whatever the input. */
function decodesOrDecodeError(decoder: (b: Uint8Array) => unknown, input: Uint8Array): void {
  try {
    decoder(input);
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
  }
}

function mutate(frame: Uint8Array, edits: { at: number; value: number; op: number }[]): Uint8Array {
  let out = frame.slice();
  for (const e of edits) {
    const at = e.at % Math.max(1, out.length);
    if (e.op === 0) out[at] = e.value;
    else if (e.op === 1) out = out.slice(0, at);
    else out = Uint8Array.from([...out.subarray(0, at), e.value, ...out.subarray(at)]);
  }
  return out;
}
const edits = fc.array(fc.record({ at: fc.nat(), value: fc.nat(255), op: fc.nat(2) }), { minLength: 1, maxLength: 4 });
const decoders: [string, (b: Uint8Array) => unknown][] = [
  ['update', decodeUpdate],
  ['root block', decodeRootBlock],
  ['interior block', decodeInteriorBlock],
];

describe('update codec', () => {
  it('round-trips any update exactly (decode(encode(u)) == u)', () => {
    fc.assert(fc.property(updateArb, (u) => {
      expect(decodeUpdate(encodeUpdate(u))).toEqual(u);
    }), { numRuns: 500 });
  });

  it('signatures verify for the writer, fail for a changed body or another key; the digest covers the body', () => {
    const unsigned = { aguid, writerPublicKey: owner.publicKey, nonce: 7, clauses: [{ predicates: [], actions: [{ kind: 'truncate' as const, sizeBytes: 0 }] }] };
    const signed = signUpdate(crypto, owner, unsigned);
    expect(verifyUpdateSignature(crypto, signed)).toBe(true);
    expect(verifyUpdateSignature(crypto, { ...signed, nonce: 8 })).toBe(false);
    expect(verifyUpdateSignature(crypto, { ...signed, writerPublicKey: alice.publicKey })).toBe(false);
    expect(verifyUpdateSignature(crypto, decodeUpdate(encodeUpdate(signed)))).toBe(true);
    expect(updateDigest(crypto, signed)).toEqual(updateDigest(crypto, unsigned));
    expect(updateDigest(crypto, { ...unsigned, nonce: 8 })).not.toEqual(updateDigest(crypto, unsigned));
    expect(() => signUpdate(crypto, alice, unsigned)).toThrow(/writerPublicKey/);
  });

  it('the encoding is deterministic: the same update always gives the same bytes', () => {
    fc.assert(fc.property(updateArb, (u) => {
      expect(encodeUnsignedUpdate(decodeUpdate(encodeUpdate(u)))).toEqual(encodeUnsignedUpdate(u));
    }), {
      numRuns: 200,
    });
  });

  it('rejects wrong shapes with DecodeError naming the field', () => {
    const good = encodeUpdate(signUpdate(crypto, owner, { aguid, writerPublicKey: owner.publicKey, nonce: 1, clauses: [{ predicates: [], actions: [] }] }));
    expect(() => decodeUpdate(new Uint8Array(0))).toThrow(DecodeError);
    expect(() => decodeUpdate(encode(['update', 2, aguid, owner.publicKey, 1, [], new Uint8Array(64)]))).toThrow(/format/);
    expect(() => decodeUpdate(encode(['update', 1, aguid, owner.publicKey, 1, [], new Uint8Array(64)]))).toThrow(/no clauses/);
    expect(() => decodeUpdate(encode(['update', 1, aguid, owner.publicKey, -1, [[[], []]], new Uint8Array(64)]))).toThrow(/nonce/);
    expect(() => decodeUpdate(encode(['update', 1, aguid, owner.publicKey, 1, [[[['version-is', 1.5]], []]], new Uint8Array(64)]))).toThrow(/version/);
    expect(() => decodeUpdate(encode(['update', 1, aguid, owner.publicKey, 1, [[[], [['explode', 1]]]], new Uint8Array(64)]))).toThrow(/unknown action/);
    expect(() => decodeUpdate(encode(['update', 1, aguid, owner.publicKey, 1, [[[['always', 1]], []]], new Uint8Array(64)]))).toThrow(DecodeError);
    const clauses = Array.from({ length: 17 }, () => [[], []]);
    expect(() => decodeUpdate(encode(['update', 1, aguid, owner.publicKey, 1, clauses, new Uint8Array(64)]))).toThrow(/exceeds 16/);
    expect(decodeUpdate(good).nonce).toBe(1);
  });
});

describe('hostile frames', () => {
  for (const [name, decoder] of decoders) {
    it(`${name}: random bytes give DecodeError or a valid record, never anything else`, () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => decodesOrDecodeError(decoder, b)), { numRuns: 1000 });
    });
  }

  it('mutated valid frames (byte flips, truncation, insertion) give DecodeError or a valid record', () => {
    const interior = fc
      .array(fc.record({ bguid: guid, byteCount: fc.integer({ min: 1, max: 100 }) }), { minLength: 1, maxLength: 8 })
      .map((cs) => encodeInteriorBlock({ height: 1, children: cs.map((c) => ({ ...c, leafCount: 1 })) }));
    const frames = fc.oneof(updateArb.map(encodeUpdate), rootArb.map(encodeRootBlock), interior);
    fc.assert(
      fc.property(frames, edits, (frame, e) => {
        const mutated = mutate(frame, e);
        for (const [, decoder] of decoders) decodesOrDecodeError(decoder, mutated);
      }),
      { numRuns: 1000 },
    );
  });

  it('root and interior blocks round-trip and reject inconsistent counts', () => {
    fc.assert(fc.property(rootArb, (r) => {
      expect(decodeRootBlock(encodeRootBlock(r))).toEqual(r);
    }), { numRuns: 300 });
    const g = new Uint8Array(32);
    expect(() => decodeInteriorBlock(encode(['interior', 1, 1, [[g, 5, 2]]]))).toThrow(/data child has one leaf/);
    expect(() => decodeInteriorBlock(encode(['interior', 1, 2, [[g, 1, 2]]]))).toThrow(/at least one byte/);
    expect(() => decodeInteriorBlock(encode(['interior', 1, 0, [[g, 1, 1]]]))).toThrow(/height/);
    expect(() => decodeInteriorBlock(encode(['interior', 1, 1, []]))).toThrow(/no children/);
  });

  it('the nonce rule is strictly increasing per writer', () => {
    expect(nonceIsFresh(undefined, 0)).toBe(true);
    expect(nonceIsFresh(5, 6)).toBe(true);
    expect(nonceIsFresh(5, 5)).toBe(false);
    expect(nonceIsFresh(5, 4)).toBe(false);
    expect(nonceIsFresh(undefined, -1)).toBe(false);
  });
});
