/**
 * What the archiver (archive/archiver.ts) is configured with, takes and reports: its options, the
 * blocks of a committed version handed to it, and its output events.
 */
import type { Crypto } from '../core/crypto.ts';

export interface ArchiverOptions {
  crypto: Crypto;
  ringServers: readonly string[];
  archiveServers: readonly string[];
  /** Ed25519 public key of each archive server, to check receipts. */
  archiveServerKeys: ReadonlyMap<string, Uint8Array>;
  k: number;
  m: number;
  fallbackTimeoutMs: number;
  /** Highest ring-server rank that archives a block (f: so that one correct server is among them). */
  fallbackRanksMax: number;
  storeTimeoutMs: number;
  attemptsMax: number;
  /**
   * Check each receipt's signature on arrival. The host's channel already authenticates the
   * sender, so a receipt's signature matters as transferable evidence (audits, disputes) rather
   * than for the archiver's own decision; checking costs one ed25519 verify per fragment.
   * Default true.
   */
  verifyReceipts?: boolean;
  /** Block bytes erasure-coded in one step (a bigger block still goes alone). Default unbounded. */
  stepBytesMax?: number;
  /** Bytes of encoded blocks that may wait for receipts at once. Default unbounded. */
  inFlightBytesMax?: number;
  /**
   * The rate a rank-0 archiver is assumed to keep up at least: a fallback rank waits, on top of
   * its rank's delay, for the bytes ahead of the block in its version at this rate, so a large
   * version being archived in order is not re-encoded by every rank. Default: no extra wait.
   */
  fallbackBytesPerSecond?: number;
  /**
   * Where a pending block's bytes can be read again (the ring server's block store). With it, jobs
   * hold no block bytes while they wait, and pending jobs survive a restart in the store.
   */
  blockBytesOf?: (bguid: Uint8Array) => Uint8Array | undefined;
  /**
   * A fallback rank's start is rounded up to a multiple of this, so the blocks of hand-overs a
   * few ticks apart are probed together: one probe per archive server per step of this size
   * rather than one per tick that has a block due. Default 0 (start exactly when due).
   */
  fallbackStartStepMs?: number;
}

export interface BlockToArchive {
  bguid: Uint8Array;
  bytes: Uint8Array;
}

/** A block named without its bytes (only with `blockBytesOf`: they are re-read when coded). */
export interface BlockRefToArchive {
  bguid: Uint8Array;
  byteLength: number;
}

/** One committed version's new blocks, its root block and its encoded certificate. */
export interface VersionToArchive {
  blocks: readonly (BlockToArchive | BlockRefToArchive)[];
  rootBguid: Uint8Array | null;
  certificate: Uint8Array | null;
  /**
   * Ring servers known to have been handed this version too (those that learned its certificate):
   * they rank ahead of the others for its blocks, in rendezvous order among themselves, so a block's
   * rank 0 is a server that has it. Ranks only set who goes first: every rank up to
   * fallbackRanksMax still probes and covers what is missing.
   */
  archivers?: readonly string[];
}

export type ArchiverOutput =
  | { kind: 'archived'; bguid: Uint8Array; receiptCount: number; sentCount: number }
  | { kind: 'incomplete'; bguid: Uint8Array; receiptCount: number; reason: string }
  /**
   * An archive server refused stores (`count` of them since its last report, the latest `reason`),
   * reported at most once per server per refusalReportEveryMs: a server with another
   * config.erasure refuses every fragment, and without this the only sign was "did not
   * acknowledge" after many attempts (second review, finding 1).
   */
  | { kind: 'refused'; server: string; count: number; reason: string };
