/**
 * core/store.ts KvStore over lmdb, with group commit.
 *
 * Cores write synchronously (put/delete return at once); the writes sit in an overlay that reads
 * consult first, so a core sees its own staged state. `flush()` moves everything staged so far
 * into one lmdb write transaction and resolves only once that transaction is committed and synced
 * to disk. Writes staged while a flush is running go into the next one, so under load one fsync
 * covers many steps (group commit) and the caller never waits for more than two fsyncs.
 */
import { open, type RootDatabase } from 'lmdb';
import { assert } from '../core/assert.ts';
import { asBytes } from '../core/bytes.ts';
import type { KvStore } from '../core/store.ts';

/** A staged delete; `undefined` cannot be a KvStore value, so a sentinel keeps the overlay one map. */
const deleted = null;
type Staged = Uint8Array | typeof deleted;

export interface LmdbKvStoreOptions {
  /** Directory for the lmdb files (created if missing). */
  readonly path: string;
  /** Initial map size; lmdb grows it as needed. */
  readonly mapBytes?: number;
  /**
   * Commit on the calling thread (lmdb transactionSync: blocks for the fsync, ~1-5 ms) instead of
   * lmdb's writer thread. The async path needs two hops through the event loop, and on a busy
   * node (BLS work between frames) those hops cost far more than the fsync itself.
   */
  readonly syncCommit?: boolean;
  /**
   * With syncCommit, a batch holding at least this many value bytes still commits on lmdb's writer
   * thread (default 1 MiB). Writing and syncing a batch of large blocks takes a ring server
   * ~8 ms per MiB on a shared disk; on the calling thread that stalled every other step (receiving
   * and hashing the next blocks, consensus) for the whole write, where the hops cost ~1 ms.
   */
  readonly syncCommitBytesMax?: number;
}

export interface FlushStats {
  /** Transactions committed (each one fsync). */
  readonly flushCount: number;
  /** Keys written or deleted across all flushes. */
  readonly writeCount: number;
  readonly valueBytesWritten: number;
}

export class LmdbKvStore implements KvStore {
  private readonly db: RootDatabase<Buffer, string>;
  /** Writes not yet handed to lmdb. */
  private staged = new Map<string, Staged>();
  /** Writes handed to the running transaction; visible to reads until it commits. */
  private inFlight = new Map<string, Staged>();
  private running: Promise<void> | null = null;
  /**
   * The error of a commit that failed. Its writes are gone from memory, so no later flush may
   * report success: every one fails with this (the host exits on the first failure anyway).
   */
  private failure: Error | null = null;
  private closed = false;
  private stats = { flushCount: 0, writeCount: 0, valueBytesWritten: 0 };
  private readonly syncCommit: boolean;
  private readonly syncCommitBytesMax: number;
  /** Value bytes in `staged` (a staged value overwritten in place still counts: an upper bound). */
  private stagedBytes = 0;

  constructor(options: LmdbKvStoreOptions) {
    // overlappingSync off: a commit promise resolves only after the data is on disk, which is the
    // whole point of flush(). encoding 'binary' stores our bytes as-is.
    this.syncCommit = options.syncCommit ?? false;
    this.syncCommitBytesMax = options.syncCommitBytesMax ?? 2 ** 20;
    this.db = open<Buffer, string>({
      path: options.path,
      encoding: 'binary',
      overlappingSync: false,
      mapSize: options.mapBytes ?? 64 * 2 ** 20,
    });
  }

  get(key: string): Uint8Array | undefined {
    const value = this.pending(key);
    return value === undefined ? this.read(key) : (value ?? undefined);
  }

  /** doesExist reads the value into lmdb's reused buffer: no allocation, but still a copy (~10 µs per 256 KiB). */
  has(key: string): boolean {
    const value = this.pending(key);
    return value === undefined ? this.db.doesExist(key) : value !== deleted;
  }

  /** A write of `key` not yet on disk (staged, else in flight): its value, `deleted`, or undefined if none. */
  private pending(key: string): Staged | undefined {
    assert(!this.closed, 'LmdbKvStore used after close');
    return this.staged.has(key) ? this.staged.get(key) : this.inFlight.get(key);
  }

