/**
 * Byte- and block-level edits of a version's tree, each a copy-on-write splice. Leaves keep their
 * boundaries under overwrite (only the touched leaves are rewritten), inline appends first top up a
 * short last leaf and then cut blockBytes-sized leaves, and block-level edits place whole leaves.
 * Arguments are validated (InvalidArgumentError); applyUpdate checks peer input before calling, so
 * these never throw on it.
 */
import { checkArgument } from '../errors.ts';
import type { Pointer } from './interior-block.ts';
import type { TreeRoot } from './root-block.ts';
import { forEachLeafInRange, leafAtByte, readLeaf } from './tree-read.ts';
import { type TreeWriter, spliceLeaves } from './tree-splice.ts';

export function putLeaf(w: TreeWriter, bytes: Uint8Array): Pointer {
  checkArgument(bytes.length >= 1 && bytes.length <= w.shape.blockBytes, 'bytes', `a leaf of 1..${w.shape.blockBytes} bytes`);
  return { bguid: w.blocks.put('data', bytes), byteCount: bytes.length, leafCount: 1 };
}

function putLeaves(w: TreeWriter, bytes: Uint8Array): Pointer[] {
  const out: Pointer[] = [];
  for (let at = 0; at < bytes.length; at += w.shape.blockBytes) out.push(putLeaf(w, bytes.subarray(at, at + w.shape.blockBytes)));
  return out;
}

/** Overwrites bytes from `offset` (<= size); whatever runs past the end is appended. */
export function writeBytes(w: TreeWriter, tree: TreeRoot | null, offset: number, bytes: Uint8Array): TreeRoot | null {
  const size = tree?.byteCount ?? 0;
  checkArgument(Number.isSafeInteger(offset) && offset >= 0 && offset <= size, 'offset', `a byte offset up to the size ${size}`);
  const inside = Math.min(bytes.length, size - offset);
  let next = tree;
  if (tree !== null && inside > 0) {
    const end = offset + inside;
    const leaves: Pointer[] = [];
    let firstIndex = -1;
    forEachLeafInRange(w, tree, offset, end, (leaf) => {
      if (firstIndex < 0) firstIndex = leaf.index;
      const leafEnd = leaf.startByte + leaf.pointer.byteCount;
      const covered = offset <= leaf.startByte && end >= leafEnd;
      // A fully overwritten leaf is never read: the new bytes are all there is.
      const updated = covered ? bytes.slice(leaf.startByte - offset, leafEnd - offset) : readLeaf(w, leaf.pointer).slice();
      if (!covered) {
        const from = Math.max(offset, leaf.startByte);
        updated.set(bytes.subarray(from - offset, Math.min(end, leafEnd) - offset), from - leaf.startByte);
      }
      leaves.push(putLeaf(w, updated));
    });
    next = spliceLeaves(w, tree, firstIndex, firstIndex + leaves.length, leaves);
  }
  return inside < bytes.length ? appendBytes(w, next, bytes.subarray(inside)) : next;
}

/** Appends inline bytes: tops up a short last leaf, then cuts leaves of blockBytes. */
export function appendBytes(w: TreeWriter, tree: TreeRoot | null, bytes: Uint8Array): TreeRoot | null {
  if (bytes.length === 0) return tree;
  if (tree === null) return spliceLeaves(w, null, 0, 0, putLeaves(w, bytes));
  const last = leafAtByte(w, tree, tree.byteCount - 1);
  const room = w.shape.blockBytes - last.pointer.byteCount;
  if (room <= 0) return spliceLeaves(w, tree, tree.leafCount, tree.leafCount, putLeaves(w, bytes));
  const head = new Uint8Array(last.pointer.byteCount + Math.min(room, bytes.length));
  head.set(readLeaf(w, last.pointer));
  head.set(bytes.subarray(0, head.length - last.pointer.byteCount), last.pointer.byteCount);
  const leaves = [putLeaf(w, head), ...putLeaves(w, bytes.subarray(head.length - last.pointer.byteCount))];
  return spliceLeaves(w, tree, last.index, last.index + 1, leaves);
}

/** Appends whole leaves (already in the store) after the last one; no merging. */
export function appendLeaves(w: TreeWriter, tree: TreeRoot | null, leaves: readonly Pointer[]): TreeRoot | null {
  const n = tree?.leafCount ?? 0;
  return leaves.length === 0 ? tree : spliceLeaves(w, tree, n, n, leaves);
}

/** Cuts the object to `sizeBytes` (<= size). */
export function truncate(w: TreeWriter, tree: TreeRoot | null, sizeBytes: number): TreeRoot | null {
  const size = tree?.byteCount ?? 0;
  checkArgument(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0 && sizeBytes <= size, 'sizeBytes', `a size up to ${size}`);
  if (tree === null || sizeBytes === size) return tree;
  const cut = leafAtByte(w, tree, sizeBytes);
  const keep = sizeBytes - cut.startByte;
  const tail = keep === 0 ? [] : [putLeaf(w, readLeaf(w, cut.pointer).slice(0, keep))];
  return spliceLeaves(w, tree, cut.index, tree.leafCount, tail);
}

function checkIndex(tree: TreeRoot | null, index: number, inclusiveEnd: boolean): void {
  const n = tree?.leafCount ?? 0;
  const ok = Number.isSafeInteger(index) && index >= 0 && (inclusiveEnd ? index <= n : index < n);
  checkArgument(ok, 'index', `a leaf index ${inclusiveEnd ? 'up to' : 'below'} ${n}`);
}

export function replaceLeaf(w: TreeWriter, tree: TreeRoot | null, index: number, leaf: Pointer): TreeRoot | null {
  checkIndex(tree, index, false);
  return spliceLeaves(w, tree, index, index + 1, [leaf]);
}

export function insertLeaf(w: TreeWriter, tree: TreeRoot | null, index: number, leaf: Pointer): TreeRoot | null {
  checkIndex(tree, index, true);
  return spliceLeaves(w, tree, index, index, [leaf]);
}

export function deleteLeaf(w: TreeWriter, tree: TreeRoot | null, index: number): TreeRoot | null {
  checkIndex(tree, index, false);
  return spliceLeaves(w, tree, index, index + 1, []);
}
