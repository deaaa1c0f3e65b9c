/**
 * Repair, run by every archive server on its share of the blocks (Flat Datacenter Storage, OSDI
 * 2012, section 3.3: recovery is spread over all servers so it finishes faster as servers are
 * added). Pond (FAST 2003) left repair out; this is ours.
 *
 * A block is queued (durably, key r/q/<bguid>) when this server finds one of its fragments corrupt,
 * or when a peer is lost and the block's placement window includes that peer. For each queued block:
 *   1. census: probe the live servers of the block's window (top n + windowExtra of its ranking,
 *      n = k + m of the configured code) for what they hold; group by fragment root and pick the
 *      root this server once decoded to the block (r/v/<bguid>), else the one most indices agree on;
 *   2. on a peer loss, only the best-ranked live holder coordinates (every holder was triggered,
 *      exactly one acts: that is what spreads the work); on corruption the finder coordinates;
 *   3. if fewer than n = k + m distinct indices are live, fetch from the holders until k verified
 *      fragments are in, decode, check the block against its BGUID, re-encode, and store each
 *      missing fragment on the best-ranked live server holding nothing of the block (placement.ts);
 *   4. done when every store is acknowledged by a receipt; a timeout restarts at the census, and
 *      after attemptsMax attempts the block is reported unrepairable (key r/failed/<bguid>).
 * Progress is the durable queue: after a crash the host rebuilds the server and the queue resumes.
 */
import { assert } from '../core/assert.ts';
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import type { Effect } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import { bguidOf, blockKinds } from '../core/version/block.ts';
import { decodeFragment, encodeFragment, makeFragments, recoverBlock, verifyFragment, type FragmentRecord } from './erasure/index.ts';
import type { ArchiveOutput } from './archive-server.ts';
import type { CertificateCheck } from './certificate-check.ts';
import type { Coding, FragmentStore, PutResult } from './fragment-store.ts';
import type { ArchiveMessage, HeldFragment } from './messages.ts';
import { placementOf, rankBelowOf, rankedServersOf, repairTargetOf, type ServerRing } from './placement.ts';

export interface RepairOptions {
  /** Blocks repaired at once by this server. */
  concurrencyMax: number;
  /** Deadline of each phase (census, fetch, store). */
  phaseTimeoutMs: number;
  attemptsMax: number;
  /** Servers past the first n of a block's ranking that may hold its repaired fragments. */
  windowExtra: number;
  /** Blocks a pass over this server's store after a peer loss looks at per tick (no hashing: a placement check each). */
  sweepPerTickMax: number;
}

export const defaultRepairOptions: RepairOptions = { concurrencyMax: 8, phaseTimeoutMs: 2_000, attemptsMax: 5, windowExtra: 8, sweepPerTickMax: 4_096 };

/** 'recheck': a later pass over a lost peer's blocks, where every holder acts (no coordinator). */
export type RepairReason = 'corrupt' | 'peer-lost' | 'recheck' | 'manual';

interface RepairerContext {
  self: string;
  store: KvStore;
  fragments: FragmentStore;
  crypto: Crypto;
  ring: ServerRing;
  isLive: (server: string) => boolean;
  storeLocally: (bytes: Uint8Array, fragmentRoot: Uint8Array, certificate: Uint8Array | null) => PutResult;
  /** The cluster's erasure code: a block's width n = k + m comes from here, never from a stored record. */
  coding: Coding;
  /** The server's certificate check (ArchiveServerOptions.certificateCheck): a peer's certificate is used only if it passes. */
  certificateCheck?: CertificateCheck;
  options: RepairOptions;
}

interface Job {
  hex: string;
  bguid: Uint8Array;
  reason: RepairReason;
  phase: 'census' | 'fetch' | 'store';
  attempt: number;
  deadlineMs: number;
  window: string[];
  awaiting: Set<string>;
  census: Map<string, HeldFragment[]>;
  root: Uint8Array | null;
  /** Roots not tried yet, best first: one that does not decode to the block gives way to the next. */
  candidates: string[];
  records: Map<number, FragmentRecord>;
  /** This attempt: the most fragments any root gave, and whether a census or fetch phase ended on its deadline (someone did not answer). */
  mostLive: number;
  silent: boolean;
  certificate: Uint8Array | null;
  /** Store requests awaiting a receipt: where each went, which fragment, and its bytes (to re-place it if refused). */
  stores: Map<number, { server: string; index: number; bytes: Uint8Array }>;
  /** This attempt: fragments per live server (census, plus what this attempt placed), for choosing targets. */
  heldCount: Map<string, number>;
  /**
   * Servers that refused a store of this block, with their reason, for the job's life: not asked
   * again, and the reason goes into an unrepairable report. A refused store used to be ignored, so
   * the phase ran to its deadline and the next census chose the same target (repairTargetOf is
   * deterministic): one server with another config.erasure stopped repair of every block it was
   * the target for, reported only as "gave up after 5 attempts" (second review, finding 1).
   */
  refusedBy: Map<string, string>;
  targets: string[];
  repairedIndexes: number[];
}

