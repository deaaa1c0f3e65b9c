/**
 * A PBFT replica of the inner ring (Castro & Liskov, OSDI'99 §4; TOCS'02 §4–6) as a sans-I/O
 * Machine: client requests, the normal case (pre-prepare / prepare / commit) with batching and a
 * pipeline inside the watermark window, execution, signed replies and certificate shares. The
 * other sub-protocols live beside it and work on the same state: ring/replica-checkpoints.ts
 * (checkpoints, log truncation, state transfer), ring/replica-view-change.ts (view change, new
 * view), ring/replica-certificates.ts (threshold shares and certificates), ring/replica-status.ts
 * (status, retransmission and catch-up).
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import { assert } from '../core/assert.ts';
import { checkArgument } from '../core/errors.ts';
import { checkRingShape, primaryOf, quorum, resolveParameters, type ProtocolParameters, type ReplicaConfig } from './config.ts';
import type { Checkpoint, ClientRequest, Commit, CommitProof, PrePrepare, Prepare, PreparedProof, RingMessage } from './messages.ts';
import type { IndexedShare } from './certificate-signer.ts';
import type { CertificateWork, CertificateWorkResult, RingOutput } from './outputs.ts';
import { prePrepareValid, type ProofContext } from './proofs.ts';
import { clearProposing, clearVoting, decodeClientRecord, loadExecution, loadHoles, loadLeaves, loadProposing, loadRecord, loadSent, loadSlot, loadStable, loadView, loadVoting, saveProposing, saveSlot, saveVoting, seqOfKey, type ClientRecord } from './replica-store.ts';
import { KeptReplies, type KeptReply } from './kept-replies.ts';
import * as agreement from './replica-agreement.ts';
import * as blocks from './replica-blocks.ts';
import * as certificates from './replica-certificates.ts';
import * as checkpoints from './replica-checkpoints.ts';
import * as execution from './replica-execution.ts';
import * as requests from './replica-requests.ts';
import * as status from './replica-status.ts';
import * as viewChange from './replica-view-change.ts';
import { ClientRequests } from './client-requests.ts';
import type { ReplicatedService } from './service.ts';
import { DeferredWrites } from './deferred-writes.ts';
import { requestDigest, signMessage, verifyMessage } from './signing.ts';

export interface Slot {
  readonly seq: number;
  /** The pre-prepare accepted in the current view (or restored from disk). */
  prePrepare: PrePrepare | null;
  prepares: Map<number, Prepare>;
  commits: Map<number, Commit>;
  /** Highest-view prepared proof: survives view changes and goes into view-change messages. */
  prepared: PreparedProof | null;
  /** Set once 2f+1 commits are known: the slot's batch is decided. */
  committed: CommitProof | null;
  /** When this replica last accepted a pre-prepare for the slot (volatile): retransmission waits for it to age. */
  sinceMs: number;
}

export type DropReason =
  | 'decode'
  | 'bad-signature'
  | 'wrong-view'
  | 'out-of-window'
  | 'conflicting-pre-prepare'
  | 'bad-batch'
  | 'not-member'
  | 'bad-proof'
  | 'nonce-reuse'
  | 'missing-blocks'
  /** This replica's stored snapshot, read back, no longer matches its checkpoint (rot at rest): discarded. */
  | 'corrupt-snapshot'
  /** A pre-prepare whose batch timestamp is more than timestampAheadMaxMs ahead of this replica's clock. */
  | 'future-timestamp'
  /** A pre-prepare whose batch timestamp is more than timestampBehindMaxMs behind this replica's clock when it first received it. */
  | 'past-timestamp'
  /** A request below every one held for its client, which holds as many as it may (ring/client-requests.ts). */
  | 'client-window'
  /** A request whose connection holds as many requests or bytes as it may, or the primary's oldest waiting for blocks beyond heldLimits.waitingMax (heldLimits). */
  | 'held-full'
  /** A span-certified that found its sender's queue full while its previous one was checked. */
  | 'busy'
  /** A state request or block fetch from a member answered already within the last status period. */
  | 'rate-limited'
  | 'stale';

const verifiedCacheMax = 100_000;
/** Messages of the normal case (and block uploads), whose steps leave held execution writes held. */
const normalCaseKinds: ReadonlySet<RingMessage['kind']> = new Set(['request', 'pre-prepare', 'prepare', 'commit', 'put-block']);
/** Held writes beyond this many keys are staged by the next step whatever its kind (bounds memory). */
const heldWritesMax = 4096;

