/**
 * Predicate evaluation against the current version (Pond's guards). On an object that does not
 * exist yet only `always` holds. Range predicates that reach past the end are false, not errors.
 */
import { bytesEqual } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import type { Head } from '../version/root-block.ts';
import { leafAt, readRange, type TreeReader } from '../version/tree-read.ts';
import type { Predicate } from './update.ts';

function rangeInside(offset: number, length: number, sizeBytes: number): boolean {
  return offset + length <= sizeBytes;
}

function spend(budget: { readBytesLeft: number }, bytes: number): boolean {
  budget.readBytesLeft -= bytes;
  return budget.readBytesLeft >= 0;
}

/**
 * Whether `p` holds. Bytes it would read of the object come off `budget.readBytesLeft` first; a
 * predicate that would take it below zero is false and leaves it negative (the caller aborts).
 */
export function predicateHolds(crypto: Crypto, reader: TreeReader, head: Head | null, p: Predicate, budget: { readBytesLeft: number }): boolean {
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
      return rangeInside(p.offset, p.bytes.length, root.sizeBytes) && spend(budget, p.bytes.length) && bytesEqual(readRange(reader, root.tree, p.offset, p.bytes.length), p.bytes);
    case 'bytes-hash-is':
      return (
        rangeInside(p.offset, p.length, root.sizeBytes) &&
        spend(budget, p.length) &&
        bytesEqual(crypto.sha256([readRange(reader, root.tree, p.offset, p.length)]), p.sha256)
      );
  }
}