type Out = Effect<ArchiveMessage, ArchiveOutput>;
const queuePrefix = 'r/q/';
const failedPrefix = 'r/failed/';
/** r/v/<bguid hex> -> the fragment root this server decoded the block from (checked against its BGUID). */
const verifiedPrefix = 'r/v/';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Repairer {
  private readonly jobs = new Map<string, Job>();
  private readonly jobOfRequest = new Map<number, string>();
  private nextRequestId = 1;
  readonly counters = { repairedFragments: 0, repairedBlocks: 0, deferred: 0, alreadyHealthy: 0 };

  /** Mirror of the durable queue's keys (BGUID hex), so a tick does not rescan the store. */
  private readonly queued = new Set<string>();
  /** Lost peers (ring index -> reason) whose blocks the next pass over the store queues. */
  private readonly sweepWaiting = new Map<number, 'peer-lost' | 'recheck'>();
  /** The pass under way: a snapshot of the blocks held, how far it got, and the peers it is for. */
  private sweep: { blocks: string[]; at: number; peers: Map<number, 'peer-lost' | 'recheck'> } | null = null;

  constructor(private readonly c: RepairerContext) {
    for (const key of c.store.keys(queuePrefix)) this.queued.add(key.slice(queuePrefix.length));
  }

  /** Queues a block durably; a block already queued keeps its first reason. A block reported
   * unrepairable before is tried again (its failure may have been timeouts on a busy network). */
  enqueue(bguid: Uint8Array, reason: RepairReason): void {
    const hex = toHex(bguid);
    if (this.queued.has(hex)) return;
    this.c.store.delete(failedPrefix + hex);
    this.c.store.put(queuePrefix + hex, encoder.encode(reason));
    this.queued.add(hex);
  }

  /**
   * Queues every block this server holds whose placement window includes `peer`. The host calls it
   * when the peer is lost and again a few times later ('recheck'), because a pass can end with a
   * block still short of a fragment: a coordinator's attempts all timed out on a lossy network, or
   * holders deferred to one another from census views taken at different times. The work is done
   * by a pass over the store on later ticks, `sweepPerTickMax` blocks a tick, one pass for every
   * peer lost meanwhile: it used to walk every key and decode and hash one record per block in the
   * calling tick, once per lost peer (~3 s per GiB held per peer; session-20 review, finding 4).
   */
  onPeerLost(peer: string, reason: 'peer-lost' | 'recheck' = 'peer-lost'): void {
    const peerIndex = this.c.ring.servers.indexOf(peer);
    if (peerIndex < 0) return;
    // A coordinated pass ('peer-lost') and a recheck of one peer waiting together: the pass does both.
    if (this.sweepWaiting.get(peerIndex) !== 'peer-lost') this.sweepWaiting.set(peerIndex, reason);
  }

  /** Whether a pass over the store is under way or waiting (its blocks are not all queued yet). */
  sweeping(): boolean {
    return this.sweep !== null || this.sweepWaiting.size > 0;
  }

  /** Looks at up to sweepPerTickMax more blocks of the pass under way (starting one for the peers waiting if none is). */
  private sweepStep(): void {
    if (this.sweep === null) {
      if (this.sweepWaiting.size === 0) return;
      this.sweep = { blocks: this.c.fragments.blockHexes(), at: 0, peers: new Map(this.sweepWaiting) };
      this.sweepWaiting.clear();
    }
    const sweep = this.sweep;
    const limit = this.width() + this.c.options.windowExtra;
    const end = Math.min(sweep.blocks.length, sweep.at + this.c.options.sweepPerTickMax);
    for (; sweep.at < end; sweep.at++) {
      const bguid = fromHex(sweep.blocks[sweep.at]!);
      let reason: RepairReason | undefined;
      for (const [peerIndex, r] of sweep.peers) {
        if ((reason === undefined || r === 'peer-lost') && rankBelowOf(this.c.ring, bguid, peerIndex, limit) >= 0) reason = r;
      }
      if (reason !== undefined) this.enqueue(bguid, reason);
    }
    if (sweep.at >= sweep.blocks.length) this.sweep = null;
  }

  /** The root this server once decoded `bguid` from, if any. */
  verifiedRootOf(bguid: Uint8Array): Uint8Array | undefined {
    return this.c.store.get(verifiedPrefix + toHex(bguid));
  }

  queuedCount(): number {
    return this.queued.size;
  }

  failedCount(): number {
    return this.c.store.keys(failedPrefix).length;
  }

  /** Blocks reported unrepairable, with the reason. */
  failures(): { bguid: Uint8Array; reason: string }[] {
    return this.c.store.keys(failedPrefix).map((k) => ({ bguid: fromHex(k.slice(failedPrefix.length)), reason: decoder.decode(this.c.store.get(k)!) }));
  }

  onTick(nowMs: number): Out[] {
    this.sweepStep();
    const out: Out[] = [];
    for (const job of [...this.jobs.values()]) if (nowMs >= job.deadlineMs) out.push(...this.advance(job, nowMs, true));
    if (this.jobs.size < this.c.options.concurrencyMax) {
      for (const hex of this.queued) {
        if (this.jobs.size >= this.c.options.concurrencyMax) break;
        if (this.jobs.has(hex)) continue;
        const reason = decoder.decode(this.c.store.get(queuePrefix + hex)!) as RepairReason;
        out.push(...this.startCensus(this.newJob(hex, reason), nowMs));
      }
    }
    return out;
  }

  onReply(from: string, message: ArchiveMessage, nowMs: number): Out[] {
    if (!('requestId' in message)) return [];
    const hex = this.jobOfRequest.get(message.requestId);
    const job = hex === undefined ? undefined : this.jobs.get(hex);
    if (!job || !job.awaiting.has(`${from}#${message.requestId}`)) return [];
    job.awaiting.delete(`${from}#${message.requestId}`);
    this.jobOfRequest.delete(message.requestId);
    if (message.type === 'probeReply' && job.phase === 'census') {
      job.census.set(from, message.held.filter((h) => toHex(h.bguid) === job.hex));
    } else if (message.type === 'fetchReply' && job.phase === 'fetch') {
      for (const b of message.blocks) if (toHex(b.bguid) === job.hex) this.takeFragments(job, b.fragments, b.certificate);
    } else if (message.type === 'receipt' && job.phase === 'store') {
      const store = job.stores.get(message.requestId);
      const root = job.root;
      if (store && root && message.items.some((i) => i.index === store.index && toHex(i.fragmentRoot) === toHex(root) && toHex(i.bguid) === job.hex)) {
        job.stores.delete(message.requestId);
      }
    } else if (message.type === 'refused' && job.phase === 'store') {
      const store = job.stores.get(message.requestId);
      if (store) {
        job.stores.delete(message.requestId);
        job.refusedBy.set(from, message.reason);
        const placed = this.place(job, store.index, store.bytes);
        if (placed === undefined) return this.fail(job, `no live archive server accepted fragment ${store.index}${refusalsOf(job)}`);
        return [...placed, ...this.advance(job, nowMs, false)];
      }
    }
    return this.advance(job, nowMs, false);
  }

  private newJob(hex: string, reason: RepairReason): Job {
    const job: Job = {
      hex,
      bguid: fromHex(hex),
      reason,
      phase: 'census',
      attempt: 0,
      deadlineMs: 0,
      window: [],
      awaiting: new Set(),
      census: new Map(),
      root: null,
      candidates: [],
      records: new Map(),
      mostLive: 0,
      silent: false,
      certificate: null,
      stores: new Map(),
      heldCount: new Map(),
      refusedBy: new Map(),
      targets: [],
      repairedIndexes: [],
    };
    this.jobs.set(hex, job);
    return job;
  }

  private request(job: Job, to: string, make: (requestId: number) => ArchiveMessage): Out {
    const requestId = this.nextRequestId++;
    this.jobOfRequest.set(requestId, job.hex);
    job.awaiting.add(`${to}#${requestId}`);
    return { kind: 'send', to, message: make(requestId) };
  }

  private startCensus(job: Job, nowMs: number): Out[] {
    job.attempt++;
    if (job.attempt > this.c.options.attemptsMax) return this.fail(job, `gave up after ${this.c.options.attemptsMax} attempts${refusalsOf(job)}`);
    job.phase = 'census';
    job.awaiting.clear();
    job.census = new Map([[this.c.self, this.c.fragments.heldOf(job.bguid)]]);
    job.records.clear();
    job.mostLive = 0;
    job.silent = false;
    job.stores.clear();
    job.root = null;
    job.deadlineMs = nowMs + this.c.options.phaseTimeoutMs;
    job.window = rankedServersOf(this.c.ring, job.bguid).slice(0, this.width() + this.c.options.windowExtra);
    const out: Out[] = [];
    for (const server of job.window) {
      if (server === this.c.self || !this.c.isLive(server)) continue;
      out.push(this.request(job, server, (requestId) => ({ type: 'probe', requestId, bguids: [job.bguid] })));
    }
    return [...out, ...this.advance(job, nowMs, false)];
  }

  /** Moves a job on when its phase has all it waits for (or timed out). */
  private advance(job: Job, nowMs: number, timedOut: boolean): Out[] {
    if (job.phase === 'census' && (job.awaiting.size === 0 || timedOut)) {
      job.silent ||= job.awaiting.size > 0;
      return this.afterCensus(job, nowMs);
    }
    // Every holder's reply is awaited (not just the first k fragments): what they return, verified,
    // is what counts as live, where their probe replies are only claims.
    if (job.phase === 'fetch' && (job.awaiting.size === 0 || timedOut)) {
      if (this.enoughRecords(job)) return this.rebuildAndStore(job, nowMs);
      job.mostLive = Math.max(job.mostLive, job.records.size);
      job.silent ||= job.awaiting.size > 0;
      return this.nextRoot(job, nowMs);
    }
    if (job.phase === 'store') {
      if (job.stores.size === 0) return this.finish(job, true);
      if (timedOut) return this.startCensus(job, nowMs);
    }
    return [];
  }

  /**
   * Probe replies are claims, not evidence: a faulty server can claim every index. So a server's
   * claims count for at most `cap` indices per root (what placement puts on one server), which
   * root to try first is chosen on those capped counts (a root this server once decoded to the
   * block first), and a block is called healthy without fetching only on claims from its home
   * servers (and this server's own store) under a root this server once decoded to the block:
   * holding all k + m fragments of some root proves nothing, since a writer can store a junk
   * encoding of the configured shape beside every block (session-20 review, finding 2). Anything
   * short goes to the fetch phase, where what the holders return, verified, decides what is live.
   */
  private afterCensus(job: Job, nowMs: number): Out[] {
    const width = this.width();
    const cap = Math.max(1, Math.ceil(width / this.c.ring.servers.length));
    const byRoot = this.claimsOf(job, cap);
    const verifiedHex = toHex(this.verifiedRootOf(job.bguid) ?? new Uint8Array(0));
    const ranked = [...byRoot.entries()].sort(
      (a, b) => Number(b[0] === verifiedHex) - Number(a[0] === verifiedHex) || b[1].size - a[1].size || (a[0] < b[0] ? -1 : 1),
    );
    if (ranked.length === 0) return this.fail(job, 'no live server holds any fragment of the block');
    const best = ranked[0]!;
    job.root = fromHex(best[0]);
    job.candidates = ranked.slice(1).map(([rootHex]) => rootHex);
    if (job.reason === 'peer-lost') {
      const coordinator = job.window.find((s) => this.c.isLive(s) && [...best[1].values()].includes(s));
      if (coordinator !== this.c.self) {
        this.counters.deferred++;
        return this.finish(job, false);
      }
    }
    if (best[0] === verifiedHex) {
      const home = new Set([...placementOf(this.c.ring, job.bguid, width), this.c.self]);
      if ((this.claimsOf(job, cap, home).get(best[0])?.size ?? 0) >= width) {
        this.counters.alreadyHealthy++;
        return this.finish(job, false);
      }
    }
    return this.startFetch(job, nowMs);
  }

  /** Index -> first claimant, per root, counting at most `cap` indices per root from each live peer (this server's own store uncapped). */
  private claimsOf(job: Job, cap: number, only?: ReadonlySet<string>): Map<string, Map<number, string>> {
    const byRoot = new Map<string, Map<number, string>>();
    for (const [server, held] of job.census) {
      if (!this.c.isLive(server) || (only && !only.has(server))) continue;
      const claimed = new Map<string, Set<number>>();
      for (const h of held) {
        const rootHex = toHex(h.fragmentRoot);
        let mine = claimed.get(rootHex);
        if (!mine) claimed.set(rootHex, (mine = new Set()));
        if (mine.has(h.index) || (server !== this.c.self && mine.size >= cap)) continue;
        mine.add(h.index);
        let indexes = byRoot.get(rootHex);
        if (!indexes) byRoot.set(rootHex, (indexes = new Map()));
        if (!indexes.has(h.index)) indexes.set(h.index, server);
      }
    }
    return byRoot;
  }

  /** Fetches the block from every live server that claims something under `job.root` (and reads this server's own copy). */
  private startFetch(job: Job, nowMs: number): Out[] {
    const rootHex = toHex(job.root!);
    job.phase = 'fetch';
    job.deadlineMs = nowMs + this.c.options.phaseTimeoutMs;
    job.awaiting.clear();
    job.records.clear();
    for (const f of this.c.fragments.read(job.bguid).fragments) this.takeFragments(job, [f.bytes], this.c.fragments.certificateOf(job.bguid));
    const out: Out[] = [];
    for (const [server, held] of job.census) {
      if (server === this.c.self || !this.c.isLive(server) || !held.some((h) => toHex(h.fragmentRoot) === rootHex)) continue;
      out.push(this.request(job, server, (requestId) => ({ type: 'fetch', requestId, bguids: [job.bguid] })));
    }
    return [...out, ...this.advance(job, nowMs, false)];
  }

  /** The next candidate root after one that could not be fetched or decoded; back to the census when none is left. */
  private nextRoot(job: Job, nowMs: number, failure?: string): Out[] {
    const next = job.candidates.shift();
    if (next !== undefined) {
      job.root = fromHex(next);
      return this.startFetch(job, nowMs);
    }
    // Someone did not answer this attempt: try again, whatever the last root tried gave. A junk
    // root tried after a remembered root whose holders were slow failed the block for good with
    // the junk's decode error (second review, finding 4).
    if (job.silent) return this.startCensus(job, nowMs);
    // Every holder answered and no root has k fragments: another attempt would find the same, and
    // said only "gave up after 5 attempts" (session-20 review, finding 8a). A later pass over a lost
    // peer's blocks queues the block again. A root that decoded to something else is named after
    // the count, which is what the genuine root is short of.
    const short = `only ${job.mostLive} of the k = ${this.c.coding.k} fragments are live`;
    if (failure === undefined) return this.fail(job, short);
    return this.fail(job, job.mostLive > 0 ? `${short} (another root: ${failure})` : failure);
  }

  private takeFragments(job: Job, fragments: Uint8Array[], certificate: Uint8Array | null): void {
    // Unchecked, the first certificate a peer returned was spread with every repaired fragment:
    // junk stored first on one server would replace nothing but travel everywhere.
    if (certificate && !job.certificate && (!this.c.certificateCheck || this.c.certificateCheck(job.bguid, certificate))) job.certificate = certificate;
    for (const bytes of fragments) {
      try {
        const record = decodeFragment(bytes);
        if (toHex(record.bguid) === job.hex && job.root && verifyFragment(this.c.crypto, record, job.root)) job.records.set(record.index, record);
      } catch {
        // A malformed fragment from a peer is just not counted (Byzantine input is dropped).
      }
    }
  }

  private enoughRecords(job: Job): boolean {
    const first = job.records.values().next().value;
    return first !== undefined && job.records.size >= first.k;
  }

  private rebuildAndStore(job: Job, nowMs: number): Out[] {
    // Re-encoded with the configured code, whatever shape the root decoded from had: servers store
    // no other shape (a root of another shape, stored before they checked, would be refused here
    // and everywhere), and its fragments then count as not live, so all k + m are stored afresh.
    const { k, m } = this.c.coding;
    let block: Uint8Array;
    try {
      block = recoverBlock(this.c.crypto, job.bguid, [...job.records.values()], (b) =>
        blockKinds.some((kind) => toHex(bguidOf(this.c.crypto, kind, b)) === job.hex),
      );
    } catch (error) {
      return this.nextRoot(job, nowMs, `cannot decode: ${(error as Error).message}`);
    }
    const rebuilt = makeFragments(this.c.crypto, k, m, job.bguid, block);
    // Decoded and checked against the BGUID: from now on claims under this root may call the block healthy.
    this.c.store.put(verifiedPrefix + job.hex, rebuilt.fragmentRoot);
    // Live means returned by a holder and verified under this root, not claimed in a probe reply.
    const liveIndexes = new Set(bytesEqual(rebuilt.fragmentRoot, job.root!) ? job.records.keys() : []);
    job.heldCount = new Map();
    for (const [server, held] of job.census) if (this.c.isLive(server)) job.heldCount.set(server, held.length);
    job.root = rebuilt.fragmentRoot;
    job.phase = 'store';
    job.deadlineMs = nowMs + this.c.options.phaseTimeoutMs;
    job.targets = [];
    job.repairedIndexes = [];
    if (liveIndexes.size >= k + m) {
      this.counters.alreadyHealthy++;
      return this.finish(job, false);
    }
    const out: Out[] = [];
    for (const fragment of rebuilt.fragments) {
      if (liveIndexes.has(fragment.index)) continue;
      job.repairedIndexes.push(fragment.index);
      job.targets.push('');
      const placed = this.place(job, fragment.index, encodeFragment(fragment));
      if (placed === undefined) return this.fail(job, `no live archive server to place a fragment on${refusalsOf(job)}`);
      out.push(...placed);
    }
    this.counters.repairedFragments += job.targets.length;
    return [...out, ...this.advance(job, nowMs, false)];
  }

  /**
   * Stores fragment `index` (encoded) on the best-ranked live server that holds nothing of the
   * block and has not refused it (placement.ts), or on this server; undefined when none is left.
   * Called again for a fragment whose store was refused, so it goes elsewhere in the same attempt.
   */
  private place(job: Job, index: number, bytes: Uint8Array): Out[] | undefined {
    const usable = (s: string): boolean => this.c.isLive(s) && !job.refusedBy.has(s);
    const target = repairTargetOf(this.c.ring, job.bguid, usable, (s) => job.heldCount.get(s) ?? 0);
    if (target === undefined) return undefined;
    job.heldCount.set(target, (job.heldCount.get(target) ?? 0) + 1);
    job.targets[job.repairedIndexes.indexOf(index)] = target;
    if (target === this.c.self) {
      const result = this.c.storeLocally(bytes, job.root!, job.certificate);
      assert(result.ok, 'a fragment this server just built verifies');
      return [];
    }
    return [
      this.request(job, target, (requestId) => {
        job.stores.set(requestId, { server: target, index, bytes });
        return { type: 'store', requestId, items: [{ fragment: bytes, fragmentRoot: job.root!, certificate: job.certificate }] };
      }),
    ];
  }

  private dequeue(job: Job): void {
    this.jobs.delete(job.hex);
    this.c.store.delete(queuePrefix + job.hex);
    this.queued.delete(job.hex);
  }

  private finish(job: Job, repaired: boolean): Out[] {
    this.dequeue(job);
    if (!repaired) return [];
    this.counters.repairedBlocks++;
    return [{ kind: 'output', event: { kind: 'repaired', bguid: job.bguid, indexes: job.repairedIndexes, targets: job.targets } }];
  }

  private fail(job: Job, reason: string): Out[] {
    this.dequeue(job);
    this.c.store.put(failedPrefix + job.hex, encoder.encode(reason));
    return [{ kind: 'output', event: { kind: 'unrepairable', bguid: job.bguid, reason } }];
  }

  /**
   * n = k + m, from the configured code. It was read from the first intact record in key order,
   * which a writer chooses (a junk root sorting first set the window and the healthy bar).
   */
  private width(): number {
    return this.c.coding.k + this.c.coding.m;
  }
}

/** What servers refused this job's stores, for an unrepairable reason ('' when none did): the operator needs the why, e.g. a config.erasure that differs. */
function refusalsOf(job: Job): string {
  if (job.refusedBy.size === 0) return '';
  const listed = [...job.refusedBy].slice(0, 3).map(([server, reason]) => `${server}: ${reason}`);
  return `; refused by ${listed.join('; ')}${job.refusedBy.size > 3 ? ` and ${job.refusedBy.size - 3} more` : ''}`;
}