export class Replica implements Machine<RingMessage, RingOutput> {
  readonly config: ReplicaConfig;
  readonly params: ProtocolParameters;
  readonly ctx: MachineContext;
  /** Execution's writes wait here until the next step, so replies need not wait for their fsync. */
  readonly deferred: DeferredWrites;
  readonly n: number;
  readonly f: number;
  readonly me: number;
  readonly proofContext: ProofContext;
  readonly memberIndex = new Map<string, number>();
  /** Names the ring in every certificate's batch header. */
  readonly ringId: Uint8Array;
  /** Key epoch in batch headers (changes with resharing). */
  readonly epoch: number;
  service: ReplicatedService;

  view = 0;
  viewActive = true;
  lastExecuted = 0;
  lastTimestampMs = 0;
  stableSeq = 0;
  stableProof: Checkpoint[] = [];
  readonly slots = new Map<number, Slot>();
  readonly clients = new Map<string, ClientRecord>();
  /** Replies to each client's requests before its latest, this replica's own (ring/kept-replies.ts). */
  readonly keptReplies = new KeptReplies();
  /**
   * Primary: requests waiting for a batch (a few per client, ring/client-requests.ts), among them
   * those waiting for blocks, and when the queue last filled from empty or was taken from.
   */
  readonly queue = new ClientRequests();
  queueSinceMs = 0;
  nextSeq = 1;
  /** Requests (client:nonce) sitting in an unexecuted slot; not to be batched twice. */
  readonly inFlight = new Map<string, number>();
  /** Requests this replica knows of and waits on (a few per client): the primary is suspected if one stays too long. */
  readonly pending = new ClientRequests();
  readonly drops = new Map<DropReason, number>();
  readonly counters = { executedRequests: 0, executedBatches: 0, viewChanges: 0, stateTransfers: 0, preparesWithheld: 0 };
  private readonly verifiedRequests = new Set<string>();
  /** The view this replica last marked as one it proposed in (saveProposing). */
  private proposingView: number | null = null;
  /** The latest voting mark written (saveVoting): prepares up to its seq in its view need no new write. */
  private votingMark: { view: number; seq: number } | null = null;
  /**
   * The voting mark found at restart: prepares it covers may have left before the crash, for
   * digests this replica no longer knows, so it sends none of them again (it still learns those
   * slots from the others' prepares and commits). Later views and sequence numbers are not affected.
   */
  private silentThrough: { view: number; seq: number } | null = null;
  /**
   * The highest slot whose prepare this replica withheld (silentThrough, or a pre-prepare whose
   * timestamp it refused) and when it first did: if that slot is still not executed after
   * requestTimeoutMs, the view changes (ring/replica-view-change.ts onTick). Two backups restarted
   * in one window leave too few prepares for any slot they withhold, and heartbeat batches put no
   * client request on the request timer.
   */
  withheld: { seq: number; sinceMs: number } | null = null;
  /**
   * Slots of this view whose pre-prepare this replica refused for its timestamp
   * (ring/replica-agreement.ts refuseTimestamp), each put on the withheld timer only once it is the
   * next slot to execute here (ring/replica-view-change.ts onTick). At most a watermark window.
   */
  readonly refusedTimestamps = new Set<number>();
  private out: Effect<RingMessage, RingOutput>[] = [];
  /** Certificate work handed to the host (certificateWork 'host'), by token: what to do with each result. */
  private readonly certificateJobs = new Map<object, (result: CertificateWorkResult) => void>();
  nowMs: number;
  lastHeartbeatMs: number;

  readonly agreementState = agreement.initialState();
  readonly checkpointState = checkpoints.initialState();
  readonly viewChangeState = viewChange.initialState();
  readonly certificateState = certificates.initialState();
  readonly statusState = status.initialState();
  readonly blockState = blocks.initialState();