  private read(key: string): Uint8Array | undefined {
    // getBinary already hands out a copy the caller owns (getBinaryFast is the reused buffer): a
    // second copy here doubled the cost of every block read on a ring server.
    // A plain Uint8Array view of it, so a caller's `.slice()` copies as it would on any KvStore value
    // (Buffer's slice is a view).
    const value = this.db.getBinary(key);
    return value === undefined ? undefined : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }

  put(key: string, value: Uint8Array): void {
    assert(!this.closed, 'LmdbKvStore used after close');
    assert(value instanceof Uint8Array, 'KvStore values are bytes');
    assert(key.length > 0 && key.length <= 500, 'lmdb keys are 1..500 characters');
    this.staged.set(key, asBytes(value));
    this.stagedBytes += value.length;
  }

  delete(key: string): void {
    assert(!this.closed, 'LmdbKvStore used after close');
    this.staged.set(key, deleted);
  }

  /**
   * Removes `keys` from the disk in one synced transaction of their own. A staged or in-flight write
   * of one of them (its bytes came from memory, not this disk) still lands after it, as staged.
   */
  discardNow(keys: readonly string[]): void {
    assert(!this.closed, 'LmdbKvStore used after close');
    this.db.transactionSync(() => {
      for (const key of keys) void this.db.remove(key);
    });
  }

  keys(prefix: string): string[] {
    assert(!this.closed, 'LmdbKvStore used after close');
    const found = new Set<string>();
    for (const key of this.db.getKeys({ start: prefix })) {
      if (typeof key !== 'string' || !key.startsWith(prefix)) break;
      found.add(key);
    }
    for (const layer of [this.inFlight, this.staged]) {
      for (const [key, value] of layer) {
        if (!key.startsWith(prefix)) continue;
        if (value === deleted) found.delete(key);
        else found.add(key);
      }
    }
    return [...found].sort();
  }

  /** True when some write is staged or in flight (a host can skip the barrier otherwise). */
  get dirty(): boolean {
    return this.staged.size > 0 || this.inFlight.size > 0;
  }

  /**
   * Makes every write staged before this call durable (one transaction, fsync'd). Concurrent calls
   * share transactions: a call made while a flush runs waits for it, then for one covering its own
   * writes. The running transaction carries writes staged before this call, so if it fails this
   * call fails with its error: it used to resolve, and its caller took lost writes for durable.
   */
  async flush(): Promise<void> {
    assert(!this.closed, 'LmdbKvStore flushed after close');
    if (this.failure) throw this.failure;
    if (this.running) {
      const hadStaged = this.staged.size > 0;
      await this.running;
      if (!hadStaged) return;
      // Another waiter may already have started the next transaction; join it.
      if ((this.running as Promise<void> | null) !== null) return this.flush();
    }
    if (this.staged.size === 0) return;
    const bytes = this.stagedBytes;
    this.stagedBytes = 0;
    if (this.syncCommit && bytes < this.syncCommitBytesMax) return this.commitSync();
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

  private commitSync(): void {
    const batch = this.staged;
    this.staged = new Map();
    let bytes = 0;
    // Staged writes stay readable through `inFlight` until the commit returns (it cannot interleave).
    this.inFlight = batch;
    try {
      this.db.transactionSync(() => {
        for (const [key, value] of batch) {
          if (value === deleted) void this.db.remove(key);
          else {
            bytes += value.length;
            void this.db.put(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
          }
        }
      });
    } catch (error) {
      this.failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      this.inFlight = new Map();
    }
    this.stats.flushCount += 1;
    this.stats.writeCount += batch.size;
    this.stats.valueBytesWritten += bytes;
  }

  private async commit(batch: Map<string, Staged>): Promise<void> {
    let bytes = 0;
    await this.db.transaction(() => {
      for (const [key, value] of batch) {
        if (value === deleted) void this.db.remove(key);
        else {
          bytes += value.length;
          void this.db.put(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        }
      }
    });
    this.stats.flushCount += 1;
    this.stats.writeCount += batch.size;
    this.stats.valueBytesWritten += bytes;
  }

  flushStats(): FlushStats {
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
