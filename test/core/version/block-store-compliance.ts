/**
 * The BlockStore compliance suite every implementation runs (memory here, lmdb in
 * test/runtime/lmdb-block-store.test.ts): content addressing, hash checks on put, kind isolation,
 * deletes, listing, and mark-and-sweep GC keeping exactly the live versions readable.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../core/bytes.ts';
import { IntegrityError } from '../../../core/errors.ts';
import { bguidOf } from '../../../core/version/block.ts';
import type { BlockStore } from '../../../core/version/block-store.ts';
import { collectGarbage } from '../../../core/version/gc.ts';
import { checkTree } from '../../../core/version/tree-check.ts';
import { readerOf } from '../../../core/version/tree-read.ts';
import { readHead, readVersion } from '../../../core/version/version-read.ts';
import { applyUpdate } from '../../../core/update/apply.ts';
import type { Head } from '../../../core/version/root-block.ts';
import { bytesOf, clause, createAction, crypto, owner, update } from '../update/fixtures.ts';
import type { Update } from '../../../core/update/update.ts';

export interface StoreUnderTest {
  readonly store: BlockStore;
  /** Makes writes durable where that means something (lmdb flush); a no-op in memory. */
  barrier(): Promise<void>;
}

export function blockStoreCompliance(name: string, make: () => Promise<StoreUnderTest>): void {
  describe(`${name}: BlockStore compliance`, () => {
    it('put names blocks by tagged hash; get checks the kind; has and byteLengthOf agree', async () => {
      const { store, barrier } = await make();
      const bytes = bytesOf(1000, 1);
      const bguid = store.put('data', bytes);
      expect(bguid).toEqual(bguidOf(crypto, 'data', bytes));
      await barrier();
      expect(store.get(bguid, 'data')).toEqual(bytes);
      expect(store.get(bguid, 'interior')).toBeUndefined();
      expect(store.has(bguid)).toBe(true);
      expect(store.byteLengthOf(bguid, 'data')).toBe(1000);
      expect(store.byteLengthOf(bguid, 'root')).toBeUndefined();
      const absent = bguidOf(crypto, 'data', bytesOf(5, 2));
      expect(store.get(absent, 'data')).toBeUndefined();
      expect(store.has(absent)).toBe(false);
    });

    it('putVerified refuses bytes that do not hash to the claimed BGUID, and stores nothing', async () => {
      const { store } = await make();
      const bytes = bytesOf(64, 3);
      const claimed = bguidOf(crypto, 'data', bytesOf(64, 4));
      expect(() => store.putVerified(claimed, 'data', bytes)).toThrow(IntegrityError);
      expect(store.has(claimed)).toBe(false);
      // The right bytes under the wrong kind are refused too: the tag is part of the name.
      expect(() => store.putVerified(bguidOf(crypto, 'data', bytes), 'interior', bytes)).toThrow(IntegrityError);
      store.putVerified(bguidOf(crypto, 'data', bytes), 'data', bytes);
      expect(store.get(bguidOf(crypto, 'data', bytes), 'data')).toEqual(bytes);
    });

    it('delete removes a block; bguids lists exactly what is stored', async () => {
      const { store, barrier } = await make();
      const a = store.put('data', bytesOf(10, 5));
      const b = store.put('root', bytesOf(10, 6));
      await barrier();
      const c = store.put('interior', bytesOf(10, 7));
      store.delete(a);
      const listed = new Set([...store.bguids()].map(toHex));
      expect(listed).toEqual(new Set([b, c].map(toHex)));
      await barrier();
      expect(store.has(a)).toBe(false);
      expect(new Set([...store.bguids()].map(toHex))).toEqual(new Set([b, c].map(toHex)));
    });

    it('mark-and-sweep keeps exactly the live versions (and loose uploads) and frees the rest', async () => {
      const { store, barrier } = await make();
      let head: Head | null = null;
      const run = (u: Update): Head => {
        const outcome = applyUpdate({ crypto, blocks: store, timestampMs: 1 }, head, u);
        if (outcome.kind !== 'commit') throw new Error(outcome.detail);
        return (head = outcome.head);
      };
      run(update(owner, [clause([createAction(16, 4), { kind: 'append', bytes: bytesOf(500, 8) }])]));
      const v0 = head!;
      const v1 = run(update(owner, [clause([{ kind: 'write-bytes', offset: 100, bytes: bytesOf(40, 9) }])]));
      const v2 = run(update(owner, [clause([{ kind: 'truncate', sizeBytes: 200 }])]));
      const loose = store.put('data', bytesOf(16, 10));
      const junk = store.put('data', bytesOf(16, 11));
      await barrier();
      const before = [...store.bguids()].length;
      const gc = collectGarbage(store, [v0.vguid, v2.vguid], [loose]);
      await barrier();
      expect(gc.missingCount).toBe(0);
      expect(gc.deletedCount).toBeGreaterThan(0);
      expect([...store.bguids()].length).toBe(before - gc.deletedCount);
      expect(store.has(junk)).toBe(false);
      expect(store.has(loose)).toBe(true);
      expect(store.has(v1.vguid)).toBe(false);
      for (const v of [v0, v2]) {
        const h = readHead(store, v.vguid);
        expect(readVersion(store, h)).toEqual(readVersion(store, v));
        checkTree(readerOf(store), { blockBytes: 16, fanoutMax: 4 }, h.root.tree);
      }
      const expected = bytesOf(500, 8);
      expected.set(bytesOf(40, 9), 100);
      expect(readVersion(store, v2)).toEqual(expected.slice(0, 200));
      // Everything left is reachable: a second pass frees nothing.
      expect(collectGarbage(store, [v0.vguid, v2.vguid], [loose]).deletedCount).toBe(0);
    });
  });
}
