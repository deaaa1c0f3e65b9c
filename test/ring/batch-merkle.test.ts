/** The batch Merkle tree (DESIGN.md "Certificates"): every leaf's path verifies, nothing else does, and it agrees with core/threshold's tree. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchMerkleTree, batchLeafHash } from '../../core/threshold/batch-merkle.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { buildLevels, pathOf, rootOf, verifyPath } from '../../ring/batch-merkle.ts';

const statements = fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 40 });

describe('batch Merkle tree', () => {
  it('every leaf path verifies against the root; a wrong index, leaf or root does not', () => {
    fc.assert(
      fc.property(statements, fc.nat(), (leaves, pick) => {
        const levels = buildLevels(fakeCrypto, leaves);
        const root = rootOf(levels);
        const i = pick % leaves.length;
        const path = pathOf(levels, i);
        expect(verifyPath(fakeCrypto, leaves[i]!, i, leaves.length, path, root)).toBe(true);
        const tampered = Uint8Array.from([...leaves[i]!, 1]);
        expect(verifyPath(fakeCrypto, tampered, i, leaves.length, path, root)).toBe(false);
        if (leaves.length > 1) {
          const j = (i + 1) % leaves.length;
          const same = leaves[j]!.length === leaves[i]!.length && leaves[j]!.every((b, k) => b === leaves[i]![k]);
          expect(verifyPath(fakeCrypto, leaves[i]!, j, leaves.length, path, root)).toBe(same && pathOf(levels, j).every((p, k) => p.every((b, x) => b === path[k]?.[x])));
        }
        expect(verifyPath(fakeCrypto, leaves[i]!, i, leaves.length, path, new Uint8Array(32))).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('computes the same root as core/threshold BatchMerkleTree (so ring certificates verify there)', () => {
    fc.assert(
      fc.property(statements, (leaves) => {
        const theirs = new BatchMerkleTree(fakeCrypto, leaves.map((s) => batchLeafHash(fakeCrypto, s)));
        expect(rootOf(buildLevels(fakeCrypto, leaves))).toEqual(theirs.root);
      }),
      { numRuns: 100 },
    );
  });
});
