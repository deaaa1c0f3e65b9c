/**
 * A write layer over a base store: reads see staged blocks first, writes stay staged until the
 * caller takes them. applyUpdate uses it so an aborted clause leaves the base store untouched and a
 * committed one hands over exactly the blocks its new version reaches.
 */
import { toHex } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import { IntegrityError } from '../errors.ts';
import { bytesEqual } from '../bytes.ts';
import { type BlockKind, bguidOf, blockKey } from './block.ts';
import type { BlockStore } from './block-store.ts';

export interface NewBlock {
  readonly bguid: Uint8Array;
  readonly kind: BlockKind;
  readonly bytes: Uint8Array;
}

export class StagingBlockStore implements BlockStore {
  private readonly staged = new Map<string, NewBlock>();

  constructor(
    private readonly crypto: Crypto,
    private readonly base: BlockStore,
  ) {}

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const block = this.staged.get(blockKey(bguid));
    if (block) return block.kind === kind ? block.bytes : undefined;
    return this.base.get(bguid, kind);
  }

  has(bguid: Uint8Array): boolean {
    return this.staged.has(blockKey(bguid)) || this.base.has(bguid);
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    const block = this.staged.get(blockKey(bguid));
    if (block) return block.kind === kind ? block.bytes.length : undefined;
    return this.base.byteLengthOf(bguid, kind);
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    const bguid = bguidOf(this.crypto, kind, bytes);
    this.putHashed(bguid, kind, bytes);
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block bytes do not hash to the claimed ${kind} BGUID ${toHex(bguid)}`);
    }
    this.putHashed(bguid, kind, bytes);
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    const key = blockKey(bguid);
    if (this.staged.has(key) || this.base.has(bguid)) return;
    this.staged.set(key, { bguid, kind, bytes });
  }

  delete(bguid: Uint8Array): void {
    this.staged.delete(blockKey(bguid));
  }

  *bguids(): Iterable<Uint8Array> {
    for (const block of this.staged.values()) yield block.bguid;
    yield* this.base.bguids();
  }

  isStaged(bguid: Uint8Array): boolean {
    return this.staged.has(blockKey(bguid));
  }

  stagedBlock(bguid: Uint8Array): NewBlock | undefined {
    return this.staged.get(blockKey(bguid));
  }

  get stagedCount(): number {
    return this.staged.size;
  }
}