  constructor(ctx: MachineContext, config: ReplicaConfig) {
    checkRingShape(config.members, config.f);
    const me = config.members.findIndex((m) => m.id === ctx.nodeId);
    checkArgument(me >= 0, 'ctx.nodeId', `one of the ring members (${config.members.map((m) => m.id).join(', ')})`);
    checkArgument(bytesEqual(config.members[me]!.publicKey, config.signer.publicKey), 'config.signer', 'the key listed for this member');
    this.config = config;
    this.params = resolveParameters(config.parameters);
    // Every write goes through the deferral layer; only execution holds writes back (see execute()).
    this.deferred = new DeferredWrites(ctx.store);
    this.ctx = { nodeId: ctx.nodeId, store: this.deferred, random: ctx.random, nowMs: ctx.nowMs };
    this.n = config.members.length;
    this.f = config.f;
    this.me = me;
    this.ringId = config.ringId ?? new Uint8Array(32);
    this.epoch = config.epoch ?? 0;
    config.members.forEach((m, i) => this.memberIndex.set(m.id, i));
    this.proofContext = {
      crypto: config.crypto,
      publicKeys: config.members.map((m) => m.publicKey),
      f: config.f,
      watermarkWindow: this.params.watermarkWindow,
      requestValid: (request) => this.requestValid(request),
    };
    this.nowMs = ctx.nowMs;
    this.lastHeartbeatMs = ctx.nowMs;
    this.service = config.service(this.ctx.store);
    this.recover();
  }

  // ---- Machine ----

  onMessage(from: string, message: RingMessage, nowMs: number): Effect<RingMessage, RingOutput>[] {
    this.nowMs = nowMs;
    // Held execution writes are staged by the next tick (or checkpoint), not by the normal case's
    // messages: staged here, they made the next request's pre-prepare, prepare or commit wait for
    // their fsync. Every other message stages them first, as before.
    if (!normalCaseKinds.has(message.kind) || this.deferred.heldCount > heldWritesMax) this.deferred.stage();
    this.dispatch(from, message);
    return this.flush();
  }

  onTick(nowMs: number): Effect<RingMessage, RingOutput>[] {
    this.nowMs = nowMs;
    this.deferred.stage();
    requests.onTick(this);
    this.tryIssueBatches();
    viewChange.onTick(this);
    status.onTick(this);
    checkpoints.onTick(this);
    certificates.onTick(this);
    blocks.onTick(this);
    return this.flush();
  }

  /**
   * The host's result of `certificate-work` this object asked for, as a step of its own. A token it
   * does not hold (answered already, or asked by the object this one replaced after a restart or
   * membership switch) changes nothing.
   */
  onCertificateWork(token: object, result: CertificateWorkResult, nowMs: number): Effect<RingMessage, RingOutput>[] {
    const then = this.certificateJobs.get(token);
    if (!then) return [];
    this.certificateJobs.delete(token);
    this.nowMs = nowMs;
    then(result);
    return this.flush();
  }

  // ---- helpers shared with the sub-protocol modules ----

  /** Is `signature` the ring's signature over `message`? (Through certificateWork.) */
  checkCertificate(message: Uint8Array, signature: Uint8Array, then: (valid: boolean) => void): void {
    const verifier = this.config.certificateVerifier;
    this.certificateWork({ op: 'check', message, signature }, () => ({ valid: verifier.verify(message, signature), signature: null }), (done) => then(done.valid));
  }

  /**
   * This replica's share over `message`, through certificateWork (or in this step, `here`); false
   * (and `then` is never called) when it holds no key share for the message's epoch (a member being
   * replaced), so it signs nothing rather than a share every combiner would have to find bad.
   */
  signShare(message: Uint8Array, then: (share: Uint8Array) => void, here = false): boolean {
    const signer = this.config.certificateSigner;
    const keyShare = signer.bls ? signer.bls.keyShareFor(message) : null;
    if (signer.bls && !keyShare) return false;
    // Done with the key share of now, wherever and whenever the host runs it.
    const run = (): CertificateWorkResult => ({ valid: true, signature: keyShare ? signer.bls!.signWith(keyShare, message) : signer.signShare(message) });
    if (here) then(run().signature!);
    else this.certificateWork({ op: 'share', message, keyShare }, run, (done) => then(done.signature!));
    return true;
  }

  /** Exactly f+1 shares over `message` combined, and the result checked under the ring key. (Through certificateWork.) */
  combineShares(message: Uint8Array, shares: readonly IndexedShare[], then: (signature: Uint8Array, valid: boolean) => void): void {
    const { certificateSigner: signer, certificateVerifier: verifier } = this.config;
    const run = (): CertificateWorkResult => {
      const signature = signer.combine(message, shares);
      return { valid: verifier.verify(message, signature), signature };
    };
    this.certificateWork({ op: 'combine', message, shares }, run, (done) => then(done.signature!, done.valid));
  }

