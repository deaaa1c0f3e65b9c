/**
 * The Merkle tree over one executed batch's certificate statements: the ring threshold-signs only
 * the root, and a certificate is that signature plus one leaf's path (DESIGN.md, "Certificates").
 * Leaves and nodes use their own domain tags; an odd node is carried up unchanged.
 */
import { assert } from '../core/assert.ts';
import { bytesEqual } from '../core/bytes.ts';
import { HashTag, taggedHash, type Crypto } from '../core/crypto.ts';

export function leafHash(crypto: Crypto, statement: Uint8Array): Uint8Array {
  return taggedHash(crypto, HashTag.batchLeaf, statement);
}

function nodeHash(crypto: Crypto, left: Uint8Array, right: Uint8Array): Uint8Array {
  return taggedHash(crypto, HashTag.batchNode, left, right);
}

/** All levels, leaves first; levels[last] has the root alone. */
export function buildLevels(crypto: Crypto, statements: readonly Uint8Array[]): Uint8Array[][] {
  assert(statements.length > 0, 'a batch tree needs at least one statement');
  const levels: Uint8Array[][] = [statements.map((s) => leafHash(crypto, s))];
  while (levels[levels.length - 1]!.length > 1) {
    const below = levels[levels.length - 1]!;
    const above: Uint8Array[] = [];
    for (let i = 0; i < below.length; i += 2) {
      above.push(i + 1 < below.length ? nodeHash(crypto, below[i]!, below[i + 1]!) : below[i]!);
    }
    levels.push(above);
  }
  return levels;
}

export function rootOf(levels: Uint8Array[][]): Uint8Array {
  return levels[levels.length - 1]![0]!;
}

/** Sibling hashes from the leaf up (levels where the node has no sibling contribute nothing). */
export function pathOf(levels: Uint8Array[][], leafIndex: number): Uint8Array[] {
  const path: Uint8Array[] = [];
  let index = leafIndex;
  for (let level = 0; level < levels.length - 1; level++) {
    const nodes = levels[level]!;
    const sibling = index ^ 1;
    if (sibling < nodes.length) path.push(nodes[sibling]!);
    index >>= 1;
  }
  return path;
}

/** True iff `path` leads from `statement` at `leafIndex` of `leafCount` to `root`. Never throws. */
export function verifyPath(
  crypto: Crypto,
  statement: Uint8Array,
  leafIndex: number,
  leafCount: number,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (leafCount < 1 || leafIndex >= leafCount) return false;
  let hash = leafHash(crypto, statement);
  let index = leafIndex;
  let width = leafCount;
  let used = 0;
  while (width > 1) {
    const sibling = index ^ 1;
    if (sibling < width) {
      const next = path[used++];
      if (!next) return false;
      hash = index & 1 ? nodeHash(crypto, next, hash) : nodeHash(crypto, hash, next);
    }
    index >>= 1;
    width = Math.ceil(width / 2);
  }
  return used === path.length && bytesEqual(hash, root);
}
