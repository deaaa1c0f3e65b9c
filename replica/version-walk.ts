/**
 * The parts of ReplicaExecutor that only read versions (core/version formats): every block of a
 * version (what a member pins), the blocks that prove a byte range (what a member serves), and
 * reading the range back out of those blocks (what a reader does). Missing or malformed blocks
 * give null, never a throw: the store may hold a partial version or a peer's proof.
 */
import { AssertionError } from '../core/assert.ts';
import { toHex } from '../core/bytes.ts';
import { OceanStoreError } from '../core/errors.ts';
import type { BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { type Pointer } from '../core/version/interior-block.ts';
import { type RootBlock, decodeRootBlock } from '../core/version/root-block.ts';
import { forEachLeafInRange, readChildren, readLeaf, readRange, readerOf, type TreeReader } from '../core/version/tree-read.ts';
import type { BlockRef, ProofBlock } from './types.ts';

/** Runs `read`; null if it hit a missing, corrupt or malformed block (all OceanStoreErrors). */
function orNull<T>(read: () => T): T | null {
  try {
    return read();
  } catch (error) {
    if (error instanceof OceanStoreError) return null;
    throw error;
  }
}

function rootOf(blocks: BlockStore, vguid: Uint8Array): RootBlock | null {
  const bytes = blocks.get(vguid, 'root');
  return bytes === undefined ? null : orNull(() => decodeRootBlock(bytes));
}

export function versionBlocks(blocks: BlockStore, vguid: Uint8Array): BlockRef[] | null {
  const root = rootOf(blocks, vguid);
  if (!root) return null;
  const out: BlockRef[] = [{ bguid: vguid, kind: 'root' }];
  if (!root.tree) return out;
  const reader = readerOf(blocks);
  const walk = (node: Pointer, height: number): void => {
    if (height === 0) {
      if (!blocks.has(node.bguid)) throw new MissingBlock();
      out.push({ bguid: node.bguid, kind: 'data' });
      return;
    }
    out.push({ bguid: node.bguid, kind: 'interior' });
    for (const child of readChildren(reader, node, height)) walk(child, height - 1);
  };
  const tree = root.tree;
  const complete = orNull(() => {
    walk(tree, tree.height);
    return true;
  });
  return complete ? out : null;
}

class MissingBlock extends OceanStoreError {}

/** The data blocks of `vguid` that `blocks` lacks (each once); null if the root or an interior block is missing or malformed. */
export function missingDataBlocks(blocks: BlockStore, vguid: Uint8Array): Uint8Array[] | null {
  const root = rootOf(blocks, vguid);
  if (!root) return null;
  const missing = new Map<string, Uint8Array>();
  if (!root.tree) return [];
  const reader = readerOf(blocks);
  const walk = (node: Pointer, height: number): void => {
    if (height === 0) {
      if (!blocks.has(node.bguid)) missing.set(toHex(node.bguid), node.bguid);
      return;
    }
    for (const child of readChildren(reader, node, height)) walk(child, height - 1);
  };
  const tree = root.tree;
  const walked = orNull(() => {
    walk(tree, tree.height);
    return true;
  });
  return walked ? [...missing.values()] : null;
}

/** Root, the interior blocks on the paths to the range, and the leaves overlapping it. */
export function rangeProof(blocks: BlockStore, vguid: Uint8Array, offset: number, length: number): ProofBlock[] | null {
  const rootBytes = blocks.get(vguid, 'root');
  const root = rootOf(blocks, vguid);
  if (!root || rootBytes === undefined) return null;
  const out: ProofBlock[] = [{ bguid: vguid, kind: 'root', bytes: rootBytes }];
  if (!root.tree || length === 0 || offset + length > root.sizeBytes) return offset + length <= root.sizeBytes ? out : null;
  const recording = new RecordingStore(blocks, out);
  const reader: TreeReader = readerOf(recording);
  const tree = root.tree;
  const ok = orNull(() => {
    forEachLeafInRange(reader, tree, offset, offset + length, (leaf) => {
      if (recording.get(leaf.pointer.bguid, 'data') === undefined) throw new MissingBlock();
    });
    return true;
  });
  return ok ? out : null;
}

export function readVersionRange(blocks: BlockStore, vguid: Uint8Array, offset: number, length: number): Uint8Array | null {
  const root = rootOf(blocks, vguid);
  if (!root) return null;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > root.sizeBytes) return null;
  return orNull(() => readRange(readerOf(blocks), root.tree, offset, length));
}

/**
 * The same bytes as readVersionRange, as views of the leaf blocks in order rather than one copy
 * (a reader streaming a large range to a file or socket never needs them joined); null likewise.
 */
export function readVersionParts(blocks: BlockStore, vguid: Uint8Array, offset: number, length: number): Uint8Array[] | null {
  const root = rootOf(blocks, vguid);
  if (!root) return null;
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > root.sizeBytes) return null;
  const tree = root.tree;
  if (length === 0 || !tree) return length === 0 ? [] : null;
  return orNull(() => {
    const reader = readerOf(blocks);
    const parts: Uint8Array[] = [];
    let total = 0;
    forEachLeafInRange(reader, tree, offset, offset + length, (leaf) => {
      const bytes = readLeaf(reader, leaf.pointer);
      const from = Math.max(offset, leaf.startByte);
      const to = Math.min(offset + length, leaf.startByte + bytes.length);
      if (to <= from) return;
      parts.push(bytes.subarray(from - leaf.startByte, to - leaf.startByte));
      total += to - from;
    });
    // Leaves shorter than their pointers claim cannot cover the range: not a proof of it.
    return total === length ? parts : null;
  });
}

export function rootBlockOf(blocks: BlockStore, vguid: Uint8Array): RootBlock | null {
  return rootOf(blocks, vguid);
}

/** Reads through to a store and records every block read (once) into a proof. */
class RecordingStore implements BlockStore {
  private readonly seen = new Set<string>();

  constructor(
    private readonly base: BlockStore,
    private readonly out: ProofBlock[],
  ) {}

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const bytes = this.base.get(bguid, kind);
    const key = toHex(bguid);
    if (bytes !== undefined && !this.seen.has(key)) {
      this.seen.add(key);
      this.out.push({ bguid, kind, bytes });
    }
    return bytes;
  }

  has(bguid: Uint8Array): boolean {
    return this.base.has(bguid);
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    return this.base.byteLengthOf(bguid, kind);
  }

  put(): Uint8Array {
    throw new AssertionError('a proof recorder is read-only');
  }

  putVerified(): void {
    throw new AssertionError('a proof recorder is read-only');
  }

  putHashed(): void {
    throw new AssertionError('a proof recorder is read-only');
  }

  delete(): void {
    throw new AssertionError('a proof recorder is read-only');
  }

  bguids(): Iterable<Uint8Array> {
    return this.base.bguids();
  }
}
