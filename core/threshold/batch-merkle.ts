/**
 * The Merkle tree over one agreed batch, so the ring pays one threshold signature per batch
 * instead of per update. Leaves are H(batchLeaf ‖ encoded statement); inner nodes are
 * H(batchNode ‖ left ‖ right); an odd node at the end of a level moves up unchanged (no
 * duplication, so no two different leaf lists share a root). The leaf count is signed in the
 * batch header, so the verifier knows the tree's exact shape and path length.
 */
import { assert } from '../assert.ts';
import { bytesEqual } from '../bytes.ts';
import { HashTag, hashBytes, taggedHash, type Crypto } from '../crypto.ts';
import { checkArgument } from '../errors.ts';

/** Bounds every path and every batch (a batch of 65,536 updates is far past any batchSizeMax). */
export const batchLeafCountMax = 65_536;
export const batchPathLengthMax = 16;

export function batchLeafHash(crypto: Crypto, encodedStatement: Uint8Array): Uint8Array {
  return taggedHash(crypto, HashTag.batchLeaf, encodedStatement);
}

function nodeHash(crypto: Crypto, left: Uint8Array, right: Uint8Array): Uint8Array {
  return taggedHash(crypto, HashTag.batchNode, left, right);
}

/** The whole tree, kept so every entry's path can be read off after one build. */
export class BatchMerkleTree {
  /** levels[0] = leaf hashes, last level = [root]. */
  private readonly levels: Uint8Array[][];

  constructor(crypto: Crypto, leafHashes: readonly Uint8Array[]) {
    checkArgument(
      Array.isArray(leafHashes) && leafHashes.length >= 1 && leafHashes.length <= batchLeafCountMax,
      'leafHashes',
      `1..${batchLeafCountMax} leaf hashes`,
    );
    for (const leaf of leafHashes) checkArgument(leaf instanceof Uint8Array && leaf.length === hashBytes, 'leafHashes[]', `${hashBytes}-byte hashes`);
    this.levels = [[...leafHashes]];
    for (let level = this.levels[0]!; level.length > 1; ) {
      const next: Uint8Array[] = [];
      for (let i = 0; i < level.length; i += 2) {
        next.push(i + 1 < level.length ? nodeHash(crypto, level[i]!, level[i + 1]!) : level[i]!);
      }
      this.levels.push(next);
      level = next;
    }
  }

  get leafCount(): number {
    return this.levels[0]!.length;
  }

  get root(): Uint8Array {
    return this.levels[this.levels.length - 1]![0]!;
  }

  /** Sibling hashes from the leaf up; levels where the node had no sibling contribute nothing. */
  pathOf(leafIndex: number): Uint8Array[] {
    checkArgument(Number.isSafeInteger(leafIndex) && leafIndex >= 0 && leafIndex < this.leafCount, 'leafIndex', `0..${this.leafCount - 1}`);
    const path: Uint8Array[] = [];
    let index = leafIndex;
    for (let l = 0; l < this.levels.length - 1; l++) {
      const level = this.levels[l]!;
      const sibling = index ^ 1;
      if (sibling < level.length) path.push(level[sibling]!);
      index >>= 1;
    }
    assert(path.length <= batchPathLengthMax, 'batch path longer than batchPathLengthMax');
    return path;
  }
}

/**
 * The root that `leafHash` at `leafIndex` of a `leafCount`-leaf batch climbs to along `path`,
 * or null if the path has the wrong length for that shape. Never throws.
 */
export function batchRootFromPath(
  crypto: Crypto,
  leafHash: Uint8Array,
  leafIndex: number,
  leafCount: number,
  path: readonly Uint8Array[],
): Uint8Array | null {
  if (!Number.isSafeInteger(leafCount) || leafCount < 1 || leafCount > batchLeafCountMax) return null;
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= leafCount) return null;
  if (!Array.isArray(path) || path.length > batchPathLengthMax) return null;
  let hash = leafHash;
  let index = leafIndex;
  let width = leafCount;
  let used = 0;
  while (width > 1) {
    const sibling = index ^ 1;
    if (sibling < width) {
      const other = path[used++];
      if (!(other instanceof Uint8Array) || other.length !== hashBytes) return null;
      hash = (index & 1) === 0 ? nodeHash(crypto, hash, other) : nodeHash(crypto, other, hash);
    }
    index >>= 1;
    width = (width + 1) >> 1;
  }
  return used === path.length ? hash : null;
}

export function verifyBatchPath(
  crypto: Crypto,
  root: Uint8Array,
  leafHash: Uint8Array,
  leafIndex: number,
  leafCount: number,
  path: readonly Uint8Array[],
): boolean {
  const computed = batchRootFromPath(crypto, leafHash, leafIndex, leafCount, path);
  return computed !== null && bytesEqual(computed, root);
}
