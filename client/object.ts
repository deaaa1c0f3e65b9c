/**
 * An object handle: reads (verified against the ring key, from the nearest tree member that can
 * prove them), writes (signed Pond updates ordered by the ring; bulk data uploaded as
 * content-addressed blocks first), versions, watch and ACLs.
 */
import type { Crypto } from '../core/crypto.ts';
import { signerOf } from '../core/crypto.ts';
import { checkArgument, InvalidArgumentError, NotFoundError, OceanStoreError, ReplayError, SessionClosedError, UnavailableError } from '../core/errors.ts';
import { decodeUpdate, encodeUpdate, signUpdate, type Clause, type UnsignedUpdate } from '../core/update/index.ts';
import { concatBytes, toHex } from '../core/bytes.ts';
import type { RootBlock } from '../core/version/root-block.ts';
import { append as appendAction, appendBlocks, ref, setAcl, truncate, versionIs, writeBytes } from './clauses.ts';
import type { Identity } from './identity.ts';
import { outcomeOf, type WriteResult } from './result.ts';
import type { CallOptions, Session } from './session.ts';
import { readAheadChunks, VersionReader } from './reader.ts';
import type { VerifiedVersion } from './verify.ts';
import type { ReplicaTrust } from '../replica/types.ts';

/** Writes up to this size ride inline in the update; larger ones upload blocks first. */
export const inlineBytesMax = 64 * 1024;
/**
 * Reads are fetched in chunks of about this size (each chunk is one verified proof). Each reply
 * arrives in a buffer of its own that lives until its turn to be yielded; the fewer and larger
 * those buffers, the fewer full garbage collections the client runs (a 1 GiB get: 85 with 4 MiB
 * chunks, 62 with 8 MiB; client CPU 3.9-4.1 s against 3.6-3.7 s) and the less per-request work
 * on the servers (a proof's root and interior blocks, a certificate).
 */
export const readChunkBytes = 8 * 1024 * 1024;
/** The largest chunk a caller may ask for (a reply stays well under the 64 MiB frame bound). */
const readChunkBytesMax = 16 * 1024 * 1024;
/** Upload bytes in flight (blocks pushed, not yet acknowledged by 2f+1 ring servers). */
const uploadBytesInFlightMax = 16 * 1024 * 1024;

/** How often update() signs an update again after a 'replay' refusal (another store with the identity went first). */
const replayRetriesMax = 3;

export interface ReadOptions extends CallOptions {
  /** A past version; default the latest. */
  readonly version?: number;
  /** Where to start (default 0). A range past the end is cut at the end: an offset past it reads no bytes. */
  readonly offset?: number;
  /** How many bytes (default: to the end). */
  readonly length?: number;
  /** Demand a heartbeat no older than this; stale members are skipped (the ring answers). */
  readonly maxAgeMs?: number;
  /** Bytes per verified chunk of a stream (default readChunkBytes, 8 MiB; at most 16 MiB). */
  readonly chunkBytes?: number;
  /** Chunks a stream keeps in flight (default readAheadChunks, 4); memory is about this many chunks. */
  readonly readAheadChunks?: number;
}

export interface WriteOptions extends CallOptions {
  /** Commit only if the object's latest version is this one (else PredicateFailedError). */
  readonly ifVersion?: number;
}

export interface VersionInfo {
  readonly version: number;
  readonly vguid: string;
  readonly sizeBytes: number;
  readonly timestampMs: number;
  /** Hex digest of the update that made the version (the writer signed it). */
  readonly updateDigest: string;
}

export interface ObjectStat extends VersionInfo {
  readonly blockBytes: number;
  readonly owner: string;
  readonly writers: readonly string[];
}

