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
 *
 * Work is sliced so a host's event loop is never held for long: one step encodes at most
 * `stepBytesMax` of blocks (at least one block) and `ready()` tells the host more is waiting, and
 * no new block is encoded while `inFlightBytesMax` of encoded blocks still wait for receipts (that
 * also bounds memory and socket backlog for a huge version). With `blockBytesOf`, pending blocks
 * are kept in the store (`q/<bguid hex>`) and re-read from the ring's block store when encoded, so
 * a restarted archiver resumes them (probing first, like a fallback rank).
 */
import { assert } from '../core/assert.ts';
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import { forgetJob, keepJob, keptJobsOf, newJob, type Job } from './archiver-job.ts';
import type { ArchiverOptions, ArchiverOutput, BlockRefToArchive, BlockToArchive, VersionToArchive } from './archiver-types.ts';
import { encodeFragment, makeFragments } from './erasure/index.ts';
import { archiveLimits, type ArchiveMessage, type StoreItem } from './messages.ts';
import { placementOf, rankedServersOf, repairTargetOf, serverRingOf, type ServerRing } from './placement.ts';
import { verifyReceipt } from './receipt.ts';

type Out = Effect<ArchiveMessage, ArchiverOutput>;

/** Bytes of fragments in one store message: big enough to amortise a receipt signature, far below the frame limit. */
const storeBatchBytesMax = 8 * 2 ** 20;
/** Store attempts wait storeTimeoutMs, doubling per attempt up to this many times (× 16), so an outage is retried without flooding it. */
const storeBackoffDoublingsMax = 4;
/** Blocks named in one probe: each may come back with up to k + m held entries (archiveLimits.heldMax). */
const probeBguidsMax = 128;
/** A server's refusals are reported (a 'refused' output) at most once per this long: a misconfigured server refuses every store. */
export const refusalReportEveryMs = 60_000;

export class Archiver implements Machine<ArchiveMessage, ArchiverOutput> {
  private readonly self: string;
  private readonly store: KvStore;
  private ringRing: ServerRing;
  private readonly archiveRing: ServerRing;
  private readonly jobs = new Map<string, Job>();
  /** Jobs waiting to be encoded and stored, in arrival order. */
  private readonly readyQueue: Job[] = [];
  private readonly probes = new Map<number, { server: string; hexes: string[] }>();
  /** Store batches in flight: one message per destination server per step. */
  private readonly batches = new Map<number, { server: string; sentMs: number; planned: { job: Job; index: number }[] }>();
  /** Per archive server: refusals not reported yet, the latest reason, and when it was last reported. */
  private readonly refusals = new Map<string, { count: number; reason: string; reportedMs: number }>();
  private readonly outbox = new Map<string, { job: Job; index: number; item: StoreItem }[]>();
  private nextRequestId = 1;
  /** Blocks kept in the store by keepWaiting and not handed over yet. */
  private readonly keptWaiting = new Set<string>();
  /** Block bytes of jobs holding an encoded fragment set. */
  private inFlightBytes = 0;
  readonly counters = { started: 0, skipped: 0, archived: 0, coveredByOther: 0, badReceipts: 0, resumed: 0, encodedBytes: 0, steps: 0, bytesMissing: 0 };

  constructor(
    context: MachineContext,
    private readonly options: ArchiverOptions,
  ) {
    this.self = context.nodeId;
    this.store = context.store;
    this.ringRing = serverRingOf(options.ringServers);
    this.archiveRing = serverRingOf(options.archiveServers);
    if (options.blockBytesOf) this.resume(context.nowMs);
  }

  /**
   * A committed version's new blocks; `certificate` (encoded) goes beside the fragments of
   * `rootBguid`, the version's root block. Called by the ring core (or its host) once per version.
   */
  archive(blocks: readonly (BlockToArchive | BlockRefToArchive)[], rootBguid: Uint8Array | null, certificate: Uint8Array | null, nowMs: number): Out[] {
    return this.archiveAll([{ blocks, rootBguid, certificate }], nowMs);
  }

