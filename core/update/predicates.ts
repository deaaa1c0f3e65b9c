/**
 * Predicate evaluation against the current version (Pond's guards). On an object that does not
 * exist yet only `always` holds. Range predicates that reach past the end are false, not errors.
 */
import { bytesEqual } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import type { Head, TreeRoot } from '../version/root-block.ts';
import { leafAt, leafAtByte, readRange, type TreeReader } from '../version/tree-read.ts';
import type { Predicate } from './update.ts';

function rangeInside(offset: number, length: number, sizeBytes: number): boolean {
  return offset + length <= sizeBytes;
}

/** What one update's predicates may still read: bytes, and leaves (a range of 1-byte leaves costs a lookup per byte). */
export interface PredicateBudget {
  readBytesLeft: number;
  readLeavesLeft: number;
}

/**
 * Takes a range's bytes and leaves off the budget before it is read (two root-to-leaf walks find
 * its first and last leaf); false, leaving the budget negative, if it does not fit.
 */
function spend(budget: PredicateBudget, reader: TreeReader, tree: TreeRoot | null, offset: number, length: number): boolean {
  budget.readBytesLeft -= length;
  if (budget.readBytesLeft < 0) return false;
  if (tree === null || length === 0) return true;
  const leaves = leafAtByte(reader, tree, offset + length - 1).index - leafAtByte(reader, tree, offset).index + 1;
  budget.readLeavesLeft -= leaves;
  return budget.readLeavesLeft >= 0;
}

/**
 * Whether `p` holds. What it would read of the object comes off `budget` first; a predicate that
 * would take it below zero is false and leaves it negative (the caller aborts).
 */
export function predicateHolds(crypto: Crypto, reader: TreeReader, head: Head | null, p: Predicate, budget: PredicateBudget): boolean {
  if (p.kind === 'always') return true;
  if (head === null) return false;
  const root = head.root;
  switch (p.kind) {
    case 'version-is':
      return root.version === p.version;
    case 'size-is':
      return root.sizeBytes === p.sizeBytes;
    case 'block-hash-is':
      return root.tree !== null && p.index < root.tree.leafCount && bytesEqual(leafAt(reader, root.tree, p.index).pointer.bguid, p.bguid);
    case 'bytes-equal':
      return rangeInside(p.offset, p.bytes.length, root.sizeBytes) && spend(budget, reader, root.tree, p.offset, p.bytes.length) && bytesEqual(readRange(reader, root.tree, p.offset, p.bytes.length), p.bytes);
    case 'bytes-hash-is':
      return (
        rangeInside(p.offset, p.length, root.sizeBytes) &&
        spend(budget, reader, root.tree, p.offset, p.length) &&
        bytesEqual(crypto.sha256([readRange(reader, root.tree, p.offset, p.length)]), p.sha256)
      );
  }
}
