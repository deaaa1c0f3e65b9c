/**
 * The Merkle tree over a block's n fragments. Leaves are H(fragmentLeaf ‖ u32 index ‖ payload);
 * a level is reduced pairwise with H(fragmentNode ‖ left ‖ right), and an odd last node is carried
 * up unchanged (never paired with itself, so no two leaf lists share a root by duplication).
 * Since n is known from (k, m), a leaf index fixes the whole path shape: a proof is just the list
 * of siblings, bottom-up, and its length must be exactly pathLengthOf(index, n).
 */
import { assert } from '../../core/assert.ts';
import { u32be } from '../../core/bytes.ts';
import { HashTag, taggedHash, type Crypto } from '../../core/crypto.ts';

export function leafHash(crypto: Crypto, index: number, payload: Uint8Array): Uint8Array {
  return taggedHash(crypto, HashTag.fragmentLeaf, u32be(index), payload);
}

function nodeHash(crypto: Crypto, left: Uint8Array, right: Uint8Array): Uint8Array {
  return taggedHash(crypto, HashTag.fragmentNode, left, right);
}

/** Number of siblings on the path of leaf `index` in a tree of `leafCount` leaves. */
export function pathLengthOf(index: number, leafCount: number): number {
  assert(index >= 0 && index < leafCount, 'pathLengthOf: index inside the tree');
  let length = 0;
  for (let width = leafCount, at = index; width > 1; width = Math.ceil(width / 2), at >>= 1) {
    if (at % 2 === 1 || at + 1 < width) length++;
  }
  return length;
}

/** The top hash and every leaf's path. */
export function buildTree(crypto: Crypto, leaves: readonly Uint8Array[]): { top: Uint8Array; paths: Uint8Array[][] } {
  assert(leaves.length >= 1, 'buildTree wants at least one leaf');
  const paths: Uint8Array[][] = leaves.map(() => []);
  // positions[i] = where leaf i's ancestor sits in the current level.
  const positions = leaves.map((_, i) => i);
  let level = [...leaves];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? nodeHash(crypto, level[i]!, level[i + 1]!) : level[i]!);
    }
    for (let leaf = 0; leaf < leaves.length; leaf++) {
      const at = positions[leaf]!;
      const sibling = at ^ 1;
      if (sibling < level.length) paths[leaf]!.push(level[sibling]!);
      positions[leaf] = at >> 1;
    }
    level = next;
  }
  return { top: level[0]!, paths };
}

/** The top hash that `leaf` at `index` with sibling list `path` claims. Path length is pre-checked. */
export function topFromPath(
  crypto: Crypto,
  leaf: Uint8Array,
  index: number,
  leafCount: number,
  path: readonly Uint8Array[],
): Uint8Array {
  assert(path.length === pathLengthOf(index, leafCount), 'topFromPath: caller checks the path length');
  let hash = leaf;
  let used = 0;
  for (let width = leafCount, at = index; width > 1; width = Math.ceil(width / 2), at >>= 1) {
    if (at % 2 === 1) hash = nodeHash(crypto, path[used++]!, hash);
    else if (at + 1 < width) hash = nodeHash(crypto, hash, path[used++]!);
  }
  return hash;
}
