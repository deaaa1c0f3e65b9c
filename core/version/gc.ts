/**
 * Mark-and-sweep garbage collection of a block store. The caller names what is live: the VGUIDs of
 * the versions it keeps (the ring: recent versions of each object; a cache: what it pins) plus any
 * loose blocks (uploads not yet referenced by an update). Marking skips subtrees already marked,
 * so versions sharing most of their tree cost little more than one.
 */
import { blockKey } from './block.ts';
import type { BlockStore } from './block-store.ts';
import { type Pointer, decodeInteriorBlock } from './interior-block.ts';
import { decodeRootBlock } from './root-block.ts';

export interface MarkResult {
  /** blockKey of every reachable block. */
  readonly live: Set<string>;
  /** Reachable blocks that were not in the store (a live version is incomplete). */
  readonly missingCount: number;
}

export function markLive(blocks: BlockStore, vguids: Iterable<Uint8Array>, looseBguids: Iterable<Uint8Array> = []): MarkResult {
  const live = new Set<string>();
  let missingCount = 0;
  for (const b of looseBguids) live.add(blockKey(b));
  const walk = (p: Pointer, height: number): void => {
    const key = blockKey(p.bguid);
    if (live.has(key)) return;
    live.add(key);
    if (height === 0) {
      if (!blocks.has(p.bguid)) missingCount++;
      return;
    }
    const bytes = blocks.get(p.bguid, 'interior');
    if (bytes === undefined) {
      missingCount++;
      return;
    }
    for (const c of decodeInteriorBlock(bytes).children) walk(c, height - 1);
  };
  for (const vguid of vguids) {
    const key = blockKey(vguid);
    if (live.has(key)) continue;
    live.add(key);
    const bytes = blocks.get(vguid, 'root');
    if (bytes === undefined) {
      missingCount++;
      continue;
    }
    const tree = decodeRootBlock(bytes).tree;
    if (tree) walk(tree, tree.height);
  }
  return { live, missingCount };
}

/** Deletes every stored block not in `live`; returns how many. */
export function sweep(blocks: BlockStore, live: ReadonlySet<string>): number {
  const dead: Uint8Array[] = [];
  for (const b of blocks.bguids()) if (!live.has(blockKey(b))) dead.push(b);
  for (const b of dead) blocks.delete(b);
  return dead.length;
}

export function collectGarbage(
  blocks: BlockStore,
  vguids: Iterable<Uint8Array>,
  looseBguids: Iterable<Uint8Array> = [],
): { deletedCount: number; liveCount: number; missingCount: number } {
  const { live, missingCount } = markLive(blocks, vguids, looseBguids);
  return { deletedCount: sweep(blocks, live), liveCount: live.size, missingCount };
}