/** Anything that yields byte chunks: a Node stream, a web ReadableStream iterator, a generator. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export class ObjectHandle {
  /** Reads: which member to ask, verification, waiting for this handle's own writes to certify. */
  private readonly reader: VersionReader;
  /**
   * The object's block size (fixed when it is created), once this handle knows it: a streamed
   * write needs it to cut blocks, and asking for the latest head each time made a writer's next
   * write wait for the previous one's certificate (the reader counts a head below the version it
   * wrote as behind), so one certificate lost stopped a writer stream until its deadline.
   */
  private knownBlockBytes: number | null = null;

  constructor(
    readonly aguid: Uint8Array,
    private readonly session: Session,
    private readonly identity: Identity,
    private readonly crypto: Crypto,
    private readonly trust: ReplicaTrust,
    private readonly nextNonce: () => number,
  ) {
    this.reader = new VersionReader(aguid, session, crypto, trust);
  }

  get aguidHex(): string {
    return toHex(this.aguid);
  }

  /**
   * The bytes of the latest (or a given) version, verified.
   * @example const bytes = await obj.read({ version: 3, offset: 0, length: 100 });
   */
  async read(options: ReadOptions = {}): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of this.readStream(options)) {
      chunks.push(chunk);
      total += chunk.length;
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  /**
   * The same bytes as `read`, as verified chunks (memory stays bounded for large objects).
   * @example for await (const chunk of obj.readStream()) process.stdout.write(chunk);
   */
  async *readStream(options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    checkReadOptions(options);
    const chunkBytes = options.chunkBytes ?? readChunkBytes;
    const ahead = options.readAheadChunks ?? readAheadChunks;
    // Chunks still in flight when the consumer stops (break, return, an error) are called off:
    // they kept the process alive for their whole deadline (session-19 SDK review).
    // (Not AbortSignal.any: on Node 20 each call leaves an entry on the caller's signal for good,
    // so an app-wide signal passed to every read grew without bound.)
    const stop = new AbortController();
    const caller = options.signal;
    if (caller?.aborted) stop.abort(caller.reason);
    const onCallerAbort = (): void => stop.abort(caller?.reason);
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    const fetchOptions = { ...options, signal: stop.signal };
    try {
      const head = await this.reader.fetch(options.version ?? null, 0, 0, fetchOptions);
      const size = head.root.sizeBytes;
      const offset = Math.min(options.offset ?? 0, size);
      const end = Math.min(size, options.length === undefined ? size : offset + options.length);
      // Every chunk is pinned to the version found first, so a concurrent write cannot tear a read.
      // A few chunks are in flight at once; they are yielded in order, so memory stays bounded.
      const inFlight: Promise<VerifiedVersion>[] = [];
      let next = offset;
      let index = 0;
      const launch = (): void => {
        const length = Math.min(chunkBytes, end - next);
        const part = this.reader.fetchChunk(index++, head.version, next, length, fetchOptions);
        part.catch(() => undefined); // awaited in order below; an abandoned stream must not crash
        inFlight.push(part);
        next += length;
      };
      while (next < end && inFlight.length < ahead) launch();
      while (inFlight.length > 0) {
        const part = await inFlight.shift()!;
        if (next < end) launch();
        // Each verified block as it arrived: joining them into one chunk cost a copy of every byte.
        for (const bytes of part.parts) yield bytes;
      }
    } finally {
      caller?.removeEventListener('abort', onCallerAbort);
      stop.abort();
    }
  }

  /**
   * Latest version's metadata, verified.
   * @example const { version, sizeBytes } = await obj.stat();
   */
  async stat(options: ReadOptions = {}): Promise<ObjectStat> {
    checkReadOptions(options);
    const head = await this.reader.fetch(options.version ?? null, 0, 0, options);
    const stat = statOf(head);
    this.knownBlockBytes = stat.blockBytes;
    return stat;
  }

  /** Called by OceanStore.create once the object is created with `blockBytes`. */
  noteCreated(blockBytes: number): void {
    this.knownBlockBytes = blockBytes;
  }

  private async blockBytes(options: CallOptions): Promise<number> {
    return this.knownBlockBytes ?? (await this.stat(options)).blockBytes;
  }

  /**
   * Every version from 0 to the latest, oldest first.
   * @example for (const v of await obj.versions()) console.log(v.version, v.sizeBytes);
   */
  async versions(options: CallOptions = {}): Promise<VersionInfo[]> {
    const latest = await this.reader.fetch(null, 0, 0, options);
    const out: VersionInfo[] = [];
    for (let v = 0; v < latest.version; v++) out.push(infoOf(await this.reader.fetch(v, 0, 0, options)));
    out.push(infoOf(latest));
    return out;
  }

  /**
   * Replaces the whole content (streamed sources upload block by block; memory stays bounded).
   * @example await obj.write(new TextEncoder().encode('hello'), { ifVersion: 2 });
   */
  async write(data: Uint8Array | ByteSource, options: WriteOptions = {}): Promise<WriteResult> {
    data = await smallOrRest(dataArgument(data));
    if (data instanceof Uint8Array && data.length <= inlineBytesMax) {
      return this.update([{ predicates: this.guard(options), actions: [truncate(0), appendAction(data)] }], options);
    }
    const refs = await this.uploadBlocks(data instanceof Uint8Array ? [data] : data, await this.blockBytes(options), options);
    return this.update([{ predicates: this.guard(options), actions: [truncate(0), appendBlocks(refs)] }], options);
  }

  /**
   * Overwrites bytes at `offset` (extending the object if needed).
   * @example await obj.writeAt(10, bytes);
   */
  async writeAt(offset: number, bytes: Uint8Array, options: WriteOptions = {}): Promise<WriteResult> {
    checkArgument(Number.isSafeInteger(offset) && offset >= 0, 'offset', 'a non-negative integer');
    return this.update([{ predicates: this.guard(options), actions: [writeBytes(offset, bytesArgument(bytes, 'bytes'))] }], options);
  }

  /**
   * Appends bytes (large or streamed input is uploaded as whole blocks).
   * @example await obj.append(new TextEncoder().encode('more'));
   */
  async append(data: Uint8Array | ByteSource, options: WriteOptions = {}): Promise<WriteResult> {
    data = await smallOrRest(dataArgument(data));
    if (data instanceof Uint8Array && data.length <= inlineBytesMax) {
      return this.update([{ predicates: this.guard(options), actions: [appendAction(data)] }], options);
    }
    const refs = await this.uploadBlocks(data instanceof Uint8Array ? [data] : data, await this.blockBytes(options), options);
    return this.update([{ predicates: this.guard(options), actions: [appendBlocks(refs)] }], options);
  }

  /**
   * Cuts the object to `sizeBytes` (at most its size: a larger one aborts 'out-of-range').
   * @example await obj.truncate(0);
   */
  async truncate(sizeBytes: number, options: WriteOptions = {}): Promise<WriteResult> {
    checkArgument(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0, 'sizeBytes', 'a non-negative integer');
    return this.update([{ predicates: this.guard(options), actions: [truncate(sizeBytes)] }], options);
  }

  /**
   * Replaces the writer list (owner only).
   * @example await obj.setAcl({ writers: [alice.publicKey] });
   */
  async setAcl(acl: { writers: readonly Uint8Array[] }, options: WriteOptions = {}): Promise<WriteResult> {
    return this.update([{ predicates: this.guard(options), actions: [setAcl(acl.writers)] }], options);
  }

  /**
   * Any Pond update: the first clause whose predicates all hold is applied atomically.
   * @example await obj.update([when(versionIs(4)).then(append(bytes)), otherwise()]);
   */
  async update(clauses: readonly Clause[], options: CallOptions = {}): Promise<WriteResult> {
    checkArgument(Array.isArray(clauses) && clauses.length > 0, 'clauses', 'a non-empty list of clauses');
    // A 'replay' refusal means another store with this identity used a higher update nonce first
    // (an app and a CLI call at the same instant); the update was not applied, so it is signed
    // again under a fresh nonce, a few times at most.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.updateOnce(clauses, options);
      } catch (error) {
        if (!(error instanceof ReplayError) || attempt >= replayRetriesMax) throw error;
      }
    }
  }

  private async updateOnce(clauses: readonly Clause[], options: CallOptions): Promise<WriteResult> {
    const unsigned: UnsignedUpdate = { aguid: this.aguid, writerPublicKey: this.identity.publicKey, nonce: this.nextNonce(), clauses };
    let bytes: Uint8Array;
    try {
      bytes = encodeUpdate(signUpdate(this.crypto, signerOf(this.crypto, this.identity.secretKey), unsigned));
      // The ring's own shape checks, here: an update they refuse is the caller's argument (a
      // negative version, a 5-byte key, 17 clauses), not something to order on every ring server
      // and then report as a refusal that suggests tampering or version skew.
      decodeUpdate(bytes);
    } catch (error) {
      if (error instanceof InvalidArgumentError) throw error;
      const why = error instanceof OceanStoreError || error instanceof Error ? error.message : String(error);
      throw new InvalidArgumentError(`argument 'clauses': not a valid update (${why})`);
    }
    const submitted = await this.session.submit(bytes, options);
    const result = outcomeOf(submitted);
    this.reader.noteWrite(result.version, result.certified);
    return result;
  }

  /**
   * New certified versions as they appear (polls the tree). Ends, without an error, when `signal`
   * aborts: an abort during a poll or a fetch is the caller saying stop, not a failure.
   * @example for await (const v of obj.watch({ signal })) console.log('version', v.version);
   */
  async *watch(options: CallOptions & { intervalMs?: number } = {}): AsyncGenerator<VersionInfo> {
    const signal = options.signal;
    let last = -1;
    try {
      last = (await this.stat(options)).version;
    } catch (error) {
      if (signal?.aborted) return;
      if (!(error instanceof NotFoundError)) throw error;
    }
    const intervalMs = options.intervalMs ?? 200;
    while (!signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, intervalMs);
        signal?.addEventListener('abort', done, { once: true });
      });
      if (signal?.aborted) return;
      let latest: VerifiedVersion;
      try {
        latest = await this.reader.fetch(null, 0, 0, { ...options, maxAgeMs: undefined });
      } catch (error) {
        // Aborted, or the store closed under it: the watch ends (it never ended after close()).
        if (signal?.aborted || error instanceof SessionClosedError) return;
        if (error instanceof NotFoundError || error instanceof UnavailableError) continue;
        throw error;
      }
      for (let v = last + 1; v <= latest.version; v++) {
        let version = latest;
        if (v !== latest.version) {
          try {
            version = await this.reader.fetch(v, 0, 0, options);
          } catch (error) {
            if (signal?.aborted || error instanceof SessionClosedError) return;
            throw error;
          }
        }
        yield infoOf(version);
      }
      last = Math.max(last, latest.version);
    }
  }

  private guard(options: WriteOptions): ReturnType<typeof versionIs>[] {
    if (options.ifVersion === undefined) return [];
    checkArgument(Number.isSafeInteger(options.ifVersion) && options.ifVersion >= 0, 'ifVersion', 'a non-negative integer');
    return [versionIs(options.ifVersion)];
  }

  /**
   * Splits a source into object-sized blocks, uploads them (bounded parallelism) and returns refs
   * in order; the first failed upload fails the call (with its error) before any update names a
   * block that is not stored.
   */
  private async uploadBlocks(source: ByteSource, blockBytes: number, options: CallOptions): Promise<ReturnType<typeof ref>[]> {
    const refs: ReturnType<typeof ref>[] = [];
    const inFlight = new Set<Promise<void>>();
    const acksNeeded = 2 * this.session.view.f + 1;
    let pending = new Uint8Array(blockBytes);
    let fill = 0;
    // A task never rejects (it records its error here): a rejected one left the in-flight set
    // before anyone awaited it, and its placeholder BGUID went into the update.
    let failed: Error | null = null;
    const ship = async (block: Uint8Array): Promise<void> => {
      const slot = refs.length;
      refs.push(ref(new Uint8Array(32), block.length)); // placeholder until the upload's BGUID
      const task = this.session.putBlock(block, acksNeeded, options).then(
        (bguid) => {
          refs[slot] = ref(bguid, block.length);
        },
        (error: Error) => {
          failed ??= error;
        },
      );
      inFlight.add(task);
      void task.finally(() => inFlight.delete(task));
      if (inFlight.size * blockBytes >= uploadBytesInFlightMax) await Promise.race(inFlight);
      if (failed) throw failed;
    };
    for await (const item of source as AsyncIterable<Uint8Array>) {
      const chunk = bytesArgument(item, 'data');
      for (let at = 0; at < chunk.length; ) {
        const take = Math.min(blockBytes - fill, chunk.length - at);
        pending.set(chunk.subarray(at, at + take), fill);
        fill += take;
        at += take;
        if (fill === blockBytes) {
          await ship(pending);
          pending = new Uint8Array(blockBytes);
          fill = 0;
        }
      }
    }
    if (fill > 0) await ship(pending.subarray(0, fill));
    await Promise.all(inFlight);
    if (failed) throw failed;
    return refs;
  }

}

