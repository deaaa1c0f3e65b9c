/**
 * core/version's BlockStore over a replica's KvStore, so blocks share the replica's durability
 * barrier. Keys: `blk/<bguid hex>` = the block's bytes, `blkm/<bguid hex>` = its kind code and
 * length (5 bytes). Blocks written before the meta key existed are read as before: no meta key,
 * and `blk/` holds kind code ‖ bytes. Keeping the kind beside rather than in front of the bytes
 * lets a put store the received bytes as they are: prefixing the kind copied every block once
 * more on every ring server. Pure: the simulator and tests use it over MemoryKvStore.
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
 *
 * A block whose stored bytes do not hash to its name (lmdb keeps no checksums: a flipped bit at
 * rest) is discarded at once and durably (KvStore.discardNow) and read as absent. Throwing instead
 * stopped the node at every start (the start walks the heads' blocks) or at every peer's fetch of
 * it; absent, it is fetched again from the peers like any block this replica lacks (the start's
 * walk finds it missing, and so does a restart after an execution that needed it failed).
 */
import { toHex, bytesEqual, fromHex, concatBytes, u32be } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { IntegrityError, checkArgument } from '../core/errors.ts';
import { bguidOf, kindCodeOf, kindOfCode, type BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { discardNow, type KvStore } from '../core/store.ts';

const prefix = 'blk/';
const metaPrefix = 'blkm/';
const metaBytes = 5;

interface Known {
  readonly kind: BlockKind;
  readonly byteLength: number;
  /** Stored the old way: `blk/` holds kind code ‖ bytes (no meta key). */
  readonly framed: boolean;
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
  /** Stored blocks found corrupt (and discarded) by get. */
  corruptCount = 0;

  constructor(
    private readonly crypto: Crypto,
    private readonly store: KvStore,
    options: KvBlockStoreOptions = {},
  ) {
    this.knownCountMax = options.knownCountMax ?? 65_536;
    checkArgument(Number.isSafeInteger(this.knownCountMax) && this.knownCountMax >= 1, 'knownCountMax', 'a positive integer');
  }

  private remember(hex: string, entry: Known): Known {
    this.known.delete(hex);
    if (this.known.size >= this.knownCountMax) this.known.delete(this.known.keys().next().value as string);
    this.known.set(hex, entry);
    return entry;
  }

  /** What the store holds for `hex`, learning its kind and length; undefined if absent (or its kind code is unknown: corrupt). */
  private lookup(hex: string): Known | undefined {
    const known = this.known.get(hex);
    if (known) return known;
    const meta = this.store.get(metaPrefix + hex);
    if (meta && meta.length === metaBytes) {
      const kind = kindOfCode(meta[0]!);
      const byteLength = new DataView(meta.buffer, meta.byteOffset, metaBytes).getUint32(1);
      return kind === undefined ? undefined : this.remember(hex, { kind, byteLength, framed: false, checked: false });
    }
    const value = this.store.get(prefix + hex);
    const kind = value && value.length > 0 ? kindOfCode(value[0]!) : undefined;
    return kind === undefined ? undefined : this.remember(hex, { kind, byteLength: value!.length - 1, framed: true, checked: false });
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const hex = toHex(bguid);
    const entry = this.lookup(hex);
    if (entry?.kind !== kind) return undefined;
    const value = this.store.get(prefix + hex);
    if (!value) {
      // A meta key without its block (a crash between the two discards of an earlier version):
      // corrupt too, counted as such (a read while a batch executes stops the replica), and gone,
      // so `has` says absent and the block is fetched and stored again.
      this.known.delete(hex);
      if (!entry.framed) {
        this.corruptCount++;
        discardNow(this.store, [metaPrefix + hex]);
      }
      return undefined;
    }
    const bytes = entry.framed ? value.subarray(1) : value;
    if (entry.checked && entry.byteLength === bytes.length) return bytes;
    this.hashCount++;
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      this.corruptCount++;
      this.known.delete(hex);
      // Both keys in one transaction: a meta key left alone said "here" for good and made every
      // put of the good copy a no-op; bytes left alone could be read as a block of the old format.
      discardNow(this.store, [metaPrefix + hex, prefix + hex]);
      return undefined;
    }
    this.remember(hex, { kind, byteLength: bytes.length, framed: entry.framed, checked: true });
    return bytes;
  }

  has(bguid: Uint8Array): boolean {
    return this.lookup(toHex(bguid)) !== undefined;
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    const known = this.lookup(toHex(bguid));
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

  /** Stores `bytes` by reference (KvStore values are never mutated): callers must not change them afterwards. */
  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    const hex = toHex(bguid);
    // Already stored: under this kind these are the same bytes (the name is their hash); under
    // another kind the first writer wins, as it always did.
    if (this.lookup(hex) !== undefined) return;
    this.store.put(prefix + hex, bytes);
    this.store.put(metaPrefix + hex, concatBytes([Uint8Array.of(kindCodeOf(kind)), u32be(bytes.length)]));
    this.remember(hex, { kind, byteLength: bytes.length, framed: false, checked: true });
  }

  delete(bguid: Uint8Array): void {
    const hex = toHex(bguid);
    this.known.delete(hex);
    this.store.delete(prefix + hex);
    this.store.delete(metaPrefix + hex);
  }

  *bguids(): Iterable<Uint8Array> {
    for (const key of this.store.keys(prefix)) yield fromHex(key.slice(prefix.length));
  }
}
