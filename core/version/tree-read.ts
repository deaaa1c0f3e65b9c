/**
 * Reading a version's tree: decoded-node access with consistency checks, locating a leaf by index
 * or a byte by offset, and reading any byte range. Every read takes the block store as a parameter;
 * a TreeReader may carry a per-operation cache of decoded nodes so one apply does not fetch and
 * re-hash the same interior block twice.
 */
import { toHex } from '../bytes.ts';
import { InvalidArgumentError, IntegrityError, NotFoundError, checkArgument } from '../errors.ts';
import { blockKey } from './block.ts';
import type { BlockStore } from './block-store.ts';
import { type Pointer, decodeInteriorBlock, summarize } from './interior-block.ts';
import type { TreeRoot } from './root-block.ts';

export interface TreeReader {
  readonly blocks: BlockStore;
  /** Decoded interior nodes by blockKey (blocks are immutable, so never stale): per operation, or a shared NodeCache. */
  readonly nodeCache?: DecodedNodes;
  /**
   * Interior nodes an edit has built but not yet hashed, by the provisional name it gave them
   * (see tree-splice.ts finalizeTree). Consulted first; never shared beyond one apply.
   */
  readonly provisional?: Map<string, readonly Pointer[]>;
}

/** What a node cache must do: a Map, or a bounded NodeCache shared across applies. */
export interface DecodedNodes {
  get(key: string): readonly Pointer[] | undefined;
  set(key: string, children: readonly Pointer[]): unknown;
}

/** A reader with its own per-operation cache, or `nodeCache` if the caller keeps one across operations. */
export function readerOf(blocks: BlockStore, nodeCache: TreeReader['nodeCache'] = new Map()): TreeReader {
  return { blocks, nodeCache };
}

/** The children of the interior node `pointer` at `height`, checked against the pointer's counts. */
export function readChildren(reader: TreeReader, pointer: Pointer, height: number): readonly Pointer[] {
  const key = blockKey(pointer.bguid);
  const hit = reader.provisional?.get(key) ?? reader.nodeCache?.get(key);
  if (hit) return hit;
  const bytes = reader.blocks.get(pointer.bguid, 'interior');
  if (bytes === undefined) throw new NotFoundError(`interior block ${key} is not in the block store`);
  const node = decodeInteriorBlock(bytes);
  const sum = summarize(pointer.bguid, node.children);
  if (node.height !== height || sum.byteCount !== pointer.byteCount || sum.leafCount !== pointer.leafCount) {
    throw new IntegrityError(`interior block ${key} disagrees with the pointer to it (height or counts)`);
  }
  reader.nodeCache?.set(key, node.children);
  return node.children;
}

export function readLeaf(reader: TreeReader, pointer: Pointer): Uint8Array {
  const bytes = reader.blocks.get(pointer.bguid, 'data');
  if (bytes === undefined) throw new NotFoundError(`data block ${toHex(pointer.bguid)} is not in the block store`);
  if (bytes.length !== pointer.byteCount) {
    throw new IntegrityError(`data block ${toHex(pointer.bguid)} has ${bytes.length} bytes, its pointer says ${pointer.byteCount}`);
  }
  return bytes;
}

export interface LeafPosition {
  readonly pointer: Pointer;
  readonly index: number;
  readonly startByte: number;
}

/** The leaf number `index` (0-based) of the tree. */
export function leafAt(reader: TreeReader, tree: TreeRoot, index: number): LeafPosition {
  checkArgument(Number.isSafeInteger(index) && index >= 0 && index < tree.leafCount, 'index', `a leaf index below ${tree.leafCount}`);
  let node: Pointer = tree;
  let leafBase = 0;
  let byteBase = 0;
  for (let height = tree.height; height >= 1; height--) {
    const children = readChildren(reader, node, height);
    let next: Pointer | undefined;
    for (const c of children) {
      if (index < leafBase + c.leafCount) {
        next = c;
        break;
      }
      leafBase += c.leafCount;
      byteBase += c.byteCount;
    }
    if (next === undefined) throw new IntegrityError('leaf counts along the path do not add up');
    node = next;
  }
  return { pointer: node, index: leafBase, startByte: byteBase };
}

/** The leaf holding byte `offset` (< size). */
export function leafAtByte(reader: TreeReader, tree: TreeRoot, offset: number): LeafPosition {
  checkArgument(Number.isSafeInteger(offset) && offset >= 0 && offset < tree.byteCount, 'offset', `a byte offset below ${tree.byteCount}`);
  let node: Pointer = tree;
  let leafBase = 0;
  let byteBase = 0;
  for (let height = tree.height; height >= 1; height--) {
    const children = readChildren(reader, node, height);
    let next: Pointer | undefined;
    for (const c of children) {
      if (offset < byteBase + c.byteCount) {
        next = c;
        break;
      }
      leafBase += c.leafCount;
      byteBase += c.byteCount;
    }
    if (next === undefined) throw new IntegrityError('byte counts along the path do not add up');
    node = next;
  }
  return { pointer: node, index: leafBase, startByte: byteBase };
}

/** Calls `visit` for every leaf overlapping bytes [offset, end), in order, reading only the paths to them. */
export function forEachLeafInRange(
  reader: TreeReader,
  tree: TreeRoot,
  offset: number,
  end: number,
  visit: (leaf: LeafPosition) => void,
): void {
  const walk = (node: Pointer, height: number, leafBase: number, byteBase: number): void => {
    if (height === 0) {
      visit({ pointer: node, index: leafBase, startByte: byteBase });
      return;
    }
    for (const c of readChildren(reader, node, height)) {
      if (byteBase >= end) return;
      if (byteBase + c.byteCount > offset) walk(c, height - 1, leafBase, byteBase);
      leafBase += c.leafCount;
      byteBase += c.byteCount;
    }
  };
  if (end > offset) walk(tree, tree.height, 0, 0);
}

/** Bytes [offset, offset + length) of the version whose tree is `tree` (null: empty object). */
export function readRange(reader: TreeReader, tree: TreeRoot | null, offset: number, length: number): Uint8Array {
  const size = tree?.byteCount ?? 0;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new InvalidArgumentError(`range [${offset}, ${offset}+${length}) is outside the object's ${size} bytes`);
  }
  const out = new Uint8Array(length);
  if (tree === null || length === 0) return out;
  forEachLeafInRange(reader, tree, offset, offset + length, (leaf) => {
    const bytes = readLeaf(reader, leaf.pointer);
    const from = Math.max(offset, leaf.startByte);
    const to = Math.min(offset + length, leaf.startByte + bytes.length);
    out.set(bytes.subarray(from - leaf.startByte, to - leaf.startByte), from - offset);
  });
  return out;
}

export function readAll(reader: TreeReader, tree: TreeRoot | null): Uint8Array {
  return readRange(reader, tree, 0, tree?.byteCount ?? 0);
}