/**
 * Read options are checked before anything is sent. A maxAgeMs of 0 used to mean "no freshness
 * demand" on the wire, so `maxAgeMs: 0` silently read without one: it must be positive.
 */
function checkReadOptions(options: ReadOptions): void {
  const optional = (value: number | undefined, min: number): boolean => value === undefined || (Number.isSafeInteger(value) && value >= min);
  checkArgument(optional(options.version, 0), 'version', 'a version number (a non-negative integer), or none for the latest');
  checkArgument(optional(options.offset, 0), 'offset', 'a non-negative integer');
  checkArgument(optional(options.length, 0), 'length', 'a non-negative integer');
  checkArgument(optional(options.maxAgeMs, 1), 'maxAgeMs', 'a positive integer of milliseconds, or none for no freshness demand');
  const chunkBytes = options.chunkBytes;
  checkArgument(chunkBytes === undefined || (Number.isSafeInteger(chunkBytes) && chunkBytes >= 1 && chunkBytes <= readChunkBytesMax), 'chunkBytes', `an integer in 1..${readChunkBytesMax}`);
  checkArgument(optional(options.readAheadChunks, 1) && (options.readAheadChunks ?? 1) <= 64, 'readAheadChunks', 'an integer in 1..64');
}

function infoOf(v: VerifiedVersion): VersionInfo {
  return {
    version: v.version,
    vguid: toHex(v.vguid),
    sizeBytes: v.root.sizeBytes,
    timestampMs: v.root.timestampMs,
    updateDigest: toHex(v.root.updateDigest),
  };
}