  /**
   * Several committed versions at once (a host that gathers them between ticks): their fragments
   * share one store message per archive server, so each server signs, and this archiver checks,
   * one receipt for all of them instead of one per version.
   */
  archiveAll(versions: readonly VersionToArchive[], nowMs: number): Out[] {
    for (const v of versions) this.admit(v.blocks, v.rootBguid, v.certificate, v.archivers, nowMs);
    return this.pump(nowMs);
  }

  private admit(
    blocks: readonly (BlockToArchive | BlockRefToArchive)[],
    rootBguid: Uint8Array | null,
    certificate: Uint8Array | null,
    archivers: readonly string[] | undefined,
    nowMs: number,
  ): void {
    const rootHex = rootBguid ? toHex(rootBguid) : null;
    const rate = this.options.fallbackBytesPerSecond;
    let bytesAhead = 0;
    for (const block of blocks) {
      const queuedMs = rate ? (bytesAhead / rate) * 1000 : 0;
      const bytes = 'bytes' in block ? block.bytes : null;
      const blockBytes = bytes ? bytes.length : (block as BlockRefToArchive).byteLength;
      bytesAhead += blockBytes;
      const hex = toHex(block.bguid);
      const keptWhileWaiting = this.keptWaiting.delete(hex);
      if (this.jobs.has(hex)) continue;
      const rank = this.rankOf(block.bguid, archivers);
      if (rank < 0) {
        // Kept while it waited to be handed over (keepWaiting) under a ring that ranked this server in.
        if (keptWhileWaiting) forgetJob(this.store, hex);
        this.counters.skipped++;
        continue;
      }
      this.counters.started++;
      const blockCertificate = rootHex === hex ? certificate : null;
      const keep = this.options.blockBytesOf !== undefined;
      assert(keep || bytes !== null, 'a block without bytes needs blockBytesOf to be archived');
      // Written once: already when it was queued (keepWaiting), else now.
      if (keep && !keptWhileWaiting) keepJob(this.store, hex, blockCertificate);
      const job = this.newJob(hex, block.bguid, keep ? null : bytes, blockBytes, blockCertificate, rank, this.fallbackStart(nowMs, rank, queuedMs));
      if (rank === 0) this.makeReady(job);
    }
  }

  /**
   * A version a host holds back before handing it over (SlicedArchiver's gather window): with
   * `blockBytesOf`, its blocks are kept in the store now, so a restart in the meantime resumes them
   * (probing first) instead of losing them from the archive.
   */
  keepWaiting(version: VersionToArchive): void {
    if (!this.options.blockBytesOf) return;
    const rootHex = version.rootBguid ? toHex(version.rootBguid) : null;
    for (const block of version.blocks) {
      const hex = toHex(block.bguid);
      if (this.jobs.has(hex) || this.keptWaiting.has(hex) || this.rankOf(block.bguid, version.archivers) < 0) continue;
      keepJob(this.store, hex, rootHex === hex ? version.certificate : null);
      this.keptWaiting.add(hex);
    }
  }

  /** True when encoding work is queued and not held back by the in-flight bound: step again soon. */
  ready(): boolean {
    return this.readyQueue.length > 0 && !this.windowFull();
  }

  /** One more slice of queued encoding (the host calls it while `ready()`). */
  continue(nowMs: number): Out[] {
    return this.pump(nowMs);
  }

  pendingCount(): number {
    return this.jobs.size;
  }

  /** Blocks past attemptsMax store attempts and still retrying (an archive outage, or servers refusing): for status and alerts. */
  stalledCount(): number {
    let count = 0;
    for (const job of this.jobs.values()) if (job.attempt > this.options.attemptsMax) count++;
    return count;
  }

  /** Block bytes coded and still waiting for receipts (bounded by inFlightBytesMax plus one step). */
  inFlightByteCount(): number {
    return this.inFlightBytes;
  }