  /**
   * Certificate cryptography, its result handed to `then` at once (inline) or in a later step once
   * the host has done it (certificateWork 'host'). Callers keep what is in flight bounded: a
   * round's own share and its combination (one round at a time), one share per requester, one
   * check per replica whose span-certified is checked, one claim check.
   */
  private certificateWork(work: CertificateWork, run: () => CertificateWorkResult, then: (done: CertificateWorkResult) => void): void {
    if (this.config.certificateWork !== 'host') return then(run());
    const token = {};
    this.certificateJobs.set(token, then);
    this.emit({ kind: 'certificate-work', replica: this.me, token, work, threadable: this.config.certificateSigner.bls !== undefined, run });
  }

  get primary(): number {
    return primaryOf(this.view, this.n);
  }

  get isPrimary(): boolean {
    return this.primary === this.me;
  }

  get quorum(): number {
    return quorum(this.f);
  }

  get highWatermark(): number {
    return this.stableSeq + this.params.watermarkWindow;
  }

  /**
   * The highest seq this replica proposes or accepts a pre-prepare for, and so votes on: the
   * watermark window, and at most the end of the checkpoint interval after the one it is
   * executing in. A request executed at seq s can change the ring's member list from the
   * checkpoint boundary (⌊s/K⌋+2)·K on (ring/reconfiguration-state.ts), and a replica that has not
   * executed s cannot know it: this bound keeps every vote such a replica casts at or below that
   * boundary, so no slot after it is agreed under the old list. The primary's pipeline
   * (pipelineDepthMax batches past its execution) stays well inside it. Once this replica has
   * executed such a request, ReplicaConfig.agreementLimit holds it at the boundary itself.
   */
  get voteCeiling(): number {
    const k = this.params.checkpointInterval;
    const limit = this.config.agreementLimit?.() ?? Infinity;
    return Math.min(this.highWatermark, (Math.floor(this.lastExecuted / k) + 2) * k, limit);
  }

  /** A member's node id. Callers pass an index they checked (a message's claimed index may name no member). */
  idOf(replica: number): string {
    const member = this.config.members[replica];
    assert(member !== undefined && Number.isInteger(replica), `replica index ${replica} names no member of ${this.n}`);
    return member.id;
  }

  send(to: string, message: RingMessage): void {
    this.out.push({ kind: 'send', to, message });
  }

  broadcast(message: RingMessage): void {
    for (let i = 0; i < this.n; i++) if (i !== this.me) this.send(this.idOf(i), message);
  }

  emit(event: RingOutput): void {
    this.out.push({ kind: 'output', event });
  }

  drop(reason: DropReason): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  /** Signs a message built without its signature field. */
  sign(unsigned: object): unknown {
    return signMessage(this.config.crypto, this.config.signer, unsigned as never);
  }

  slot(seq: number): Slot {
    let s = this.slots.get(seq);
    if (!s) {
      s = { seq, prePrepare: null, prepares: new Map(), commits: new Map(), prepared: null, committed: null, sinceMs: this.nowMs };
      this.slots.set(seq, s);
    }
    return s;
  }

  persistSlot(s: Slot): void {
    saveSlot(this.ctx.store, s.seq, { prePrepare: s.prePrepare, prepared: s.prepared, committed: s.committed });
  }

  requestKey(r: ClientRequest): string {
    return `${toHex(r.clientKey)}:${r.nonce}`;
  }

  /**
   * Client signature check with a cache: a request is verified once, not once per message carrying
   * it. The cache is keyed by everything the check reads (requestDigest leaves out the signature and
   * the reply address): keyed by requestDigest alone, a copy of a verified request with a garbage
   * signature passed here and failed at a replica that had never seen the original, and correct
   * replicas disagreed on whether one proof carrying it was valid.
   */
  requestValid(r: ClientRequest): boolean {
    const key = `${toHex(requestDigest(this.config.crypto, r))}:${toHex(r.signature)}:${r.replyTo}`;
    if (this.verifiedRequests.has(key)) return true;
    // Always the envelope's signature, never only the operation's own: a signed update does not
    // sign the request's nonce choice or reply address, so when it stood for the envelope anyone
    // could submit a copy of a writer's update under the writer's key (re-encoded, a request of its
    // own: it ran first and the SDK signed the update again), and a faulty primary could re-address
    // a request and keep its certificate from the client (session-21 second review).
    if (!verifyMessage(this.config.crypto, r.clientKey, r)) return false;
    if (this.verifiedRequests.size >= verifiedCacheMax) this.verifiedRequests.clear();
    this.verifiedRequests.add(key);
    return true;
  }

