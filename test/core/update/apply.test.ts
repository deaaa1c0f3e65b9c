// Update semantics of OceanStore (ASPLOS 2000, the update model) as Pond implements them (FAST 2003,
// "Data Model" section): clauses of predicates -> actions, first holding
// clause applied atomically, else abort; ACL checks; the abort changes nothing.
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from '../../../core/bytes.ts';
import { aguidOf } from '../../../core/crypto.ts';
import { readHead, readVersion } from '../../../core/version/version-read.ts';
import { applyUpdate } from '../../../core/update/apply.ts';
import { NodeCache } from '../../../core/version/node-cache.ts';
import { MemoryBlockStore } from '../../../core/version/block-store.ts';
import { readerOf } from '../../../core/version/tree-read.ts';
import * as edit from '../../../core/version/tree-edit.ts';
import { updateDigest } from '../../../core/update/update-signature.ts';
import { ObjectUnderTest, aguid, alice, bytesOf, clause, createAction, crypto, mallory, owner, update } from './fixtures.ts';

function created(writers: Uint8Array[] = []): ObjectUnderTest {
  const o = new ObjectUnderTest();
  o.commit(update(owner, [clause([createAction(16, 4, writers)])]));
  return o;
}

describe('applyUpdate', () => {
  it('create makes version 0 owned by the writer, with an empty tree and the update digest', () => {
    const o = new ObjectUnderTest();
    const u = update(owner, [clause([createAction(16, 4, [alice.publicKey])])]);
    const head = o.commit(u);
    expect(head.root.version).toBe(0);
    expect(head.root.previousVguid.length).toBe(0);
    expect(head.root.sizeBytes).toBe(0);
    expect(head.root.tree).toBeNull();
    expect(bytesEqual(head.root.ownerPublicKey, owner.publicKey)).toBe(true);
    expect(head.root.writerPublicKeys.map((k) => bytesEqual(k, alice.publicKey))).toEqual([true]);
    expect(bytesEqual(head.root.updateDigest, updateDigest(crypto, u))).toBe(true);
    expect(bytesEqual(readHead(o.blocks, head.vguid).root.aguid, aguid)).toBe(true);
  });

  it('create binds the AGUID to (writer, name): another writer cannot create it', () => {
    const o = new ObjectUnderTest();
    const outcome = o.run(update(mallory, [clause([createAction()])]));
    expect(outcome).toMatchObject({ kind: 'abort', reason: 'bad-aguid', currentVersion: null });
    expect(o.blocks.size).toBe(0);
  });

  it('create on an existing object aborts with exists', () => {
    const o = created();
    expect(o.run(update(owner, [clause([createAction()])]))).toMatchObject({ kind: 'abort', reason: 'exists', currentVersion: 0 });
  });

  it('actions on an object that does not exist abort with no-object', () => {
    const o = new ObjectUnderTest();
    expect(o.run(update(owner, [clause([{ kind: 'append', bytes: bytesOf(5, 1) }])]))).toMatchObject({ reason: 'no-object' });
  });

  it('create and append in one clause commit together as version 0', () => {
    const o = new ObjectUnderTest();
    const data = bytesOf(100, 2);
    const head = o.commit(update(owner, [clause([createAction(), { kind: 'append', bytes: data }])]));
    expect(head.root.version).toBe(0);
    expect(readVersion(o.blocks, head)).toEqual(data);
  });

  it('a stale version-is aborts, reports the current version, and changes nothing (not even the store)', () => {
    const o = created();
    o.commit(update(owner, [clause([{ kind: 'append', bytes: bytesOf(40, 3) }])]));
    const before = o.head!;
    const storeSize = o.blocks.size;
    const stale = update(owner, [clause([{ kind: 'write-bytes', offset: 0, bytes: bytesOf(8, 4) }], [{ kind: 'version-is', version: 0 }])]);
    const outcome = o.run(stale);
    expect(outcome).toMatchObject({ kind: 'abort', reason: 'predicates-failed', currentVersion: 1 });
    expect(o.head).toBe(before);
    expect(o.blocks.size).toBe(storeSize);
    expect(readVersion(o.blocks, before)).toEqual(bytesOf(40, 3));
  });

  it('the first clause whose predicates all hold is the one applied', () => {
    const o = created();
    o.commit(update(owner, [clause([{ kind: 'append', bytes: bytesOf(10, 5) }])]));
    const outcome = o.run(
      update(owner, [
        clause([{ kind: 'append', bytes: Uint8Array.of(1) }], [{ kind: 'size-is', sizeBytes: 9 }]),
        clause([{ kind: 'append', bytes: Uint8Array.of(2) }], [{ kind: 'size-is', sizeBytes: 10 }, { kind: 'version-is', version: 1 }]),
        clause([{ kind: 'append', bytes: Uint8Array.of(3) }]),
      ]),
    );
    expect(outcome).toMatchObject({ kind: 'commit', clauseIndex: 1 });
    expect(readVersion(o.blocks, o.head!, 10, 1)).toEqual(Uint8Array.of(2));
  });

  it('a clause is atomic: a failing later action discards the earlier ones', () => {
    const o = created();
    const before = o.head!;
    const storeSize = o.blocks.size;
    const outcome = o.run(update(owner, [clause([{ kind: 'append', bytes: bytesOf(50, 6) }, { kind: 'truncate', sizeBytes: 51 }])]));
    expect(outcome).toMatchObject({ kind: 'abort', reason: 'out-of-range' });
    expect(o.head).toBe(before);
    expect(o.blocks.size).toBe(storeSize);
  });

  it('byte predicates: bytes-equal, bytes-hash-is, block-hash-is hold exactly when the data matches', () => {
    const o = created();
    const data = bytesOf(40, 7);
    const head = o.commit(update(owner, [clause([{ kind: 'append', bytes: data }])]));
    const leaf0 = crypto.sha256([Uint8Array.of(1), data.subarray(0, 16)]);
    const holds = (p: Parameters<typeof clause>[1]) =>
      applyUpdate({ crypto, blocks: o.blocks, timestampMs: 0 }, head, update(owner, [clause([], p)])).kind === 'commit';
    expect(holds([{ kind: 'bytes-equal', offset: 10, bytes: data.slice(10, 30) }])).toBe(true);
    expect(holds([{ kind: 'bytes-equal', offset: 11, bytes: data.slice(10, 30) }])).toBe(false);
    expect(holds([{ kind: 'bytes-equal', offset: 30, bytes: bytesOf(11, 1) }])).toBe(false);
    expect(holds([{ kind: 'bytes-hash-is', offset: 5, length: 20, sha256: crypto.sha256([data.slice(5, 25)]) }])).toBe(true);
    expect(holds([{ kind: 'bytes-hash-is', offset: 5, length: 21, sha256: crypto.sha256([data.slice(5, 25)]) }])).toBe(false);
    expect(holds([{ kind: 'block-hash-is', index: 0, bguid: leaf0 }])).toBe(true);
    expect(holds([{ kind: 'block-hash-is', index: 1, bguid: leaf0 }])).toBe(false);
    expect(holds([{ kind: 'block-hash-is', index: 3, bguid: leaf0 }])).toBe(false);
  });

  it('a writer neither owner nor on the ACL aborts unauthorized before any predicate is read', () => {
    const o = created([alice.publicKey]);
    expect(o.run(update(mallory, [clause([{ kind: 'append', bytes: bytesOf(3, 1) }])]))).toMatchObject({
      kind: 'abort',
      reason: 'unauthorized',
      currentVersion: 0,
    });
    expect(o.run(update(alice, [clause([{ kind: 'append', bytes: bytesOf(3, 1) }])])).kind).toBe('commit');
  });

  it('set-acl is owner-only, and takes effect for the next update', () => {
    const o = created([alice.publicKey]);
    expect(o.run(update(alice, [clause([{ kind: 'set-acl', writerPublicKeys: [alice.publicKey, mallory.publicKey] }])]))).toMatchObject({
      reason: 'unauthorized',
    });
    const tooMany = Array.from({ length: 65 }, (_, i) => bytesOf(32, i));
    expect(o.run(update(owner, [clause([{ kind: 'set-acl', writerPublicKeys: tooMany }])]))).toMatchObject({ reason: 'bad-acl' });
    expect(o.run(update(owner, [clause([{ kind: 'set-acl', writerPublicKeys: [bytesOf(31, 1)] }])]))).toMatchObject({ reason: 'bad-acl' });
    o.commit(update(owner, [clause([{ kind: 'set-acl', writerPublicKeys: [mallory.publicKey] }])]));
    expect(o.run(update(alice, [clause([{ kind: 'append', bytes: bytesOf(3, 1) }])]))).toMatchObject({ reason: 'unauthorized' });
    expect(o.run(update(mallory, [clause([{ kind: 'append', bytes: bytesOf(3, 1) }])])).kind).toBe('commit');
  });

  it('block references: uploaded blocks append by BGUID; missing or oversized ones abort', () => {
    const o = created();
    const blockA = bytesOf(16, 8);
    const bguidA = o.blocks.put('data', blockA);
    const outcome = o.run(update(owner, [clause([{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: bguidA, length: 16 }] }])]));
    expect(outcome.kind).toBe('commit');
    if (outcome.kind === 'commit') expect(outcome.referencedBlocks.map((b) => bytesEqual(b, bguidA))).toEqual([true]);
    expect(readVersion(o.blocks, o.head!)).toEqual(blockA);
    const missing = crypto.sha256([bytesOf(4, 1)]);
    expect(o.run(update(owner, [clause([{ kind: 'insert-block', index: 0, block: { kind: 'ref', bguid: missing, length: 4 } }])]))).toMatchObject({
      reason: 'missing-block',
    });
    const big = o.blocks.put('data', bytesOf(17, 9));
    expect(o.run(update(owner, [clause([{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: big, length: 17 }] }])]))).toMatchObject({
      reason: 'bad-block',
    });
    expect(o.run(update(owner, [clause([{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: bguidA, length: 15 }] }])]))).toMatchObject({
      reason: 'bad-block',
    });
    // An interior block's BGUID named as data is "not that block", not a crash.
    const interior = o.head!.root.tree!.bguid;
    expect(o.run(update(owner, [clause([{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: interior, length: 16 }] }])]))).toMatchObject({
      reason: 'missing-block',
    });
  });

  it('versions chain: each commit names the previous VGUID and is deterministic for the same inputs', () => {
    const o = created();
    const v0 = o.head!;
    const u = update(owner, [clause([{ kind: 'append', bytes: bytesOf(33, 10) }])]);
    const a = applyUpdate({ crypto, blocks: o.blocks, timestampMs: 77 }, v0, u);
    const b = applyUpdate({ crypto, blocks: new ObjectUnderTest().blocks, timestampMs: 77 }, v0, u);
    expect(a.kind).toBe('commit');
    if (a.kind === 'commit' && b.kind === 'commit') {
      expect(a.head.root.version).toBe(1);
      expect(bytesEqual(a.head.root.previousVguid, v0.vguid)).toBe(true);
      expect(bytesEqual(a.head.vguid, b.head.vguid)).toBe(true);
      expect(a.newBlocks.at(-1)!.kind).toBe('root');
    }
  });

  it('a shared NodeCache changes nothing but speed: same VGUIDs with and without it, and it stays bounded', () => {
    const create = update(owner, [clause([createAction(16, 4)])]);
    const plain = new ObjectUnderTest();
    const cachedObject = new ObjectUnderTest();
    plain.commit(create);
    let cachedHead = cachedObject.commit(create);
    const nodeCache = new NodeCache(8);
    for (let i = 0; i < 30; i++) {
      const u = update(owner, [clause([i % 3 === 2 ? { kind: 'delete-block', index: i % 5 } : { kind: 'append', bytes: bytesOf(23, i) }])]);
      const a = plain.run(u);
      const b = applyUpdate({ crypto, blocks: cachedObject.blocks, timestampMs: plain.timestampMs - 1, nodeCache }, cachedHead, u);
      expect(b.kind).toBe(a.kind);
      if (a.kind === 'commit' && b.kind === 'commit') {
        expect(bytesEqual(a.head.vguid, b.head.vguid)).toBe(true);
        cachedHead = b.head;
      }
    }
    expect(nodeCache.size).toBe(8);
    expect(readVersion(cachedObject.blocks, cachedHead)).toEqual(readVersion(plain.blocks, plain.head!));
  });

  it('deferred hashing within a clause gives the same tree as hashing after every edit, and hashes less', () => {
    const o = created();
    o.commit(update(owner, [clause([{ kind: 'append', bytes: bytesOf(600, 40) }])]));
    const before = o.head!;
    const edits = [
      { kind: 'write-bytes' as const, offset: 17, bytes: bytesOf(9, 41) },
      { kind: 'write-bytes' as const, offset: 300, bytes: bytesOf(40, 42) },
      { kind: 'delete-block' as const, index: 3 },
      { kind: 'write-bytes' as const, offset: 20, bytes: bytesOf(3, 43) },
      { kind: 'truncate' as const, sizeBytes: 500 },
    ];
    // The same edits, each writing its interior nodes at once, on a copy of the store taken first.
    const copy = new MemoryBlockStore(crypto);
    for (const b of o.blocks.bguids()) {
      for (const kind of ['data', 'interior', 'root'] as const) {
        const bytes = o.blocks.get(b, kind);
        if (bytes) copy.put(kind, bytes);
      }
    }
    const storedBefore = new Set([...o.blocks.bguids()].map((b) => toHex(b)));
    const outcome = o.run(update(owner, [clause(edits)]));
    expect(outcome.kind).toBe('commit');
    if (outcome.kind !== 'commit') return;
    const w = { ...readerOf(copy), shape: { blockBytes: 16, fanoutMax: 4 } };
    let tree = before.root.tree;
    tree = edit.writeBytes(w, tree, 17, bytesOf(9, 41));
    tree = edit.writeBytes(w, tree, 300, bytesOf(40, 42));
    tree = edit.deleteLeaf(w, tree, 3);
    tree = edit.writeBytes(w, tree, 20, bytesOf(3, 43));
    tree = edit.truncate(w, tree, 500);
    expect(bytesEqual(tree!.bguid, outcome.head.root.tree!.bguid)).toBe(true);
    const interiorWritten = outcome.newBlocks.filter((b) => b.kind === 'interior').length;
    const interiorImmediate = [...copy.bguids()].filter((b) => !storedBefore.has(toHex(b)) && copy.get(b, 'interior')).length;
    expect(interiorWritten).toBeLessThan(interiorImmediate);
  });

  it('a head of another object aborts wrong-object', () => {
    const o = created();
    const other = aguidOf(crypto, owner.publicKey, 'other');
    expect(o.run(update(owner, [clause([{ kind: 'append', bytes: bytesOf(1, 1) }])], other))).toMatchObject({ reason: 'wrong-object' });
  });
});
