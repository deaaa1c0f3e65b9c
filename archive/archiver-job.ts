/**
 * The archiver's per-block job, and how pending jobs are kept in its store so a restarted
 * archiver resumes them: key `q/<bguid hex>`, value the version's certificate for a root block,
 * else empty. Pure (a KvStore is injected).
 */
import { fromHex } from '../core/bytes.ts';
import { hashBytes } from '../core/crypto.ts';
import type { KvStore } from '../core/store.ts';
import type { FragmentSet } from './erasure/index.ts';

export interface Job {
  hex: string;
  bguid: Uint8Array;
  /** Null while waiting when the bytes can be re-read (blockBytesOf). */
  bytes: Uint8Array | null;
  blockBytes: number;
  certificate: Uint8Array | null;
  /** waiting: for its rank's turn; probing: asking who holds what; ready: queued for encoding. */
  phase: 'waiting' | 'probing' | 'ready' | 'storing';
  startAtMs: number;
  deadlineMs: number;
  attempt: number;
  rank: number;
  set: FragmentSet | null;
  /** Servers known to hold something of the block (probe replies, receipts). */
  holders: Map<string, number>;
  /** Probe answers (who claimed what), matched against the genuine fragment root once the block is encoded. */
  probed: { server: string; rootHex: string; index: number }[];
  storedIndexes: Set<number>;
  /** Fragment index -> where it was sent and in which store batch. */
  pending: Map<number, { server: string; requestId: number }>;
  probing: Set<string>;
  /** Servers not asked again this attempt: silent past the deadline, or refused a store (then also in `refusals`). */
  unresponsive: Set<string>;
  /** The latest refusal of this block's stores ("server: reason"), for the stalled report. */
  refusal: string | null;
  sentCount: number;
}

export function newJob(hex: string, bguid: Uint8Array, bytes: Uint8Array | null, blockBytes: number, certificate: Uint8Array | null, rank: number, startAtMs: number): Job {
  return {
    hex, bguid, bytes, blockBytes, certificate, phase: 'waiting', startAtMs, deadlineMs: 0, attempt: 0, rank, set: null,
    holders: new Map(), probed: [], storedIndexes: new Set(), pending: new Map(), probing: new Set(), unresponsive: new Set(), refusal: null, sentCount: 0,
  };
}

const queuePrefix = 'q/';

export function keepJob(store: KvStore, hex: string, certificate: Uint8Array | null): void {
  store.put(queuePrefix + hex, certificate ?? new Uint8Array(0));
}

export function forgetJob(store: KvStore, hex: string): void {
  store.delete(queuePrefix + hex);
}

/** Jobs kept by a previous run; keys that do not name a BGUID are dropped. */
export function keptJobsOf(store: KvStore): { hex: string; bguid: Uint8Array; certificate: Uint8Array | null }[] {
  const out: { hex: string; bguid: Uint8Array; certificate: Uint8Array | null }[] = [];
  for (const key of store.keys(queuePrefix)) {
    const hex = key.slice(queuePrefix.length);
    const value = store.get(key);
    if (hex.length !== 2 * hashBytes || !/^[0-9a-f]+$/.test(hex) || value === undefined) {
      store.delete(key);
      continue;
    }
    out.push({ hex, bguid: fromHex(hex), certificate: value.length > 0 ? value : null });
  }
  return out;
}