function statOf(v: VerifiedVersion): ObjectStat {
  const root: RootBlock = v.root;
  return { ...infoOf(v), blockBytes: root.blockBytes, owner: toHex(root.ownerPublicKey), writers: root.writerPublicKeys.map(toHex) };
}

/**
 * `value` as a Uint8Array, or InvalidArgumentError naming `argument`. A Uint8Array from another
 * realm (vm, a worker's structured clone, Electron) is taken as a view of its bytes; anything else
 * (a number[], a Uint16Array, a string) is refused: taken as a byte source, a number[] uploaded
 * nothing and write() committed an empty object (session-19 SDK review).
 */
function bytesArgument(value: unknown, argument: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Uint8Array]') {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new InvalidArgumentError(`argument '${argument}': expected a Uint8Array${argument === 'data' ? ' or an (async) iterable of Uint8Array chunks' : ''}`);
}

/**
 * A streamed source that ends within inlineBytesMax bytes, as those bytes: written inline, one
 * ring round trip, where the block path first reads the object's head (a latest probe under the
 * write's own deadline) and uploads a block to 2f+1 servers. The CLI passes every file as a
 * stream, so a 6-byte `put` took the block path (session 29). A longer source comes back as one
 * that yields what was read to find out, then the rest; the source is closed if that one is left
 * early (a failed upload).
 */
