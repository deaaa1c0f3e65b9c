/**
 * core/version's BlockStore over a replica's KvStore (key `blk/<bguid hex>`, value = kind code ‖
 * bytes), so blocks share the replica's durability barrier. Pure: the simulator and tests use it
 * over MemoryKvStore; a runtime may pass its own store (runtime/lmdb-block-store.ts) instead.
 */
import { toHex, bytesEqual, fromHex, concatBytes } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { IntegrityError } from '../core/errors.ts';
import { bguidOf, kindCodeOf, kindOfCode, type BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import type { KvStore } from '../core/store.ts';

const prefix = 'blk/';

export class KvBlockStore implements BlockStore {
  constructor(
    private readonly crypto: Crypto,
    private readonly store: KvStore,
  ) {}

  private raw(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const value = this.store.get(prefix + toHex(bguid));
    if (!value || value.length === 0 || kindOfCode(value[0]!) !== kind) return undefined;
    return value.subarray(1);
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    const bytes = this.raw(bguid, kind);
    if (bytes && !bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) {
      throw new IntegrityError(`block ${toHex(bguid)} is corrupt in the replica's store`);
    }
    return bytes;
  }

  has(bguid: Uint8Array): boolean {
    return this.store.get(prefix + toHex(bguid)) !== undefined;
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    return this.raw(bguid, kind)?.length;
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    const bguid = bguidOf(this.crypto, kind, bytes);
    this.putHashed(bguid, kind, bytes);
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    if (!bytesEqual(bguidOf(this.crypto, kind, bytes), bguid)) throw new IntegrityError(`block bytes do not hash to ${toHex(bguid)}`);
    this.putHashed(bguid, kind, bytes);
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    const key = prefix + toHex(bguid);
    if (this.store.get(key) === undefined) this.store.put(key, concatBytes([Uint8Array.of(kindCodeOf(kind)), bytes]));
  }

  delete(bguid: Uint8Array): void {
    this.store.delete(prefix + toHex(bguid));
  }

  *bguids(): Iterable<Uint8Array> {
    for (const key of this.store.keys(prefix)) yield fromHex(key.slice(prefix.length));
  }
}
