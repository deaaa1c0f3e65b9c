/**
 * The archiver, beside each ring server: erasure-codes a committed version's new blocks and sends
 * the fragments to their archive servers (Pond, FAST 2003, section 3.4: archival happens as a
 * side effect of commit). Coding is deterministic, so every ring server could do it; to archive
 * each block once, the ring servers rank themselves per block with the same rendezvous hash as
 * placement, and rank r starts after r * fallbackTimeoutMs. Rank 0 stores straight away; a later
 * rank first probes the block's archive servers, re-encodes to learn the genuine fragment root, and
 * stores only what is missing under it, so a faulty rank-0 server (silent, or storing a bogus
 * encoding) is covered. Ranks 0..fallbackRanksMax act; with fallbackRanksMax = f at least one of
 * them is correct.
 *
 * A fragment counts as stored only on a valid signed receipt from the server it was sent to. A
 * server that does not answer in storeTimeoutMs has its fragment re-placed on the next ranked
 * server holding nothing of the block. The version's certificate travels with every fragment of
 * its root block, so the archive alone (plus the ring public key) can rebuild the history.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import { encodeFragment, makeFragments, type FragmentSet } from './erasure/index.ts';
import type { ArchiveMessage } from './messages.ts';
import { placementOf, rankedServersOf, repairTargetOf, serverRingOf, type ServerRing } from './placement.ts';
import { verifyReceipt } from './receipt.ts';

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
}

export interface BlockToArchive {
  bguid: Uint8Array;
  bytes: Uint8Array;
}

export type ArchiverOutput =
  | { kind: 'archived'; bguid: Uint8Array; receiptCount: number; sentCount: number }
  | { kind: 'incomplete'; bguid: Uint8Array; receiptCount: number; reason: string };

interface Job {
  hex: string;
  block: BlockToArchive;
  certificate: Uint8Array | null;
  phase: 'waiting' | 'probing' | 'storing';
  startAtMs: number;
  deadlineMs: number;
  attempt: number;
  rank: number;
  set: FragmentSet | null;
  /** Servers known to hold something of the block (probe replies, receipts). */
  holders: Map<string, number>;
  storedIndexes: Set<number>;
  pending: Map<number, { server: string; index: number }>;
  probing: Set<string>;
  unresponsive: Set<string>;
  sentCount: number;
  requestIds: number[];
}

type Out = Effect<ArchiveMessage, ArchiverOutput>;

export class Archiver implements Machine<ArchiveMessage, ArchiverOutput> {
  private readonly self: string;
  private readonly ringRing: ServerRing;
  private readonly archiveRing: ServerRing;
  private readonly jobs = new Map<string, Job>();
  private readonly jobOfRequest = new Map<number, string>();
  private nextRequestId = 1;
  readonly counters = { started: 0, skipped: 0, archived: 0, coveredByOther: 0, badReceipts: 0 };

  constructor(
    context: MachineContext,
    private readonly options: ArchiverOptions,
  ) {
    this.self = context.nodeId;
    this.ringRing = serverRingOf(options.ringServers);
    this.archiveRing = serverRingOf(options.archiveServers);
  }

  /**
   * A committed version's new blocks; `certificate` (encoded) goes beside the fragments of
   * `rootBguid`, the version's root block. Called by the ring core (or its host) once per version.
   */
  archive(blocks: readonly BlockToArchive[], rootBguid: Uint8Array | null, certificate: Uint8Array | null, nowMs: number): Out[] {
    const out: Out[] = [];
    for (const block of blocks) {
      const hex = toHex(block.bguid);
      if (this.jobs.has(hex)) continue;
      const rank = rankedServersOf(this.ringRing, block.bguid).indexOf(this.self);
      if (rank < 0 || rank > this.options.fallbackRanksMax) {
        this.counters.skipped++;
        continue;
      }
      this.counters.started++;
      const job: Job = {
        hex,
        block,
        certificate: rootBguid && toHex(rootBguid) === hex ? certificate : null,
        phase: 'waiting',
        startAtMs: nowMs + rank * this.options.fallbackTimeoutMs,
        deadlineMs: 0,
        attempt: 0,
        rank,
        set: null,
        holders: new Map(),
        storedIndexes: new Set(),
        pending: new Map(),
        probing: new Set(),
        unresponsive: new Set(),
        sentCount: 0,
        requestIds: [],
      };
      this.jobs.set(hex, job);
      if (rank === 0) out.push(...this.storeMissing(job, nowMs));
    }
    return out;
  }

  pendingCount(): number {
    return this.jobs.size;
  }

