/**
 * The seams of the dissemination tree. A tree member never decodes a certificate or an update
 * itself: it asks a `ReplicaTrust` (certificates and heartbeats, checked against the ring public
 * key) and a `ReplicaExecutor` (re-executes an update on the member's copy, walks a version's
 * blocks). Production wires core/threshold and core/update behind them (replica/wiring.ts); tests
 * may use a toy model. Both must be deterministic and must never throw on peer bytes.
 */
import type { BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';

/** What a verified commit certificate says: the ring committed `updateDigest` as (aguid, version) → vguid. */
export interface CommitStatement {
  readonly aguid: Uint8Array;
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly updateDigest: Uint8Array;
  /** The ring's agreed time for the update; re-execution must use it (root blocks carry it). */
  readonly timestampMs: number;
}

/** What a verified heartbeat says: as of `timestampMs`, the latest version of `aguid` is (version, vguid). */
export interface HeartbeatStatement {
  readonly aguid: Uint8Array;
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly timestampMs: number;
}

/**
 * Does heartbeat `b` say more than `a`: a later time, or the same time and a later version? Two
 * heartbeats of one object can carry one timestamp (batch timestamps only increase by at least
 * one; execution can hold the clock back), and keeping the first of them left a member holding a
 * heartbeat behind its head: fresh reads answered too-stale until the next one (session-21 review).
 */
export function heartbeatIsNewer(a: { readonly version: number; readonly timestampMs: number }, b: { readonly version: number; readonly timestampMs: number }): boolean {
  return b.timestampMs > a.timestampMs ? b.version >= a.version : b.timestampMs === a.timestampMs && b.version > a.version;
}

export interface ReplicaTrust {
  /** The commit statement certified by `certificate` under the ring key; null if it fails, is malformed or certifies an abort. Never throws. */
  verifyCommit(certificate: Uint8Array): CommitStatement | null;
  /** The statement of a valid heartbeat; null otherwise. Never throws. */
  verifyHeartbeat(heartbeat: Uint8Array): HeartbeatStatement | null;
}

/** A version a member holds, named by its certified identity. */
export interface Head {
  readonly aguid: Uint8Array;
  readonly version: number;
  readonly vguid: Uint8Array;
}

export type ExecuteResult =
  | { readonly ok: true; readonly head: Head }
  | { readonly ok: false; readonly reason: string };

export interface BlockRef {
  readonly bguid: Uint8Array;
  readonly kind: BlockKind;
}

export interface ProofBlock extends BlockRef {
  readonly bytes: Uint8Array;
}

export interface ReplicaExecutor {
  /** The version number an object's creating update gives it (the first entry of every history). */
  readonly firstVersion: number;
  /** The update digest a certificate names (HashTag.update); null if `update` does not decode. Never throws. */
  digest(update: Uint8Array): Uint8Array | null;
  /**
   * BGUIDs of the uploaded data blocks `update` names (every clause; a member fetches those it
   * lacks before re-executing a large update that travelled as block references). [] if the
   * update does not decode. Never throws.
   */
  references(update: Uint8Array): Uint8Array[];
  /**
   * Re-executes the encoded `update` on `head` (null: the object does not exist yet) at the
   * ring's `timestampMs`, writing new blocks into `blocks`. An update that does not decode, aborts
   * or needs a block that is missing gives ok: false. Never throws on peer bytes.
   */
  execute(blocks: BlockStore, head: Head | null, update: Uint8Array, timestampMs: number): ExecuteResult;
  /** Every block of version `vguid` (root, interior, data), or null if one is missing from `blocks`. */
  versionBlocks(blocks: BlockStore, vguid: Uint8Array): BlockRef[] | null;
  /** BGUIDs of the data blocks of `vguid` missing from `blocks`; null if the root or an interior block is missing. */
  missingDataBlocks(blocks: BlockStore, vguid: Uint8Array): Uint8Array[] | null;
  /** The blocks a reader needs to read [offset, offset + length) of `vguid` and check it up to the VGUID; null if one is missing. */
  rangeProof(blocks: BlockStore, vguid: Uint8Array, offset: number, length: number): ProofBlock[] | null;
  /** Reads the range from a store holding (at least) a proof; null if the store lacks a block or the range is out of bounds. */
  readRange(blocks: BlockStore, vguid: Uint8Array, offset: number, length: number): Uint8Array | null;
  /** The same range as views of its leaf blocks, in order (no copy); readers use it when present. */
  readParts?(blocks: BlockStore, vguid: Uint8Array, offset: number, length: number): Uint8Array[] | null;
}

/**
 * Finds tree members for an object, nearest first (Tapestry locate in production; the cluster
 * configuration until then). Ring servers (roots) should come last: they are the members of
 * last resort, and keeping load off them is the point of the tree.
 */
export interface TreeLocator {
  candidates(aguid: Uint8Array): readonly string[];
}
