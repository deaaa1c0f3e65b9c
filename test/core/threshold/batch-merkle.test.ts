// The batch Merkle tree that amortises one ring signature over a batch (DESIGN.md "Certificates
// and heartbeats"; Pond §4.4 signs per update, we sign per batch).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { HashTag, taggedHash } from '../../../core/crypto.ts';
import { BatchMerkleTree, batchLeafHash, batchRootFromPath, verifyBatchPath } from './imports.ts';

const leaves = (count: number) => Array.from({ length: count }, (_, i) => batchLeafHash(nodeCrypto, Uint8Array.of(i & 255, i >> 8)));

describe('batch Merkle tree', () => {
  it('every leaf of every batch size from 1 to 70 climbs to the root along its path, and no other leaf does (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), fc.nat(), (count, pick) => {
        const tree = new BatchMerkleTree(nodeCrypto, leaves(count));
        const index = pick % count;
        const path = tree.pathOf(index);
        expect(path.length).toBeLessThanOrEqual(Math.ceil(Math.log2(count)));
        expect(verifyBatchPath(nodeCrypto, tree.root, leaves(count)[index]!, index, count, path)).toBe(true);
        const other = (index + 1) % count;
        if (other !== index) expect(verifyBatchPath(nodeCrypto, tree.root, leaves(count)[other]!, index, count, path)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('a one-leaf batch has the leaf as root and an empty path', () => {
    const tree = new BatchMerkleTree(nodeCrypto, leaves(1));
    expect(tree.root).toEqual(leaves(1)[0]);
    expect(tree.pathOf(0)).toEqual([]);
  });

  it('the root of three leaves is node(node(a, b), c): the odd leaf moves up, it is not duplicated', () => {
    const [a, b, c] = leaves(3) as [Uint8Array, Uint8Array, Uint8Array];
    const ab = taggedHash(nodeCrypto, HashTag.batchNode, a, b);
    expect(new BatchMerkleTree(nodeCrypto, [a, b, c]).root).toEqual(taggedHash(nodeCrypto, HashTag.batchNode, ab, c));
    // a duplicated last leaf would give the same root for [a, b, c, c]: ours does not
    expect(new BatchMerkleTree(nodeCrypto, [a, b, c, c]).root).not.toEqual(new BatchMerkleTree(nodeCrypto, [a, b, c]).root);
  });

  it('a wrong index, leaf count, extra or missing or altered sibling is rejected', () => {
    const tree = new BatchMerkleTree(nodeCrypto, leaves(11));
    const leaf = leaves(11)[6]!;
    const path = tree.pathOf(6);
    expect(verifyBatchPath(nodeCrypto, tree.root, leaf, 6, 11, path)).toBe(true);
    expect(verifyBatchPath(nodeCrypto, tree.root, leaf, 7, 11, path)).toBe(false);
    // A count that changes the tree's shape changes the path length. (A count of the same shape
    // climbs to the same root; the signed header pins the count, so that gains a forger nothing.)
    expect(verifyBatchPath(nodeCrypto, tree.root, leaf, 6, 8, path)).toBe(false);
    expect(verifyBatchPath(nodeCrypto, tree.root, leaf, 6, 11, [...path, path[0]!])).toBe(false);
    expect(verifyBatchPath(nodeCrypto, tree.root, leaf, 6, 11, path.slice(1))).toBe(false);
    const altered = path.map((p) => p.slice());
    altered[1]![0]! ^= 1;
    expect(verifyBatchPath(nodeCrypto, tree.root, leaf, 6, 11, altered)).toBe(false);
    expect(batchRootFromPath(nodeCrypto, leaf, -1, 11, path)).toBeNull();
    expect(batchRootFromPath(nodeCrypto, leaf, 6, 0, path)).toBeNull();
  });

  it('a leaf hash cannot pose as an inner node (different domain tags)', () => {
    const [a, b] = leaves(2) as [Uint8Array, Uint8Array];
    const root = new BatchMerkleTree(nodeCrypto, [a, b]).root;
    // Claiming a one-leaf batch whose "leaf" is the root: the leaf hash of anything is tagged batchLeaf, never batchNode.
    expect(batchLeafHash(nodeCrypto, new Uint8Array([...a, ...b]))).not.toEqual(root);
  });
});
