// Issue 2 must-show; Pond (FAST 2003) "Data Model": versions share unchanged blocks (DESIGN.md,
// copy-on-write). A 1-byte write into a 64 MiB object writes at most depth + 1 new blocks (plus
// the new root block), and everything else is shared with the previous version by BGUID.
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../../core/bytes.ts';
import { checkTree } from '../../../core/version/tree-check.ts';
import { readerOf } from '../../../core/version/tree-read.ts';
import { readVersion } from '../../../core/version/version-read.ts';
import { ObjectUnderTest, bytesOf, clause, createAction, owner, update } from '../update/fixtures.ts';

const objectBytes = 64 * 1024 * 1024;
const blockBytes = 64 * 1024;

function bigObject(fanoutMax: number): ObjectUnderTest {
  const o = new ObjectUnderTest();
  o.commit(update(owner, [clause([createAction(blockBytes, fanoutMax)])]));
  // Streamed as a client would: 64 distinct 64 KiB blocks uploaded, then updates naming them by
  // reference, 1024 leaves in all (so the data hashes once, not once per leaf and once per digest).
  const refs = Array.from({ length: 64 }, (_, i) => {
    const bytes = bytesOf(blockBytes, 100 + i);
    return { kind: 'ref' as const, bguid: o.blocks.put('data', bytes), length: bytes.length };
  });
  for (let i = 0; i < objectBytes / blockBytes / refs.length; i++) o.commit(update(owner, [clause([{ kind: 'append-blocks', blocks: refs }])]));
  return o;
}

describe('structural sharing', () => {
  for (const fanoutMax of [64, 4]) {
    it(`a 1-byte write into 64 MiB (64 KiB blocks, fan-out ${fanoutMax}) writes depth + 1 blocks plus the root`, () => {
      const o = bigObject(fanoutMax);
      const before = o.head!;
      const depth = checkTree(readerOf(o.blocks), { blockBytes, fanoutMax }, before.root.tree).height;
      expect(before.root.sizeBytes).toBe(objectBytes);
      const storedBefore = o.blocks.size;
      const offset = 40_000_123;
      const outcome = o.run(update(owner, [clause([{ kind: 'write-bytes', offset, bytes: Uint8Array.of(0x5a) }])]));
      expect(outcome.kind).toBe('commit');
      if (outcome.kind !== 'commit') return;
      const kinds = outcome.newBlocks.map((b) => b.kind);
      expect(kinds.filter((k) => k === 'data')).toHaveLength(1);
      expect(kinds.filter((k) => k === 'interior')).toHaveLength(depth);
      expect(kinds.filter((k) => k === 'root')).toHaveLength(1);
      expect(outcome.newBlocks.length).toBeLessThanOrEqual(depth + 2);
      // Nothing else was written: the rest of the tree is the old version's blocks.
      expect(o.blocks.size).toBe(storedBefore + outcome.newBlocks.length);
      expect(readVersion(o.blocks, outcome.head, offset, 1)).toEqual(Uint8Array.of(0x5a));
      expect(readVersion(o.blocks, before, offset, 1)).not.toEqual(Uint8Array.of(0x5a));
      expect(bytesEqual(readVersion(o.blocks, outcome.head, 0, 4096), readVersion(o.blocks, before, 0, 4096))).toBe(true);
      if (fanoutMax === 4) expect(depth).toBeGreaterThanOrEqual(5);
    });
  }
});
