/**
 * Decoded interior nodes by BGUID, shared across applies. Blocks are immutable and named by their
 * hash, so an entry can never go stale: the nodes on the path an update just rewrote are the ones
 * the next update reads, and serving them from here skips a fetch, a re-hash and a decode.
 * Bounded (oldest entry evicted first); deterministic; owned by the caller (one per ring replica).
 */
import { assert } from '../assert.ts';
import type { Pointer } from './interior-block.ts';

export class NodeCache {
  private readonly entries = new Map<string, readonly Pointer[]>();

  constructor(readonly entriesMax = 65_536) {
    assert(Number.isSafeInteger(entriesMax) && entriesMax > 0, 'NodeCache wants a positive entry bound');
  }

  get(key: string): readonly Pointer[] | undefined {
    return this.entries.get(key);
  }

  set(key: string, children: readonly Pointer[]): this {
    if (this.entries.has(key)) return this;
    if (this.entries.size >= this.entriesMax) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, children);
    return this;
  }

  get size(): number {
    return this.entries.size;
  }
}