  batchValid(pp: PrePrepare): boolean {
    return prePrepareValid(this.proofContext, pp, false) && pp.batch!.requests.every((r) => this.requestValid(r));
  }

  private flush(): Effect<RingMessage, RingOutput>[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  /**
   * Before this object is replaced by a new one built from the same store (membership change):
   * makes everything it holds only in memory durable, so the new one needs no recovery step and
   * the primary need not hand its view on.
   */
  quiesce(): void {
    this.deferred.stage();
    // Every pre-prepare held only in memory, including one re-proposed in a new view for a slot
    // prepared in an older one: the new object must refuse another digest for it.
    for (const s of this.slots.values()) if (s.prePrepare && s.prepared?.prePrepare.view !== s.prePrepare.view) this.persistSlot(s);
    if (this.proposingView !== null) {
      clearProposing(this.ctx.store);
      this.proposingView = null;
    }
    // This object's prepares are in the slots now; those of the run before a restart are known
    // only by the mark it found, which must carry over.
    if (this.silentThrough !== null && this.silentThrough.view === this.view) saveVoting(this.ctx.store, this.silentThrough);
    else if (this.votingMark !== null) clearVoting(this.ctx.store);
    this.votingMark = null;
  }

  // ---- recovery ----

  private recover(): void {
    const store = this.ctx.store;
    ({ view: this.view, viewActive: this.viewActive } = loadView(store));
    ({ lastExecuted: this.lastExecuted, lastTimestampMs: this.lastTimestampMs } = loadExecution(store));
    const stable = loadStable(store);
    this.stableSeq = stable.seq;
    this.stableProof = stable.proof;
    for (const key of store.keys('ring/client/')) {
      this.clients.set(key.slice('ring/client/'.length), loadRecord(store, key, decodeClientRecord)!);
    }
    for (const key of store.keys('ring/slot/')) {
      const seq = seqOfKey(key);
      const r = loadRecord(store, key, loadSlot)!;
      const s = this.slot(seq);
      s.prePrepare = r.prePrepare && r.prePrepare.view === this.view ? r.prePrepare : null;
      s.prepared = r.prepared;
      s.committed = r.committed;
      if (s.prePrepare) for (const req of s.prePrepare.batch?.requests ?? []) this.inFlight.set(this.requestKey(req), seq);
    }
    this.nextSeq = Math.max(this.lastExecuted, this.stableSeq, ...this.slots.keys()) + 1;
    checkpoints.recover(this);
    viewChange.recover(this);
    this.proposingView = loadProposing(store);
    // Our pre-prepares of this view were not all persisted: proposing again could reuse a sequence
    // number for another batch (equivocation). Hand the view on; the backups follow at once.
    if (this.viewActive && this.isPrimary && this.proposingView === this.view) viewChange.abdicate(this);
    this.votingMark = loadVoting(store);
    this.silentThrough = this.votingMark;
    // Statements executed before the restart and not seen certified are held again (their records
    // were written with the execution).
    const holes = loadHoles(store);
    certificates.recoverStatements(this, loadLeaves(store, this.lastExecuted), holes);
    // Certificates sent to clients before it, for clients that ask again.
    certificates.recoverSent(this, loadSent(store));
    this.executeReady();
  }

  // ---- dispatch ----

  private dispatch(from: string, m: RingMessage): void {
    const peer = this.memberIndex.get(from);
    switch (m.kind) {
      case 'request':
        return requests.onRequest(this, m, from, peer !== undefined);
      case 'pre-prepare':
        return agreement.onPrePrepare(this, m);
      case 'prepare':
        return agreement.onPrepare(this, m);
      case 'commit':
        return agreement.onCommit(this, m, from);
      case 'commit-proof':
        return agreement.onCommitProof(this, m);
      case 'checkpoint':
        return checkpoints.onCheckpoint(this, m);
      case 'checkpoint-proof':
        return checkpoints.onCheckpointProof(this, m.checkpoints);
      case 'state-request':
        return peer === undefined ? this.drop('not-member') : checkpoints.onStateRequest(this, from, m);
      case 'state-reply':
        return checkpoints.onStateReply(this, m);
      case 'view-change':
        return viewChange.onViewChange(this, from, m);
      case 'new-view':
        return viewChange.onNewView(this, m);
      case 'status':
        return peer === undefined ? this.drop('not-member') : status.onStatus(this, from, m);
      case 'share':
        return peer === m.replica ? certificates.onShare(this, m) : this.drop('not-member');
      case 'sign-request':
        return peer === m.replica ? certificates.onSignRequest(this, m) : this.drop('not-member');
      case 'span-certified':
        return peer === m.replica ? certificates.onSpanCertified(this, m) : this.drop('not-member');
      case 'share-refused':
        return peer === m.replica ? certificates.onShareRefused(this, m) : this.drop('not-member');
      case 'certificate-request':
        return certificates.onCertificateRequest(this, from, m);
      case 'put-block':
        return blocks.onPutBlock(this, from, m.block);
      case 'fetch-blocks':
        return peer === undefined ? this.drop('not-member') : blocks.onFetchBlocks(this, from, m);
      case 'block-data':
        return blocks.onBlockData(this, from, m);
      default:
        // Replies, certificates and acks are for clients; a replica ignores them.
        return this.drop('stale');
    }
  }

  // ---- requests (ring/replica-requests.ts) ----

  enqueue(r: ClientRequest, origin: string): void {
    requests.enqueue(this, r, origin);
  }

  tryIssueBatches(): void {
    requests.tryIssueBatches(this);
  }

  /** Block `bguidHex` is here: whether a queued request it completes became proposable. */
  blockHere(bguidHex: string): boolean {
    return requests.onBlockHere(this, bguidHex);
  }

  // ---- normal case (OSDI'99 §4.2; ring/replica-agreement.ts) ----

  /**
   * Neither the primary's pre-prepare nor a backup's prepare waits for an fsync of the slot (one
   * fsync less on every update's path each); the slot is persisted once prepared, before its commit
   * leaves. What a replica must not do after a crash is vote twice for one (view, seq): the
   * primary's proposing mark (once per view) makes a restarted primary hand the view on instead of
   * reusing sequence numbers, and a backup's voting mark (once per view and watermark window)
   * makes a restarted backup send no prepare for the slots it may have prepared already.
   */
  acceptPrePrepare(pp: PrePrepare): void {
    const s = this.slot(pp.seq);
    s.prePrepare = pp;
    s.sinceMs = this.nowMs;
    for (const r of pp.batch?.requests ?? []) this.inFlight.set(this.requestKey(r), pp.seq);
    if (pp.replica === this.me) {
      if (this.proposingView !== pp.view) {
        this.proposingView = pp.view;
        saveProposing(this.ctx.store, pp.view);
      }
    } else if (this.silentThrough !== null && pp.view === this.silentThrough.view && pp.seq <= this.silentThrough.seq) {
      this.counters.preparesWithheld++;
      this.noteWithheld(pp.seq);
    } else {
      if (this.votingMark === null || this.votingMark.view !== pp.view || pp.seq > this.votingMark.seq) {
        // Durable before this prepare leaves (the host flushes a step's writes before its sends).
        this.votingMark = { view: pp.view, seq: Math.max(pp.seq, this.highWatermark) };
        saveVoting(this.ctx.store, this.votingMark);
      }
      const prepare = this.sign({ kind: 'prepare', view: pp.view, seq: pp.seq, digest: pp.digest, replica: this.me }) as Prepare;
      s.prepares.set(this.me, prepare);
      this.broadcast(prepare);
    }
    agreement.checkPrepared(this, s);
  }

  /** This replica sends no prepare for `seq` in this view: the withheld timer watches that it executes anyway. */
  noteWithheld(seq: number): void {
    this.withheld = { seq: Math.max(seq, this.withheld?.seq ?? 0), sinceMs: this.withheld?.sinceMs ?? this.nowMs };
  }

  signedByReplica(m: Parameters<typeof verifyMessage>[2] & { replica: number }): boolean {
    const key = this.config.members[m.replica]?.publicKey;
    return key !== undefined && verifyMessage(this.config.crypto, key, m);
  }

  // ---- execution (ring/replica-execution.ts) ----

  executeReady(): void {
    execution.executeReady(this);
  }

  sendReply(to: string, clientKey: Uint8Array, record: KeptReply): void {
    execution.sendReply(this, to, clientKey, record);
  }
}

/** The factory a host (simulator or runtime) registers for a ring member. */
export function replicaFactory(config: ReplicaConfig): (ctx: MachineContext) => Replica {
  return (ctx) => new Replica(ctx, config);
}
