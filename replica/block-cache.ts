/**
 * A secondary replica's block cache: a BlockStore bounded in bytes with least-recently-used
 * eviction. Blocks of every object's current version are pinned (a member must be able to
 * re-execute the next update on them and serve the latest version); only blocks of older versions
 * are evicted, and they stay fetchable from the ring or the archive. If the pinned blocks alone
 * exceed the budget the cache holds them anyway and counts the overshoot: dropping the head would
 * stop the member from verifying the next update.
 */
import { assert } from '../core/assert.ts';
import { toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { IntegrityError, checkArgument } from '../core/errors.ts';
import { bytesEqual } from '../core/bytes.ts';
import { type BlockKind, bguidOf, blockKinds, isGuid } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { ownedBytes } from '../core/bytes.ts';

interface CachedBlock {
  readonly bguid: Uint8Array;
  readonly kind: BlockKind;
  readonly bytes: Uint8Array;
}

export interface BlockCacheStats {
  evictedBlocks: number;
  evictedBytes: number;
  /** Times the pinned blocks alone exceeded the budget after an eviction pass. */
  overBudgetPasses: number;
}

export class BlockCache implements BlockStore {
  /** Map iteration order is the recency order: first = least recently used. */
  private readonly blocks = new Map<string, CachedBlock>();
  private readonly pinCounts = new Map<string, number>();
  private storedBytes = 0;
  readonly stats: BlockCacheStats = { evictedBlocks: 0, evictedBytes: 0, overBudgetPasses: 0 };

  constructor(
    private readonly crypto: Crypto,
    readonly bytesMax: number,
  ) {
    checkArgument(Number.isSafeInteger(bytesMax) && bytesMax > 0, 'bytesMax', 'a positive integer');
  }

  /** Blocks were hashed when they entered (memory is our own), so a hit is not re-hashed. */
  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const key = toHex(bguid);
    const block = this.blocks.get(key);
    if (!block || block.kind !== kind) return undefined;
    this.blocks.delete(key);
    this.blocks.set(key, block);
    return block.bytes;
  }

  has(bguid: Uint8Array): boolean {
    return this.blocks.has(toHex(bguid));
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    const block = this.blocks.get(toHex(bguid));
    return block && block.kind === kind ? block.bytes.length : undefined;
  }

  /** The BGUID `bytes` would have as a block of `kind` (hashes; stores nothing). */
  bguidOf(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    return bguidOf(this.crypto, kind, bytes);
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    checkArgument(blockKinds.includes(kind), 'kind', 'data, interior or root');
    checkArgument(bytes instanceof Uint8Array, 'bytes', 'a Uint8Array');
    const bguid = bguidOf(this.crypto, kind, bytes);
    this.insert({ bguid, kind, bytes });
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    checkArgument(isGuid(bguid), 'bguid', 'a 32-byte hash');
    checkArgument(blockKinds.includes(kind), 'kind', 'data, interior or root');
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block bytes do not hash to the claimed ${kind} BGUID ${toHex(bguid)}`);
    }
    this.insert({ bguid, kind, bytes });
  }

  /** For blocks whose BGUID this process just computed from these bytes (apply's staged blocks). */
  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    assert(isGuid(bguid) && blockKinds.includes(kind), 'putHashed wants a 32-byte BGUID and a block kind');
    this.insert({ bguid, kind, bytes });
  }

  delete(bguid: Uint8Array): void {
    const key = toHex(bguid);
    const block = this.blocks.get(key);
    if (!block) return;
    this.storedBytes -= block.bytes.length;
    this.blocks.delete(key);
  }

  *bguids(): Iterable<Uint8Array> {
    for (const block of this.blocks.values()) yield block.bguid;
  }

  get bytes(): number {
    return this.storedBytes;
  }

  get size(): number {
    return this.blocks.size;
  }

  isPinned(bguid: Uint8Array): boolean {
    return this.pinCounts.has(toHex(bguid));
  }

  /** Replaces one object's pinned set (`previous` → `next`, as returned by an earlier call), then evicts. */
  repin(previous: ReadonlySet<string>, next: ReadonlySet<string>): void {
    for (const key of next) this.pinCounts.set(key, (this.pinCounts.get(key) ?? 0) + 1);
    for (const key of previous) {
      const count = this.pinCounts.get(key);
      assert(count !== undefined && count > 0, 'unpin of a block that was not pinned');
      if (count === 1) this.pinCounts.delete(key);
      else this.pinCounts.set(key, count - 1);
    }
    this.evict();
  }

  /** Evicts least recently used unpinned blocks until the cache fits its budget. */
  evict(): void {
    if (this.storedBytes <= this.bytesMax) return;
    for (const [key, block] of this.blocks) {
      if (this.storedBytes <= this.bytesMax) return;
      if (this.pinCounts.has(key)) continue;
      this.blocks.delete(key);
      this.storedBytes -= block.bytes.length;
      this.stats.evictedBlocks++;
      this.stats.evictedBytes += block.bytes.length;
    }
    if (this.storedBytes > this.bytesMax) this.stats.overBudgetPasses++;
  }

  private insert(block: CachedBlock): void {
    const key = toHex(block.bguid);
    const existing = this.blocks.get(key);
    if (existing) {
      this.blocks.delete(key);
      this.blocks.set(key, existing);
      return;
    }
    // A block decoded from a frame is a view into it: kept as is, one cached block kept the whole
    // frame (other blocks, padding) alive beyond the budget.
    this.blocks.set(key, { ...block, bytes: ownedBytes(block.bytes) });
    this.storedBytes += block.bytes.length;
  }
}
