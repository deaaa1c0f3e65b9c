/** Reading versions by VGUID: what clients, replicas and the restore tool start from. */
import { toHex } from '../bytes.ts';
import { NotFoundError } from '../errors.ts';
import type { BlockStore } from './block-store.ts';
import { type Head, decodeRootBlock } from './root-block.ts';
import { readRange, readerOf } from './tree-read.ts';

/** The head of the version named `vguid` (hash-checked by the store, shape-checked by the decoder). */
export function readHead(blocks: BlockStore, vguid: Uint8Array): Head {
  const bytes = blocks.get(vguid, 'root');
  if (bytes === undefined) throw new NotFoundError(`root block ${toHex(vguid)} is not in the block store`);
  return { vguid, root: decodeRootBlock(bytes) };
}

/** Bytes [offset, offset + length) of a version (the whole object by default). */
export function readVersion(blocks: BlockStore, head: Head, offset = 0, length = head.root.sizeBytes - offset): Uint8Array {
  return readRange(readerOf(blocks), head.root.tree, offset, length);
}
