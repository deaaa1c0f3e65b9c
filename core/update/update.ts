/**
 * Pond updates: `{aguid, writer key, nonce, clauses, signature}`. The ring evaluates clauses in
 * order and applies the first whose predicates all hold, atomically; otherwise the update aborts.
 *
 * Block data reaches an update two ways: inline bytes (small writes ride in the agreed request) or
 * references to data blocks the client uploaded first (`{bguid, length}`), so a large object
 * streams as blocks and one small update names them. Inline `append` tops up a short last leaf;
 * `append-blocks` adds whole leaves (inline or by reference) and never merges.
 */
export interface BlockRef {
  readonly kind: 'ref';
  readonly bguid: Uint8Array;
  readonly length: number;
}
export interface InlineBlock {
  readonly kind: 'inline';
  readonly bytes: Uint8Array;
}
/** One whole leaf: inline bytes or a reference to an uploaded data block. */
export type BlockSource = InlineBlock | BlockRef;

export type Predicate =
  | { readonly kind: 'always' }
  | { readonly kind: 'version-is'; readonly version: number }
  | { readonly kind: 'size-is'; readonly sizeBytes: number }
  | { readonly kind: 'block-hash-is'; readonly index: number; readonly bguid: Uint8Array }
  | { readonly kind: 'bytes-equal'; readonly offset: number; readonly bytes: Uint8Array }
  /** Plain SHA-256 of bytes [offset, offset + length): lets a client compare a large range it need not ship. */
  | { readonly kind: 'bytes-hash-is'; readonly offset: number; readonly length: number; readonly sha256: Uint8Array };

export type Action =
  /** Only on an object that does not exist; the writer becomes the owner and aguid must be aguidOf(writer, name). */
  | {
      readonly kind: 'create';
      readonly name: string;
      readonly blockBytes: number;
      readonly fanoutMax: number;
      readonly writerPublicKeys: readonly Uint8Array[];
    }
  | { readonly kind: 'write-bytes'; readonly offset: number; readonly bytes: Uint8Array }
  | { readonly kind: 'append'; readonly bytes: Uint8Array }
  | { readonly kind: 'append-blocks'; readonly blocks: readonly BlockSource[] }
  | { readonly kind: 'replace-block'; readonly index: number; readonly block: BlockSource }
  | { readonly kind: 'insert-block'; readonly index: number; readonly block: BlockSource }
  | { readonly kind: 'delete-block'; readonly index: number }
  | { readonly kind: 'truncate'; readonly sizeBytes: number }
  /** Owner only: replaces the writer list (the owner is always allowed). */
  | { readonly kind: 'set-acl'; readonly writerPublicKeys: readonly Uint8Array[] };

export interface Clause {
  readonly predicates: readonly Predicate[];
  readonly actions: readonly Action[];
}

export interface UnsignedUpdate {
  readonly aguid: Uint8Array;
  readonly writerPublicKey: Uint8Array;
  /** Must increase per writer; the ring keeps the last one it ordered (see nonce.ts). */
  readonly nonce: number;
  readonly clauses: readonly Clause[];
}

export interface Update extends UnsignedUpdate {
  /** Ed25519 over the tagged encoding of the unsigned update (sign.ts). */
  readonly signature: Uint8Array;
}

/** Fan-out used when a create does not care: 64 pointers keep an interior block near 3 KB. */
export const fanoutMaxDefault = 64;
