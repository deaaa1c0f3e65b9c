/**
 * core/version's BlockStore on disk, in lmdb: key = BGUID (32 raw bytes), value = one kind byte
 * (the block's hash tag) followed by the block bytes.
 *
 * Reads are synchronous (lmdb memory-maps the file) and re-hash every block they return, so a
 * flipped bit on disk surfaces as IntegrityError instead of a wrong answer. Writes follow
 * core/machine.ts's durability contract: put/putVerified/putHashed/delete stage in memory (reads see
 * them at once) and `flush()` — the host's barrier — commits everything staged so far in one
 * transaction and resolves once it is synced to disk. Writes staged during a flush go into the next
 * one (group commit).
 */
import { open, type RootDatabase } from 'lmdb';
import { assert } from '../core/assert.ts';
import { asBytes, bytesEqual, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { IntegrityError, checkArgument } from '../core/errors.ts';
import { type BlockKind, bguidOf, blockKey, blockKinds, isGuid, kindCodeOf, kindOfCode } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';

interface Staged {
  readonly bguid: Uint8Array;
  /** null: a staged delete. */
  readonly kind: BlockKind | null;
  readonly bytes: Uint8Array;
}

export interface LmdbBlockStoreOptions {
  /** Directory for the lmdb files (created if missing). */
  readonly path: string;
  /** Initial map size; lmdb grows it as needed. */
  readonly mapBytes?: number;
}

export class LmdbBlockStore implements BlockStore {
  private readonly db: RootDatabase<Buffer, Buffer>;
  private staged = new Map<string, Staged>();
  private inFlight = new Map<string, Staged>();
  private running: Promise<void> | null = null;
  /**
   * The error of a commit that failed. Its writes are gone from memory, so no later flush may
   * report success: every one fails with this (the host exits on the first failure anyway).
   */
  private failure: Error | null = null;
  private closed = false;
  private readonly stats = { flushCount: 0, blocksWritten: 0, bytesWritten: 0 };

  constructor(
    private readonly crypto: Crypto,
    options: LmdbBlockStoreOptions,
  ) {
    // overlappingSync off: a commit resolves only once synced, which is what flush() promises.
    this.db = open<Buffer, Buffer>({
      path: options.path,
      encoding: 'binary',
      keyEncoding: 'binary',
      overlappingSync: false,
      mapSize: options.mapBytes ?? 256 * 2 ** 20,
    });
  }

  private pending(bguid: Uint8Array): Staged | undefined {
    const key = blockKey(bguid);
    return this.staged.get(key) ?? this.inFlight.get(key);
  }

  private diskKey(bguid: Uint8Array): Buffer {
    return Buffer.from(bguid.buffer, bguid.byteOffset, bguid.byteLength);
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    assert(!this.closed, 'LmdbBlockStore used after close');
    const staged = this.pending(bguid);
    if (staged) return staged.kind === kind ? staged.bytes : undefined;
    const value = this.db.getBinary(this.diskKey(bguid));
    if (value === undefined || value.length === 0 || kindOfCode(value[0]!) !== kind) return undefined;
    // getBinary's buffer may be reused by lmdb: copy before handing it out.
    const bytes = new Uint8Array(value.length - 1);
    bytes.set(value.subarray(1));
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block ${toHex(bguid)} is corrupt on disk (its bytes no longer hash to its name)`);
    }
    return bytes;
  }

  has(bguid: Uint8Array): boolean {
    assert(!this.closed, 'LmdbBlockStore used after close');
    const staged = this.pending(bguid);
    if (staged) return staged.kind !== null;
    return this.db.doesExist(this.diskKey(bguid));
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    assert(!this.closed, 'LmdbBlockStore used after close');
    const staged = this.pending(bguid);
    if (staged) return staged.kind === kind ? staged.bytes.length : undefined;
    const value = this.db.getBinaryFast(this.diskKey(bguid));
    return value !== undefined && value.length > 0 && kindOfCode(value[0]!) === kind ? value.length - 1 : undefined;
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    checkArgument(blockKinds.includes(kind), 'kind', 'data, interior or root');
    checkArgument(bytes instanceof Uint8Array, 'bytes', 'a Uint8Array');
    const bguid = bguidOf(this.crypto, kind, bytes);
    this.stage(bguid, kind, bytes);
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    checkArgument(isGuid(bguid), 'bguid', 'a 32-byte hash');
    checkArgument(blockKinds.includes(kind), 'kind', 'data, interior or root');
    checkArgument(bytes instanceof Uint8Array, 'bytes', 'a Uint8Array');
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block bytes do not hash to the claimed ${kind} BGUID ${toHex(bguid)}`);
    }
    this.stage(bguid, kind, bytes);
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    assert(isGuid(bguid), 'putHashed wants a 32-byte BGUID');
    this.stage(bguid, kind, bytes);
  }

  delete(bguid: Uint8Array): void {
    assert(!this.closed, 'LmdbBlockStore used after close');
    this.staged.set(blockKey(bguid), { bguid: asBytes(bguid).slice(), kind: null, bytes: new Uint8Array(0) });
  }

  *bguids(): Iterable<Uint8Array> {
    assert(!this.closed, 'LmdbBlockStore used after close');
    const seen = new Set<string>();
    for (const layer of [this.staged, this.inFlight]) {
      for (const [key, s] of layer) {
        if (seen.has(key)) continue;
        seen.add(key);
        if (s.kind !== null) yield s.bguid;
      }
    }
    for (const key of this.db.getKeys()) {
      const bguid = Uint8Array.from(key);
      if (!seen.has(blockKey(bguid))) yield bguid;
    }
  }

  private stage(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    assert(!this.closed, 'LmdbBlockStore used after close');
    const key = blockKey(bguid);
    const staged = this.staged.get(key);
    if (staged?.kind === kind) return;
    this.staged.set(key, { bguid: asBytes(bguid), kind, bytes: asBytes(bytes) });
  }

  /** True when some write is staged or in flight. */
  get dirty(): boolean {
    return this.staged.size > 0 || this.inFlight.size > 0;
  }

  /**
   * Makes every write staged before this call durable: one transaction, synced. Concurrent calls
   * share transactions. A call made while one runs fails with it: that transaction carries writes
   * staged before the call (LmdbKvStore.flush).
   */
  async flush(): Promise<void> {
    assert(!this.closed, 'LmdbBlockStore flushed after close');
    if (this.failure) throw this.failure;
    if (this.running) {
      const hadStaged = this.staged.size > 0;
      await this.running;
      if (!hadStaged) return;
      if ((this.running as Promise<void> | null) !== null) return this.flush();
    }
    if (this.staged.size === 0) return;
    this.inFlight = this.staged;
    this.staged = new Map();
    const batch = this.inFlight;
    this.running = this.commit(batch).catch((error: unknown) => {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }).finally(() => {
      this.running = null;
      if (this.inFlight === batch) this.inFlight = new Map();
    });
    return this.running;
  }

  private async commit(batch: Map<string, Staged>): Promise<void> {
    let bytes = 0;
    let blocks = 0;
    await this.db.transaction(() => {
      for (const s of batch.values()) {
        const key = this.diskKey(s.bguid);
        if (s.kind === null) {
          void this.db.remove(key);
          continue;
        }
        const value = Buffer.allocUnsafe(s.bytes.length + 1);
        value[0] = kindCodeOf(s.kind);
        value.set(s.bytes, 1);
        void this.db.put(key, value);
        bytes += s.bytes.length;
        blocks++;
      }
    });
    this.stats.flushCount += 1;
    this.stats.blocksWritten += blocks;
    this.stats.bytesWritten += bytes;
  }

  flushStats(): { flushCount: number; blocksWritten: number; bytesWritten: number } {
    return { ...this.stats };
  }

  /** Flushes, then closes the environment. */
  /** Flushes and closes; the environment is closed even if the flush fails (and then rejects with its error). */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.db.close();
    }
  }
}
