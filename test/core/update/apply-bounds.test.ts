/**
 * Every ring replica runs the same update, so an update that makes applyUpdate throw, run for
 * minutes or allocate gigabytes does so on all of them at once (a throw stops the process, and a
 * restart runs the same batch again). These are the bounds a signed, authorised update meets
 * (session-18 review of core/update): each case failed, threw or ran away before.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../core/bytes.ts';
import { InvalidArgumentError } from '../../../core/errors.ts';
import { applyUpdate } from '../../../core/update/apply.ts';
import { decodeUpdate, encodeUpdate, objectBytesMax, predicateReadBytesMax, updateBytesMax } from '../../../core/update/update-codec.ts';
import type { Action, Clause } from '../../../core/update/update.ts';
import { MemoryBlockStore } from '../../../core/version/block-store.ts';
import { encodeInteriorBlock, type Pointer } from '../../../core/version/interior-block.ts';
import { decodeRootBlock, encodeRootBlock, type Head } from '../../../core/version/root-block.ts';
import { readerOf } from '../../../core/version/tree-read.ts';
import { appendLeaves } from '../../../core/version/tree-edit.ts';
import { operationBytesMax } from '../../../ring/codec.ts';
import { aguid, clause, createAction, crypto, ObjectUnderTest, owner, update } from './fixtures.ts';

const MiB = 2 ** 20;
const ref = (bguid: Uint8Array, length: number) => ({ kind: 'ref' as const, bguid, length });

/** A created object of `blockBytes` holding `leaves` copies of one uploaded block of that size. */
function objectOfCopies(blockBytes: number, leaves: number): { o: ObjectUnderTest; block: Uint8Array } {
  const o = new ObjectUnderTest({ verifyOnGet: false });
  o.commit(update(owner, [clause([createAction(blockBytes, 256)])]));
  const block = o.blocks.put('data', new Uint8Array(blockBytes).fill(5));
  if (leaves > 0) o.commit(update(owner, [clause([{ kind: 'append-blocks', blocks: Array.from({ length: leaves }, () => ref(block, blockBytes)) }])]));
  return { o, block };
}

