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
import { archiveLimits, type ArchiveMessage, type StoreItem } from './messages.ts';
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
  /** Fragment index -> where it was sent and in which store batch. */
  pending: Map<number, { server: string; requestId: number }>;
  probing: Set<string>;
  unresponsive: Set<string>;
  sentCount: number;
  requestIds: number[];
}

type Out = Effect<ArchiveMessage, ArchiverOutput>;

/** Bytes of fragments in one store message: big enough to amortise a receipt signature, far below the frame limit. */
const storeBatchBytesMax = 8 * 2 ** 20;

export class Archiver implements Machine<ArchiveMessage, ArchiverOutput> {
  private readonly self: string;
  private readonly ringRing: ServerRing;
  private readonly archiveRing: ServerRing;
  private readonly jobs = new Map<string, Job>();
  private readonly jobOfRequest = new Map<number, string>();
  /** Store batches in flight: one message per destination server per step. */
  private readonly batches = new Map<number, { server: string; sentMs: number }>();
  private readonly outbox = new Map<string, { job: Job; index: number; item: StoreItem }[]>();
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
    return [...out, ...this.flushOutbox(nowMs)];
  }

  /** One store message per destination for everything planned in this step, split to respect the message limits. */
  private flushOutbox(nowMs: number): Out[] {
    const out: Out[] = [];
    for (const [server, planned] of this.outbox) {
      let at = 0;
      while (at < planned.length) {
        let bytes = 0;
        const chunk: typeof planned = [];
        while (at < planned.length && chunk.length < archiveLimits.storeItemsMax && bytes < storeBatchBytesMax) {
          const p = planned[at++]!;
          chunk.push(p);
          bytes += p.item.fragment.length + (p.item.certificate?.length ?? 0);
        }
        const requestId = this.nextRequestId++;
        this.batches.set(requestId, { server, sentMs: nowMs });
        for (const p of chunk) p.job.pending.set(p.index, { server, requestId });
        out.push({ kind: 'send', to: server, message: { type: 'store', requestId, items: chunk.map((p) => p.item) } });
      }
    }
    this.outbox.clear();
    return out;
  }

  pendingCount(): number {
    return this.jobs.size;
  }

  onMessage(from: string, message: ArchiveMessage, nowMs: number): Out[] {
    if (message.type === 'receipt' || message.type === 'refused') return [...this.onStoreReply(from, message), ...this.flushOutbox(nowMs)];
    if (message.type !== 'probeReply') return [];
    const hex = this.jobOfRequest.get(message.requestId);
    const job = hex === undefined ? undefined : this.jobs.get(hex);
    if (!job || !job.probing.delete(from)) return [];
    this.jobOfRequest.delete(message.requestId);
    for (const h of message.held) {
      if (toHex(h.bguid) !== job.hex) continue;
      job.holders.set(from, (job.holders.get(from) ?? 0) + 1);
      if (job.set && toHex(h.fragmentRoot) === toHex(job.set.fragmentRoot)) job.storedIndexes.add(h.index);
    }
    return job.probing.size === 0 ? [...this.storeMissing(job, nowMs), ...this.flushOutbox(nowMs)] : [];
  }

  /** A receipt covers a whole batch: each item settles the fragment it names, if still pending there. */
  private onStoreReply(from: string, message: Extract<ArchiveMessage, { type: 'receipt' | 'refused' }>): Out[] {
    const batch = this.batches.get(message.requestId);
    if (!batch || batch.server !== from) return [];
    this.batches.delete(message.requestId);
    if (message.type === 'refused') return [];
    const key = this.options.archiveServerKeys.get(from);
    if (this.options.verifyReceipts !== false && (key === undefined || !verifyReceipt(this.options.crypto, key, message.items, message.signature))) {
      this.counters.badReceipts++;
      return [];
    }
    const touched = new Set<Job>();
    for (const item of message.items) {
      const job = this.jobs.get(toHex(item.bguid));
      const pending = job?.pending.get(item.index);
      if (!job || !pending || pending.requestId !== message.requestId || !job.set || !bytesEqual(item.fragmentRoot, job.set.fragmentRoot)) continue;
      job.pending.delete(item.index);
      job.storedIndexes.add(item.index);
      job.holders.set(from, (job.holders.get(from) ?? 0) + 1);
      touched.add(job);
    }
    return [...touched].flatMap((job) => this.maybeDone(job));
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
    for (const [id, batch] of this.batches) if (nowMs - batch.sentMs > 2 * this.options.storeTimeoutMs) this.batches.delete(id);
    return [...out, ...this.flushOutbox(nowMs)];
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
    let planned = 0;
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
      planned++;
      let queue = this.outbox.get(target);
      if (!queue) this.outbox.set(target, (queue = []));
      queue.push({ job, index: fragment.index, item: { fragment: encodeFragment(fragment), fragmentRoot: set.fragmentRoot, certificate: job.certificate } });
    }
    // Nothing could be sent (every server unresponsive): wait for the deadline and try again.
    return planned === 0 ? [] : this.maybeDone(job);
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
