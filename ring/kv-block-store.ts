/**
 * core/version's BlockStore over a replica's KvStore (key `blk/<bguid hex>`, value = kind code ‖
 * bytes), so blocks share the replica's durability barrier. Pure: the simulator and tests use it
 * over MemoryKvStore; a runtime may pass its own store (runtime/lmdb-block-store.ts) instead.
 *
 * Verification is once per block per instance, not once per read. A block's bytes are hash-checked
 * when they enter from memory (put / putVerified hash them; putHashed's caller just did) or on
 * their first read back from the store; after that, reads return the stored bytes without hashing
 * again. A ring server reads the same large block many times (execution, the archiver, every
 * secondary's fetch, every client read), and re-hashing each time was a large share of its CPU.
 * What a disk can corrupt is the bytes at rest across a restart (a new instance checks every block
 * again on its first read); what this leaves open is rot under a running process on a page lmdb
 * re-reads from disk, which every reader still catches (clients and secondaries verify each block
 * against its BGUID on receipt) and the archive's fragments are checked on their own.
 *
 * The instance also remembers each known block's kind and length, so `has` and `byteLengthOf`
 * (asked for every referenced block of every update) do not copy the block out of the store.
 */
import { toHex, bytesEqual, fromHex, concatBytes } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { IntegrityError, checkArgument } from '../core/errors.ts';
import { bguidOf, kindCodeOf, kindOfCode, type BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import type { KvStore } from '../core/store.ts';

const prefix = 'blk/';

interface Known {
  readonly kind: BlockKind;
  readonly byteLength: number;
  /** The stored bytes were hash-checked by this instance. */
  checked: boolean;
}

export interface KvBlockStoreOptions {
  /** Blocks whose kind, length and checked state are remembered (oldest forgotten first); ~150 bytes each. */
  readonly knownCountMax?: number;
}

export class KvBlockStore implements BlockStore {
  private readonly known = new Map<string, Known>();
  private readonly knownCountMax: number;
  /** Hashes computed by get/put/putVerified (for tests and the docs' accounting). */
  hashCount = 0;

  constructor(
    private readonly crypto: Crypto,
    private readonly store: KvStore,
    options: KvBlockStoreOptions = {},
  ) {
    this.knownCountMax = options.knownCountMax ?? 65_536;
    checkArgument(Number.isSafeInteger(this.knownCountMax) && this.knownCountMax >= 1, 'knownCountMax', 'a positive integer');
  }

  private remember(key: string, kind: BlockKind, byteLength: number, checked: boolean): Known {
    this.known.delete(key);
    if (this.known.size >= this.knownCountMax) this.known.delete(this.known.keys().next().value as string);
    const entry = { kind, byteLength, checked };
    this.known.set(key, entry);
    return entry;
  }

  /** What the store holds under `key`, learning its kind and length; undefined if absent. */
  private lookup(key: string): Known | undefined {
    const known = this.known.get(key);
    if (known) return known;
    const value = this.store.get(key);
    const kind = value && value.length > 0 ? kindOfCode(value[0]!) : undefined;
    // An unknown kind code is a corrupt value: treated as absent, so a put of the block rewrites it.
    return kind === undefined ? undefined : this.remember(key, kind, value!.length - 1, false);
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const key = prefix + toHex(bguid);
    const known = this.known.get(key);
    if (known && known.kind !== kind) return undefined;
    const value = this.store.get(key);
    if (!value || value.length === 0) {
      this.known.delete(key);
      return undefined;
    }
    const storedKind = kindOfCode(value[0]!);
    if (storedKind !== kind) return undefined;
    const bytes = value.subarray(1);
    if (known?.checked && known.byteLength === bytes.length) return bytes;
    this.hashCount++;
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block ${toHex(bguid)} is corrupt in the replica's store`);
    }
    this.remember(key, kind, bytes.length, true);
    return bytes;
  }

  has(bguid: Uint8Array): boolean {
    return this.lookup(prefix + toHex(bguid)) !== undefined;
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    const known = this.lookup(prefix + toHex(bguid));
    return known?.kind === kind ? known.byteLength : undefined;
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    this.hashCount++;
    const bguid = bguidOf(this.crypto, kind, bytes);
    this.putHashed(bguid, kind, bytes);
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    this.hashCount++;
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) throw new IntegrityError(`block bytes do not hash to ${toHex(bguid)}`);
    this.putHashed(bguid, kind, bytes);
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    const key = prefix + toHex(bguid);
    // Already stored: under this kind these are the same bytes (the name is their hash); under
    // another kind the first writer wins, as it always did.
    if (this.lookup(key) !== undefined) return;
    this.store.put(key, concatBytes([Uint8Array.of(kindCodeOf(kind)), bytes]));
    this.remember(key, kind, bytes.length, true);
  }

  delete(bguid: Uint8Array): void {
    const key = prefix + toHex(bguid);
    this.known.delete(key);
    this.store.delete(key);
  }

  *bguids(): Iterable<Uint8Array> {
    for (const key of this.store.keys(prefix)) yield fromHex(key.slice(prefix.length));
  }
}