  onMessage(from: string, message: ArchiveMessage, nowMs: number): Out[] {
    if (message.type === 'receipt' || message.type === 'refused') return [...this.onStoreReply(from, message, nowMs), ...this.pump(nowMs)];
    if (message.type !== 'probeReply') return [];
    const probe = this.probes.get(message.requestId);
    if (!probe || probe.server !== from) return [];
    this.probes.delete(message.requestId);
    const asked = new Set(probe.hexes);
    for (const h of message.held) {
      const hex = toHex(h.bguid);
      const job = asked.has(hex) ? this.jobs.get(hex) : undefined;
      if (!job || job.phase !== 'probing') continue;
      job.holders.set(from, (job.holders.get(from) ?? 0) + 1);
      job.probed.push({ server: from, rootHex: toHex(h.fragmentRoot), index: h.index });
    }
    for (const hex of probe.hexes) {
      const job = this.jobs.get(hex);
      if (job && job.phase === 'probing' && job.probing.delete(from) && job.probing.size === 0) this.makeReady(job);
    }
    return this.pump(nowMs);
  }

  onTick(nowMs: number): Out[] {
    const out: Out[] = [];
    const toProbe: Job[] = [];
    for (const job of this.jobs.values()) {
      if (job.phase === 'waiting' && nowMs >= job.startAtMs) toProbe.push(job);
      else if (job.phase === 'probing' && nowMs >= job.deadlineMs) {
        for (const s of job.probing) job.unresponsive.add(s);
        job.probing.clear();
        this.makeReady(job);
      } else if (job.phase === 'storing' && nowMs >= job.deadlineMs) {
        for (const p of job.pending.values()) job.unresponsive.add(p.server);
        job.pending.clear();
        out.push(...this.storeMissing(job, nowMs));
      }
    }
    out.push(...this.probe(toProbe, nowMs));
    for (const [id, batch] of this.batches) if (nowMs - batch.sentMs > 2 * this.options.storeTimeoutMs) this.batches.delete(id);
    for (const [id, probe] of this.probes) if (!probe.hexes.some((hex) => this.jobs.get(hex)?.phase === 'probing')) this.probes.delete(id);
    return [...out, ...this.pump(nowMs)];
  }

  /**
   * The ring's members changed (a re-signed descriptor): blocks are ranked over the new list from
   * now on, so a member that joined archives its share and one that left is no longer waited for.
   */
  setRingServers(ringServers: readonly string[]): void {
    this.ringRing = serverRingOf(ringServers);
  }

  /**
   * This server's rank for a block, or -1 when it is beyond fallbackRanksMax (someone else's): its
   * place in the block's rendezvous order of ring servers, with `archivers` (those handed the
   * block too) moved ahead of the rest.
   */
  rankOf(bguid: Uint8Array, archivers?: readonly string[]): number {
    let ranked = rankedServersOf(this.ringRing, bguid);
    if (archivers && archivers.length > 0) {
      const first = new Set(archivers);
      ranked = [...ranked.filter((s) => first.has(s)), ...ranked.filter((s) => !first.has(s))];
    }
    const rank = ranked.indexOf(this.self);
    return rank > this.options.fallbackRanksMax ? -1 : rank;
  }

  /** When rank `rank` starts on a block handed over now: rank 0 at once, later ranks on a step boundary after their delay. */
  private fallbackStart(nowMs: number, rank: number, queuedMs: number): number {
    if (rank === 0) return nowMs;
    const due = nowMs + rank * (this.options.fallbackTimeoutMs + queuedMs);
    const step = this.options.fallbackStartStepMs ?? 0;
    return step > 0 ? Math.ceil(due / step) * step : due;
  }

  private newJob(hex: string, bguid: Uint8Array, bytes: Uint8Array | null, blockBytes: number, certificate: Uint8Array | null, rank: number, startAtMs: number): Job {
    const job = newJob(hex, bguid, bytes, blockBytes, certificate, rank, startAtMs);
    this.jobs.set(hex, job);
    return job;
  }