describe('applyUpdate: bounds on what one update may cost', () => {
  it('an inline append cut into more than the leaf budget aborts too-large, quickly and without a trace', () => {
    const o = new ObjectUnderTest({ verifyOnGet: false });
    o.commit(update(owner, [clause([createAction(1, 4)])]));
    o.commit(update(owner, [clause([{ kind: 'append', bytes: Uint8Array.of(1) }])]));
    const before = o.blocks.size;
    // 200,000 one-byte leaves (4 MiB made 4.19 M leaves: 44 s and 3.1 GiB per replica).
    const outcome = o.run(update(owner, [clause([{ kind: 'append', bytes: new Uint8Array(200_000).fill(1) }])]));
    expect(outcome).toMatchObject({ kind: 'abort', reason: 'too-large', currentVersion: 1 });
    expect(o.blocks.size).toBe(before);
  });

  it('rewriting more leaf bytes than the budget aborts too-large (64 two-byte writes across 4 MiB leaf boundaries read 512 MiB)', () => {
    const { o } = objectOfCopies(4 * MiB, 130);
    const writes: Action[] = Array.from({ length: 64 }, (_, i) => ({ kind: 'write-bytes', offset: (2 * i + 1) * 4 * MiB - 1, bytes: Uint8Array.of(i, i) }));
    expect(o.run(update(owner, [clause(writes)]))).toMatchObject({ kind: 'abort', reason: 'too-large' });
    // One write across one boundary (two leaves rewritten) is fine.
    expect(o.run(update(owner, [clause(writes.slice(0, 1))]))).toMatchObject({ kind: 'commit' });
  });

  it('predicates read at most predicateReadBytesMax in all; a longer bytes-hash-is does not decode', () => {
    const { o } = objectOfCopies(4 * MiB, 8);
    const hashIs = (length: number) => ({ kind: 'bytes-hash-is' as const, offset: 0, length, sha256: new Uint8Array(32) });
    const u = update(owner, [clause([], [hashIs(predicateReadBytesMax + 1)])]);
    expect(() => decodeUpdate(encodeUpdate(u))).toThrow(/exceeds/);
    // Sixteen clauses of one full-budget predicate each: the second one goes over.
    const clauses: Clause[] = Array.from({ length: 16 }, () => clause([], [hashIs(predicateReadBytesMax)]));
    expect(o.run(update(owner, clauses))).toMatchObject({ kind: 'abort', reason: 'too-large' });
    expect(o.run(update(owner, clauses.slice(0, 1)))).toMatchObject({ kind: 'abort', reason: 'predicates-failed' });
  });

  it('predicates read at most leavesPerUpdateMax leaves in all (16 MiB of 1-byte leaves is 16 M lookups)', () => {
    const { o } = objectOfCopies(1, 65_536);
    const block = o.blocks.put('data', new Uint8Array(1).fill(5));
    o.commit(update(owner, [clause([{ kind: 'append-blocks', blocks: Array.from({ length: 1000 }, () => ref(block, 1)) }])]));
    const hashIs = (length: number) => ({ kind: 'bytes-hash-is' as const, offset: 0, length, sha256: new Uint8Array(32) });
    expect(o.run(update(owner, [clause([], [hashIs(66_000)])]))).toMatchObject({ kind: 'abort', reason: 'too-large' });
    expect(o.run(update(owner, [clause([], [hashIs(60_000)])]))).toMatchObject({ kind: 'abort', reason: 'predicates-failed' });
  });

  it('an update denser than the decoder allows for its size does not encode (it was refused by the ring as malformed)', () => {
    const clauses: Clause[] = Array.from({ length: 16 }, () => clause(Array.from({ length: 64 }, () => ({ kind: 'truncate' as const, sizeBytes: 0 })), Array.from({ length: 32 }, () => ({ kind: 'always' as const }))));
    expect(() => encodeUpdate(update(owner, clauses))).toThrow(InvalidArgumentError);
    expect(() => encodeUpdate(update(owner, clauses.slice(0, 2)))).not.toThrow();
  });

  it('an object may not grow past objectBytesMax (at 2^53 the size was no longer an integer and apply threw)', () => {
    // A legal head of 2^31 - 1 copies of one 4 MiB leaf, built directly (the honest way takes ~11,000 updates).
    const blocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
    const leaf: Pointer = { bguid: blocks.put('data', new Uint8Array(4 * MiB).fill(3)), byteCount: 4 * MiB, leafCount: 1 };
    const memo = new Map<string, Pointer>();
    const build = (height: number, count: number): Pointer => {
      const key = `${height}/${count}`;
      const hit = memo.get(key);
      if (hit) return hit;
      const per = 256 ** (height - 1);
      const children: Pointer[] = [];
      for (let left = count; left > 0; left -= Math.min(per, left)) children.push(height === 1 ? leaf : build(height - 1, Math.min(per, left)));
      const p = { bguid: blocks.put('interior', encodeInteriorBlock({ height, children })), byteCount: children.reduce((s, c) => s + c.byteCount, 0), leafCount: count };
      memo.set(key, p);
      return p;
    };
    const tree = { ...build(4, 2 ** 31 - 1), height: 4 };
    const rootBytes = encodeRootBlock({
      aguid, version: 9, previousVguid: new Uint8Array(32).fill(1), sizeBytes: tree.byteCount, blockBytes: 4 * MiB, fanoutMax: 256, tree,
      ownerPublicKey: owner.publicKey, writerPublicKeys: [], updateDigest: new Uint8Array(32), timestampMs: 1,
    });
    const head: Head = { vguid: blocks.put('root', rootBytes), root: decodeRootBlock(rootBytes) };
    expect(head.root.sizeBytes).toBeGreaterThan(objectBytesMax);
    const grow = (a: Action) => applyUpdate({ crypto, blocks, timestampMs: 2 }, head, update(owner, [clause([a])]));
    expect(grow({ kind: 'append-blocks', blocks: [ref(leaf.bguid, 4 * MiB)] })).toMatchObject({ kind: 'abort', reason: 'too-large' });
    expect(grow({ kind: 'append', bytes: Uint8Array.of(1) })).toMatchObject({ kind: 'abort', reason: 'too-large' });
    expect(grow({ kind: 'insert-block', index: 0, block: ref(leaf.bguid, 4 * MiB) })).toMatchObject({ kind: 'abort', reason: 'too-large' });
    expect(grow({ kind: 'write-bytes', offset: head.root.sizeBytes, bytes: Uint8Array.of(1) })).toMatchObject({ kind: 'abort', reason: 'too-large' });
    // Shrinking is always allowed.
    expect(grow({ kind: 'delete-block', index: 0 })).toMatchObject({ kind: 'commit' });
  });

  it('a leaf that equals a block the store already held loose is still among the new blocks (else no server archives it)', () => {
    const data = new Uint8Array(100).fill(42);
    const u = update(owner, [clause([createAction(4096, 4), { kind: 'append', bytes: data }])]);
    const kinds = (loose: boolean): string[] => {
      const blocks = new MemoryBlockStore(crypto);
      if (loose) blocks.put('data', data); // an upload whose update never came
      const outcome = applyUpdate({ crypto, blocks, timestampMs: 5 }, null, u);
      if (outcome.kind !== 'commit') throw new Error('expected a commit');
      return outcome.newBlocks.map((b) => `${b.kind}:${toHex(b.bguid).slice(0, 8)}`);
    };
    expect(kinds(true)).toEqual(kinds(false));
  });

  it('an update the ring cannot carry does not encode (InvalidArgumentError), and the limits agree', () => {
    expect(updateBytesMax).toBe(operationBytesMax);
    const u = update(owner, [clause([{ kind: 'append', bytes: new Uint8Array(4 * MiB) }, { kind: 'append', bytes: new Uint8Array(MiB) }])]);
    expect(() => encodeUpdate(u)).toThrow(InvalidArgumentError);
  });
});

describe('tree splice: long inserts', () => {
  it('inserts 300,000 leaves into a non-empty tree (spreading them into splice() overflowed the stack)', () => {
    const blocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
    const leaf: Pointer = { bguid: blocks.put('data', Uint8Array.of(7)), byteCount: 1, leafCount: 1 };
    const w = { ...readerOf(blocks), shape: { blockBytes: 1, fanoutMax: 256 } };
    const one = appendLeaves(w, null, [leaf]);
    const tree = appendLeaves(w, one, Array.from({ length: 300_000 }, () => leaf));
    expect(tree?.leafCount).toBe(300_001);
  });
});