export async function smallOrRest(data: Uint8Array | ByteSource): Promise<Uint8Array | ByteSource> {
  if (data instanceof Uint8Array) return data;
  const it: AsyncIterator<Uint8Array> | Iterator<Uint8Array> = Symbol.asyncIterator in data ? data[Symbol.asyncIterator]() : data[Symbol.iterator]();
  const head: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes <= inlineBytesMax) {
      const next = await it.next();
      if (next.done) return head.length === 1 ? head[0]! : concatBytes(head);
      const chunk = bytesArgument(next.value, 'data');
      head.push(chunk);
      bytes += chunk.length;
    }
  } catch (error) {
    await it.return?.();
    throw error;
  }
  return (async function* rest() {
    let done = false;
    try {
      yield* head;
      for (;;) {
        const next = await it.next();
        if (next.done) {
          done = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!done) await it.return?.();
    }
  })();
}

/** write/append's data: bytes, or a source of byte chunks (each checked as it comes). */
function dataArgument(data: unknown): Uint8Array | ByteSource {
  if (Array.isArray(data)) return data.map((chunk) => bytesArgument(chunk, 'data'));
  if (typeof data === 'object' && data !== null && !ArrayBuffer.isView(data) && (Symbol.asyncIterator in data || Symbol.iterator in data)) return data as ByteSource;
  return bytesArgument(data, 'data');
}
