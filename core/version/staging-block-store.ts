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

/** What one apply may do through its staging store (applyUpdate's per-update work bounds). */
export interface StagingLimits {
  /** Data blocks put (new leaves). */
  readonly dataPutsMax: number;
  /** Bytes of data blocks read (leaves read to be rewritten). */
  readonly dataReadBytesMax: number;
}

/** Thrown by a StagingBlockStore when a put or read goes past its StagingLimits. */
export class StagingLimitExceeded extends Error {
  constructor(readonly what: string) {
    super(what);
    this.name = 'StagingLimitExceeded';
  }
}

export class StagingBlockStore implements BlockStore {
  private readonly staged = new Map<string, NewBlock>();
  private dataPuts = 0;
  private dataReadBytes = 0;

  constructor(
    private readonly crypto: Crypto,
    private readonly base: BlockStore,
    private readonly limits: StagingLimits = { dataPutsMax: Infinity, dataReadBytesMax: Infinity },
  ) {}

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const block = this.staged.get(blockKey(bguid));
    const bytes = block ? (block.kind === kind ? block.bytes : undefined) : this.base.get(bguid, kind);
    if (bytes !== undefined && kind === 'data') {
      this.dataReadBytes += bytes.length;
      if (this.dataReadBytes > this.limits.dataReadBytesMax) {
        throw new StagingLimitExceeded(`reads more than ${this.limits.dataReadBytesMax} bytes of existing leaves`);
      }
    }
    return bytes;
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
    if (kind === 'data' && ++this.dataPuts > this.limits.dataPutsMax) {
      throw new StagingLimitExceeded(`makes more than ${this.limits.dataPutsMax} new leaves`);
    }
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

  /**
   * Stages a block unless it is staged already or, for interior and root blocks, the base holds it
   * (then it belongs to a committed version). A data block is staged even if the base holds it:
   * the base may hold it only as an upload no version references, and a commit must hand over
   * every leaf it makes (the archive has no other way to learn of it), whatever the store held.
   */
  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    const key = blockKey(bguid);
    if (this.staged.has(key) || (kind !== 'data' && this.base.has(bguid))) return;
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
