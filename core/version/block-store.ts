/**
 * Content-addressed block storage. Every implementation keeps the block's kind beside its bytes,
 * so `get(bguid, kind)` can answer "not that block" (undefined) when a peer names a block of
 * another kind, and reserve IntegrityError for bytes that no longer hash to their name (local
 * corruption). Writes are synchronous and staged; a durable implementation makes them durable at
 * the host's barrier (`flush`), per core/machine.ts's durability contract.
 */
import { assert } from '../assert.ts';
import { toHex } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import { IntegrityError, checkArgument } from '../errors.ts';
import { bytesEqual } from '../bytes.ts';
import { type BlockKind, bguidOf, blockKey, blockKinds, isGuid } from './block.ts';

export interface BlockStore {
  /**
   * The bytes stored under `bguid` if they were stored as `kind`, checked against the BGUID (at
   * least once per process: see ring/kv-block-store.ts); undefined if absent or stored as another
   * kind. Stored bytes found corrupt: IntegrityError here; a ring server's store
   * (ring/kv-block-store.ts) discards them, reads them as absent and counts them (corruptCount).
   */
  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined;
  /** Stored blocks found corrupt and discarded so far (stores that discard them). */
  readonly corruptCount?: number;
  has(bguid: Uint8Array): boolean;
  /**
   * Length of the block if stored as `kind`, without re-hashing it: apply needs a referenced
   * block's length, and the store already verified the bytes when they were put.
   */
  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined;
  /** Hashes `bytes` under `kind`, stores them and returns the BGUID. Idempotent. */
  put(kind: BlockKind, bytes: Uint8Array): Uint8Array;
  /** Stores bytes a peer claims are named `bguid`; IntegrityError (nothing stored) if they are not. */
  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void;
  /**
   * Stores a block whose BGUID this process itself just computed from exactly these bytes (apply's
   * staged blocks), skipping a second hash on the hot path. Never for bytes or names from a peer.
   */
  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void;
  delete(bguid: Uint8Array): void;
  /** Every stored BGUID (for mark-and-sweep); order unspecified. */
  bguids(): Iterable<Uint8Array>;
}

export interface StoredBlock {
  readonly kind: BlockKind;
  readonly bytes: Uint8Array;
}

export interface MemoryBlockStoreOptions {
  /**
   * Re-hash on every get (default true). Memory is the process's own, so a trusted in-process
   * cache may turn this off; anything read back from disk or a peer must keep it on.
   */
  verifyOnGet?: boolean;
}

/** In-memory store for tests, the simulator and caches. Blocks are kept by reference: callers must not mutate bytes after put. */
export class MemoryBlockStore implements BlockStore {
  private readonly blocks = new Map<string, StoredBlock & { bguid: Uint8Array }>();
  private readonly verifyOnGet: boolean;
  private storedBytes = 0;

  constructor(
    private readonly crypto: Crypto,
    options: MemoryBlockStoreOptions = {},
  ) {
    this.verifyOnGet = options.verifyOnGet ?? true;
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const block = this.blocks.get(blockKey(bguid));
    if (!block || block.kind !== kind) return undefined;
    if (this.verifyOnGet && !bytesEqual(bguidOf(this.crypto, kind, block.bytes), bguid)) {
      throw new IntegrityError(`block ${toHex(bguid)} is corrupt in memory`);
    }
    return block.bytes;
  }

  has(bguid: Uint8Array): boolean {
    return this.blocks.has(blockKey(bguid));
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    const block = this.blocks.get(blockKey(bguid));
    return block && block.kind === kind ? block.bytes.length : undefined;
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    checkArgument(blockKinds.includes(kind), 'kind', 'data, interior or root');
    checkArgument(bytes instanceof Uint8Array, 'bytes', 'a Uint8Array');
    const bguid = bguidOf(this.crypto, kind, bytes);
    this.store(bguid, kind, bytes);
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    checkArgument(isGuid(bguid), 'bguid', 'a 32-byte hash');
    checkArgument(blockKinds.includes(kind), 'kind', 'data, interior or root');
    checkArgument(bytes instanceof Uint8Array, 'bytes', 'a Uint8Array');
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block bytes do not hash to the claimed ${kind} BGUID ${toHex(bguid)}`);
    }
    this.store(bguid, kind, bytes);
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    assert(isGuid(bguid), 'putHashed wants a 32-byte BGUID');
    this.store(bguid, kind, bytes);
  }

  delete(bguid: Uint8Array): void {
    const key = blockKey(bguid);
    const block = this.blocks.get(key);
    if (!block) return;
    this.storedBytes -= block.bytes.length;
    this.blocks.delete(key);
  }

  *bguids(): Iterable<Uint8Array> {
    for (const block of this.blocks.values()) yield block.bguid;
  }

  get size(): number {
    return this.blocks.size;
  }

  /** Total bytes of stored blocks. */
  get bytes(): number {
    return this.storedBytes;
  }

  private store(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    const key = blockKey(bguid);
    if (this.blocks.has(key)) return;
    this.blocks.set(key, { bguid, kind, bytes });
    this.storedBytes += bytes.length;
  }
}