  /** Jobs left in the store by a previous run: probe first (some fragments may have been stored), then finish. */
  private resume(nowMs: number): void {
    for (const kept of keptJobsOf(this.store)) {
      // A job was kept because this server ranked for the block when it came. A ring change since
      // (a re-signed descriptor) may rank it out now, and the block may have no archiver left
      // that ranks for it (the member that was rank 0 was replaced): it stays, as the last
      // fallback; it probes before storing, so a block someone else stored is not stored again.
      const ranked = this.rankOf(kept.bguid);
      const rank = ranked < 0 ? this.options.fallbackRanksMax : ranked;
      this.counters.resumed++;
      this.newJob(kept.hex, kept.bguid, null, 0, kept.certificate, rank, nowMs + rank * this.options.fallbackTimeoutMs);
    }
  }

  private makeReady(job: Job): void {
    job.phase = 'ready';
    this.readyQueue.push(job);
  }

  private windowFull(): boolean {
    return this.inFlightBytes >= (this.options.inFlightBytesMax ?? Infinity);
  }

  /** Encodes and stores queued jobs until this step's byte budget or the in-flight bound is reached. */
  private pump(nowMs: number): Out[] {
    const out: Out[] = [];
    let budget = this.options.stepBytesMax ?? Infinity;
    let first = true;
    this.counters.steps++;
    while (this.readyQueue.length > 0 && (first || budget > 0) && !this.windowFull()) {
      const job = this.readyQueue.shift()!;
      if (this.jobs.get(job.hex) !== job || job.phase !== 'ready') continue;
      first = false;
      const before = this.counters.encodedBytes;
      out.push(...this.storeMissing(job, nowMs));
      budget -= Math.max(1, this.counters.encodedBytes - before);
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
        this.batches.set(requestId, { server, sentMs: nowMs, planned: chunk.map((p) => ({ job: p.job, index: p.index })) });
        for (const p of chunk) p.job.pending.set(p.index, { server, requestId });
        out.push({ kind: 'send', to: server, message: { type: 'store', requestId, items: chunk.map((p) => p.item) } });
      }
    }
    this.outbox.clear();
    return out;
  }

  /**
   * A receipt covers a whole batch: each item settles the fragment it names, if still pending
   * there. A `refused` reply, or an item the receipt leaves out, is a refusal: that server is not
   * asked again this attempt and the fragment goes to the next one now. A refusal used to be
   * dropped, so the fragment waited out storeTimeoutMs and every server refusing (another
   * config.erasure) looked like an outage (second review, finding 1).
   */
  private onStoreReply(from: string, message: Extract<ArchiveMessage, { type: 'receipt' | 'refused' }>, nowMs: number): Out[] {
    const batch = this.batches.get(message.requestId);
    if (!batch || batch.server !== from) return [];
    this.batches.delete(message.requestId);
    if (message.type === 'refused') return this.onRefused(from, batch.planned, message.requestId, message.reason, nowMs);
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
    const out = this.onRefused(from, batch.planned, message.requestId, 'left out of its receipt (refused)', nowMs);
    return [...out, ...[...touched].flatMap((job) => this.maybeDone(job))];
  }

  /** Re-places every fragment of `planned` still pending on `requestId` at `from`, which refused it. */
  private onRefused(from: string, planned: readonly { job: Job; index: number }[], requestId: number, reason: string, nowMs: number): Out[] {
    const touched = new Set<Job>();
    for (const { job, index } of planned) {
      if (this.jobs.get(job.hex) !== job || job.pending.get(index)?.requestId !== requestId) continue;
      job.pending.delete(index);
      job.unresponsive.add(from);
      job.refusal = `${from}: ${reason}`;
      touched.add(job);
    }
    if (touched.size === 0) return [];
    // Sent with the next flush (the caller pumps); none left to ask: the job waits for its deadline.
    for (const job of touched) if (job.phase === 'storing') this.planStores(job);
    return this.reportRefusal(from, reason, touched.size, nowMs);
  }

  /** Counts refusals per server and reports them at most once per refusalReportEveryMs. */
  private reportRefusal(server: string, reason: string, count: number, nowMs: number): Out[] {
    let r = this.refusals.get(server);
    if (!r) this.refusals.set(server, (r = { count: 0, reason, reportedMs: -Infinity }));
    r.count += count;
    r.reason = reason;
    if (nowMs - r.reportedMs < refusalReportEveryMs) return [];
    const event: ArchiverOutput = { kind: 'refused', server, count: r.count, reason };
    r.count = 0;
    r.reportedMs = nowMs;
    return [{ kind: 'output', event }];
  }

  /** One probe per archive server for every job starting now (each asks its block's placement window). */
  private probe(jobs: Job[], nowMs: number): Out[] {
    const perServer = new Map<string, Job[]>();
    const n = this.options.k + this.options.m;
    for (const job of jobs) {
      job.phase = 'probing';
      job.deadlineMs = nowMs + this.options.storeTimeoutMs;
      for (const server of rankedServersOf(this.archiveRing, job.bguid).slice(0, 2 * n)) {
        job.probing.add(server);
        let list = perServer.get(server);
        if (!list) perServer.set(server, (list = []));
        list.push(job);
      }
    }
    const out: Out[] = [];
    for (const [server, list] of perServer) {
      for (let at = 0; at < list.length; at += probeBguidsMax) {
        const chunk = list.slice(at, at + probeBguidsMax);
        const requestId = this.nextRequestId++;
        this.probes.set(requestId, { server, hexes: chunk.map((j) => j.hex) });
        out.push({ kind: 'send', to: server, message: { type: 'probe', requestId, bguids: chunk.map((j) => j.bguid) } });
      }
    }
    return out;
  }

  /** Encodes a job's block (once), learning which probed fragments are genuine. False if its bytes are gone. */
  private encode(job: Job): boolean {
    if (job.set) return true;
    const bytes = job.bytes ?? this.options.blockBytesOf?.(job.bguid);
    if (!bytes) return false;
    job.blockBytes = bytes.length;
    job.set = makeFragments(this.options.crypto, this.options.k, this.options.m, job.bguid, bytes);
    job.bytes = null;
    this.counters.encodedBytes += bytes.length;
    this.inFlightBytes += job.blockBytes;
    this.takeProbed(job, toHex(job.set.fragmentRoot));
    return true;
  }

  /**
   * Probe replies are unsigned claims: one server claiming every index once made a fallback (or
   * restarted) archiver report a block archived with no receipt and forget it. A server's claims
   * under the genuine root now count for at most its share of the placement (the indices placed
   * on it, at least one), its own indices first: a faulty server can then misstate only what it
   * would hold anyway, no worse than losing it, which the code's m parity fragments absorb.
   */
  private takeProbed(job: Job, genuineHex: string): void {
    const home = placementOf(this.archiveRing, job.bguid, this.options.k + this.options.m);
    const claims = new Map<string, Set<number>>();
    for (const p of job.probed) {
      if (p.rootHex !== genuineHex || p.index >= home.length) continue;
      let indexes = claims.get(p.server);
      if (!indexes) claims.set(p.server, (indexes = new Set()));
      indexes.add(p.index);
    }
    for (const [server, indexes] of claims) {
      const own = [...indexes].filter((i) => home[i] === server);
      const share = Math.max(1, home.filter((s) => s === server).length);
      for (const index of [...own, ...[...indexes].filter((i) => home[i] !== server)].slice(0, share)) job.storedIndexes.add(index);
    }
    job.probed = [];
  }

  /** Sends every fragment not yet known stored, to its home server or (after a failure) the next free one. */
  private storeMissing(job: Job, nowMs: number): Out[] {
    job.attempt++;
    const n = this.options.k + this.options.m;
    if (!this.encode(job)) {
      // Right after a restart the ring's block store may not be open yet: look again later.
      this.counters.bytesMissing++;
      if (job.attempt > this.options.attemptsMax) {
        return this.finish(job, { kind: 'incomplete', bguid: job.bguid, receiptCount: 0, reason: 'block bytes not in the block store' });
      }
      job.phase = 'waiting';
      job.startAtMs = nowMs + this.options.fallbackTimeoutMs;
      job.probing.clear();
      return [];
    }
    if (job.storedIndexes.size >= n) {
      this.counters.coveredByOther++;
      return this.finish(job, { kind: 'archived', bguid: job.bguid, receiptCount: 0, sentCount: job.sentCount });
    }
    // A block is never given up while its bytes are here: an archive outage longer than a few
    // attempts used to end the job and delete its queue entry, losing a certified block from the
    // archive for good. Past attemptsMax it is reported once (stalledCount() counts it) and
    // retried with the wait doubling up to storeBackoffDoublingsMax times.
    const out: Out[] = [];
    if (job.attempt === this.options.attemptsMax + 1) {
      const reason = job.refusal === null ? 'archive servers did not acknowledge; still retrying' : `archive servers refused (latest ${job.refusal}); still retrying`;
      out.push({ kind: 'output', event: { kind: 'incomplete', bguid: job.bguid, receiptCount: job.storedIndexes.size, reason } });
    }
    job.phase = 'storing';
    job.deadlineMs = nowMs + this.options.storeTimeoutMs * 2 ** Math.min(job.attempt - 1, storeBackoffDoublingsMax);
    let planned = this.planStores(job);
    if (planned === 0 && job.unresponsive.size > 0) {
      // Every server was marked unresponsive: the marks expire and this attempt asks them all again.
      job.unresponsive.clear();
      planned = this.planStores(job);
    }
    // Nothing could be sent: wait for the deadline and try again.
    return planned === 0 ? out : [...out, ...this.maybeDone(job)];
  }

  /** Plans a store of every fragment neither known stored nor in flight: to its home server or (after a failure) the next free one. */
  private planStores(job: Job): number {
    const n = this.options.k + this.options.m;
    const set = job.set!;
    const home = placementOf(this.archiveRing, job.bguid, n);
    const usable = (s: string): boolean => !job.unresponsive.has(s);
    const assigned = new Map(job.holders);
    // Fragments still in flight (a refused one is re-placed while the others wait) count where they went.
    for (const p of job.pending.values()) assigned.set(p.server, (assigned.get(p.server) ?? 0) + 1);
    let planned = 0;
    for (const fragment of set.fragments) {
      if (job.storedIndexes.has(fragment.index) || job.pending.has(fragment.index)) continue;
      const preferred = home[fragment.index]!;
      const target =
        usable(preferred) && (assigned.get(preferred) ?? 0) === 0
          ? preferred
          : repairTargetOf(this.archiveRing, job.bguid, usable, (s) => assigned.get(s) ?? 0);
      if (target === undefined) break;
      assigned.set(target, (assigned.get(target) ?? 0) + 1);
      job.sentCount++;
      planned++;
      let queue = this.outbox.get(target);
      if (!queue) this.outbox.set(target, (queue = []));
      queue.push({ job, index: fragment.index, item: { fragment: encodeFragment(fragment), fragmentRoot: set.fragmentRoot, certificate: job.certificate } });
    }
    return planned;
  }

  private maybeDone(job: Job): Out[] {
    if (job.phase !== 'storing' || job.pending.size > 0) return [];
    if (job.storedIndexes.size < this.options.k + this.options.m) return [];
    this.counters.archived++;
    return this.finish(job, { kind: 'archived', bguid: job.bguid, receiptCount: job.storedIndexes.size, sentCount: job.sentCount });
  }

  private finish(job: Job, event: ArchiverOutput): Out[] {
    this.jobs.delete(job.hex);
    if (job.set) this.inFlightBytes -= job.blockBytes;
    job.set = null;
    if (this.options.blockBytesOf) forgetJob(this.store, job.hex);
    return [{ kind: 'output', event }];
  }
}