  onMessage(from: string, message: ArchiveMessage, nowMs: number): Out[] {
    if (!('requestId' in message)) return [];
    const hex = this.jobOfRequest.get(message.requestId);
    const job = hex === undefined ? undefined : this.jobs.get(hex);
    if (!job) return [];
    if (message.type === 'probeReply' && job.probing.delete(from)) {
      this.jobOfRequest.delete(message.requestId);
      for (const h of message.held) {
        if (toHex(h.bguid) !== job.hex) continue;
        job.holders.set(from, (job.holders.get(from) ?? 0) + 1);
        if (job.set && toHex(h.fragmentRoot) === toHex(job.set.fragmentRoot)) job.storedIndexes.add(h.index);
      }
      return job.probing.size === 0 ? this.storeMissing(job, nowMs) : [];
    }
    if (message.type === 'receipt') {
      const pending = job.pending.get(message.requestId);
      if (!pending || pending.server !== from || !job.set) return [];
      const key = this.options.archiveServerKeys.get(from);
      const body = { bguid: job.block.bguid, fragmentRoot: job.set.fragmentRoot, index: pending.index };
      const signatureOk = this.options.verifyReceipts === false || (key !== undefined && verifyReceipt(this.options.crypto, key, body, message.signature));
      if (message.index !== pending.index || !bytesEqual(message.fragmentRoot, body.fragmentRoot) || !signatureOk) {
        this.counters.badReceipts++;
        return [];
      }
      job.pending.delete(message.requestId);
      this.jobOfRequest.delete(message.requestId);
      job.storedIndexes.add(pending.index);
      job.holders.set(from, (job.holders.get(from) ?? 0) + 1);
      return this.maybeDone(job);
    }
    return [];
  }

  onTick(nowMs: number): Out[] {
    const out: Out[] = [];
    for (const job of [...this.jobs.values()]) {
      if (job.phase === 'waiting' && nowMs >= job.startAtMs) out.push(...this.probe(job, nowMs));
      else if (job.phase === 'probing' && nowMs >= job.deadlineMs) {
        for (const s of job.probing) job.unresponsive.add(s);
        job.probing.clear();
        out.push(...this.storeMissing(job, nowMs));
      } else if (job.phase === 'storing' && nowMs >= job.deadlineMs) {
        for (const p of job.pending.values()) job.unresponsive.add(p.server);
        job.pending.clear();
        out.push(...this.storeMissing(job, nowMs));
      }
    }
    return out;
  }

  private request(job: Job, to: string, make: (requestId: number) => ArchiveMessage): Out {
    const requestId = this.nextRequestId++;
    this.jobOfRequest.set(requestId, job.hex);
    job.requestIds.push(requestId);
    return { kind: 'send', to, message: make(requestId) };
  }

  private probe(job: Job, nowMs: number): Out[] {
    job.phase = 'probing';
    job.deadlineMs = nowMs + this.options.storeTimeoutMs;
    job.set ??= this.encode(job);
    const n = this.options.k + this.options.m;
    const window = rankedServersOf(this.archiveRing, job.block.bguid).slice(0, 2 * n);
    return window.map((server) => {
      job.probing.add(server);
      return this.request(job, server, (requestId) => ({ type: 'probe', requestId, bguids: [job.block.bguid] }));
    });
  }

  private encode(job: Job): FragmentSet {
    return makeFragments(this.options.crypto, this.options.k, this.options.m, job.block.bguid, job.block.bytes);
  }

  /** Sends every fragment not yet known stored, to its home server or (after a failure) the next free one. */
  private storeMissing(job: Job, nowMs: number): Out[] {
    job.attempt++;
    const n = this.options.k + this.options.m;
    if (job.storedIndexes.size >= n) {
      this.counters.coveredByOther++;
      return this.finish(job, { kind: 'archived', bguid: job.block.bguid, receiptCount: 0, sentCount: job.sentCount });
    }
    if (job.attempt > this.options.attemptsMax) {
      return this.finish(job, { kind: 'incomplete', bguid: job.block.bguid, receiptCount: job.storedIndexes.size, reason: 'archive servers did not acknowledge' });
    }
    job.set ??= this.encode(job);
    job.phase = 'storing';
    job.deadlineMs = nowMs + this.options.storeTimeoutMs;
    const set = job.set;
    const home = placementOf(this.archiveRing, job.block.bguid, n);
    const usable = (s: string): boolean => !job.unresponsive.has(s);
    const assigned = new Map(job.holders);
    const out: Out[] = [];
    for (const fragment of set.fragments) {
      if (job.storedIndexes.has(fragment.index)) continue;
      const preferred = home[fragment.index]!;
      const target =
        usable(preferred) && (assigned.get(preferred) ?? 0) === 0
          ? preferred
          : repairTargetOf(this.archiveRing, job.block.bguid, usable, (s) => assigned.get(s) ?? 0);
      if (target === undefined) break;
      assigned.set(target, (assigned.get(target) ?? 0) + 1);
      job.sentCount++;
      const bytes = encodeFragment(fragment);
      out.push(
        this.request(job, target, (requestId) => {
          job.pending.set(requestId, { server: target, index: fragment.index });
          return { type: 'store', requestId, fragment: bytes, fragmentRoot: set.fragmentRoot, certificate: job.certificate };
        }),
      );
    }
    return [...out, ...this.maybeDone(job)];
  }

  private maybeDone(job: Job): Out[] {
    if (job.phase !== 'storing' || job.pending.size > 0) return [];
    if (job.storedIndexes.size < this.options.k + this.options.m) return [];
    this.counters.archived++;
    return this.finish(job, { kind: 'archived', bguid: job.block.bguid, receiptCount: job.storedIndexes.size, sentCount: job.sentCount });
  }

  private finish(job: Job, event: ArchiverOutput): Out[] {
    this.jobs.delete(job.hex);
    for (const id of job.requestIds) this.jobOfRequest.delete(id);
    return [{ kind: 'output', event }];
  }
}
