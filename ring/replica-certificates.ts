/**
 * Threshold certificates over spans of executed batches (DESIGN.md "Certificates and heartbeats").
 *
 * A BLS round (a share per replica, a combination, pairing checks) costs far more CPU than agreeing
 * on a batch, so certificates are not made per batch: a *certifier* signs the statements of every
 * batch executed since the last certificate — a span [from, to] — as one Merkle tree, and the ring
 * signs the span header (ring id, epoch, sequence = to, leaf count, root), the core/threshold
 * batchSigningMessage, so certificates still verify with verifyCertificate. Rounds are self-clocked
 * (one in flight, starts at least certifyIntervalMs and twice the last round's duration apart, or
 * once its duration when the host does the BLS work on a thread of its own), so the BLS cost per
 * second is bounded whatever the update rate, and one round covers more updates exactly when load
 * grows.
 *
 * Spans need no agreement: execution is deterministic, so every correct replica that executed
 * through `to` holds the same statements for [from, to], and signing any such span is safe (two
 * certificates can only ever cover the same statement bytes). The certifier of rank 0 is the
 * primary; rank k <= f takes over when the oldest uncertified batch has waited k takeover periods,
 * so f faulty certifiers delay certificates but cannot stop them. A signer checks the requested
 * root against its own before spending a share (only f replicas are asked at first, the rest if
 * the round is slow); the certifier combines the first f+1 shares,
 * verifies once, and only on failure checks shares one by one, naming each bad sender. The result
 * goes to the clients of the span's statements and, as `span-certified`, to the other replicas;
 * the other certifiers verify it before handing it to their tree root and archiver ('certificate'
 * output) and send it to the span's clients too. So f+1 ring servers emit every certificate and
 * send each client its own: a certifier that runs honest rounds with its peers but sends clients
 * nothing, or lies to them (another leaf of the span under their key, another epoch, a root of its
 * own), costs a client one refused check per request (a pairing, for a root of its own; the
 * client then drops that member's copies for the request), never its certificate. Honest copies
 * after the first are dropped unchecked. A certificate lost on the way is asked for again by its
 * client (certificate-request), and every certifier keeps the ones it sent recently to answer.
 *
 * Statements are kept in the replica's store with the execution that made them (the same held
 * writes) and deleted once certified, so a replica that restarted, or was rebuilt at a membership
 * switch, holds again every statement it executed and had not seen certified (recoverStatements).
 * A replica that took a state transfer (or lost its disk) cannot sign spans below what it executed
 * itself; asked to, it says where its statements start (share-refused), and a certifier whose
 * round stalled on such refusals starts its next span where f others can still sign (nextStart).
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import { batchLeafCountMax, batchLeafHash, BatchMerkleTree } from '../core/threshold/batch-merkle.ts';
import { batchMessage } from './certificate-format.ts';
import type { CertificateMessage, CertificateRequest, Share, ShareRefused, SignRequest, SpanCertified } from './messages.ts';
import type { Replica } from './replica.ts';
import { holesMax, leavesKey, loadHoles, saveHoles, saveSent, sentKey as sentRecordKey, seqOfKey, type SentSpan } from './replica-store.ts';

export interface Leaf {
  readonly statement: Uint8Array;
  /** Null for heartbeat statements, which no client waits on. */
  readonly clientKey: Uint8Array | null;
  readonly nonce: number;
  readonly replyTo: string;
}

interface ExecutedLeaves {
  readonly seq: number;
  readonly leaves: readonly Leaf[];
  readonly executedMs: number;
}

/** One span as this replica computed it from its own executed batches. */
interface Span {
  readonly from: number;
  readonly to: number;
  readonly leaves: readonly Leaf[];
  readonly tree: BatchMerkleTree;
  readonly root: Uint8Array;
  /** The key epoch of the shares that sign it (named in the header). */
  readonly epoch: number;
  /** What the ring signs: the encoded span header. */
  readonly message: Uint8Array;
}

interface Round {
  readonly span: Span;
  readonly startedMs: number;
  readonly shares: Map<number, Uint8Array>;
  readonly bad: Set<number>;
  /** Replicas that cannot sign this span, and where their statements start (share-refused). */
  readonly refused: Map<number, number>;
  /** Replicas asked for a share: f at first, everyone once the round is slow (widened). */
  readonly asked: Set<number>;
  /** When it was widened (everyone asked; tryPrefix waits as long again before it takes a prefix), or null. */
  widenedMs: number | null;
  /** A combination is being made and checked (certificateWork 'host'): shares arriving meanwhile wait for its verdict. */
  checking: boolean;
  /**
   * Shares over a prefix [from, end] of the span, by sender (its latest): a replica that holds the
   * span's start but not its end (a state transfer skipped batches above what it executed: holes)
   * signs what it holds of it (onSignRequest). A widened round that such shares answered is
   * replaced by the round of the longest prefix f others hold (tryPrefix).
   */
  readonly prefix: Map<number, Share>;
  /** A prefix round's: the widened round it replaced, taken up again if it fails (prefixFailed); null otherwise. */
  readonly base: Round | null;
  /** A prefix round's: replicas whose prefix shares ended beyond it, asked to sign it over again. */
  readonly resigning: Set<number>;
  /** A prefix round's: whether the silent ones among them were asked a second time (prefixFailed). */
  reasked: boolean;
}

export interface CertificateState {
  /** Executed batches with statements, above certifiedThrough (ascending by seq). */
  readonly executed: Map<number, ExecutedLeaves>;
  /** Every statement at or below this sequence number is certified (as far as this replica knows). */
  certifiedThrough: number;
  /** Statements below this were never held here (skipped by state transfer, given up, or certified before a restart). */
  leavesFloor: number;
  /**
   * Batches a state transfer skipped above statements this replica executed itself and still holds
   * (ascending, each above the held statements it follows): no span it signs or proposes crosses
   * one (spanOf). Kept in the store with the transfer (ring/holes), so a restarted replica holds
   * again what it held on both sides of one, and the hole between (recoverStatements).
   */
  readonly holes: { from: number; to: number }[];
  /** This replica's round as certifier, if one is in flight. */
  round: Round | null;
  lastRoundMs: number;
  /** How long the last completed round took (start to combined signature): paces the next one. */
  lastRoundDurationMs: number;
  /**
   * Highest span end signed for each requester, and when: one share per span end, unless the round
   * was retried, and up to f+1 more for shorter spans (`lowered`: prefix rounds ask for them,
   * tryPrefix; each of up to f liars can cost a correct holder one, the session-30 review).
   */
  readonly signedTo: Map<number, { to: number; atMs: number; lowered: number }>;
  /** Sign requests for batches not executed yet, one per requester. */
  readonly parked: Map<number, SignRequest>;
  /**
   * Requesters whose share the host is signing (certificateWork 'host'), with the latest request
   * from each that came meanwhile (null: none).
   */
  readonly signing: Map<number, SignRequest | null>;
  /**
   * Per sending replica, the latest span it certified that this replica cannot take yet: one that
   * ends beyond its execution, or starts above where its own spans start (spanStart). Taken once
   * execution, a certificate or a skip gets there (one per sender: a Byzantine certifier cannot
   * push out another's).
   */
  readonly parkedCertified: Map<number, SpanCertified>;
  /** Replicas asked in the last completed round that had not answered when it combined: asked last. */
  slowSigners: Set<number>;
  roundCount: number;
  /** Where spans start at the least, after a round stalled on refusals (nextStart); 0 otherwise. */
  skipTo: number;
  /**
   * The replicas whose refusals set skipTo (the f lowest refusals at or below it): a later stall is
   * suspect when one of them refuses again among the f lowest claims (nextStart).
   */
  skipSetters: ReadonlySet<number>;
  /**
   * Whether every other replica answered the round that set skipTo (a share or a refusal): then
   * fewer than f+1 replicas hold the statements skipped, and a non-certifier may take claims from
   * skipTo on (claimedByFPlusOne). A skip with f silent replicas may have left them the only
   * holders besides this one.
   */
  skipHeardAll: boolean;
  /**
   * A skip that a stalled round's answers called for while some replicas it asked said nothing (a
   * request may have been lost, and they may hold the statements): deferred once, to the next
   * round, which asks them again (0: none).
   */
  skipDeferred: number;
  /**
   * The certificates this replica sent clients most recently, by `clientKeyHex:nonce` (oldest
   * first), re-sent when a client asks (a certificate lost on the way is not lost for good).
   * Their spans are kept in the store too (`ring/sent/<to>`, held writes), the latest
   * sentToClientsMax certificates' worth, and rebuilt after a restart (recoverSent): a client cut
   * off from every certifier when its certificate went out, whose certifiers all restarted before
   * it asked again, never got it (ring simulation seed 4668).
   */
  readonly sentToClients: Map<string, { readonly message: CertificateMessage; readonly replyTo: string; resentMs: number }>;
  /** The spans kept in the store for sentToClients, ascending by end, with their client leaves. */
  readonly sentSpans: { to: number; count: number }[];
  /** Client leaves in sentSpans. */
  sentCount: number;
  /**
   * Replicas whose span-certified is being checked (certificateWork 'host'), with the ones from
   * the same sender that came meanwhile: one check in flight per sender, the rest wait for its verdict.
   */
  readonly spanChecks: Map<number, SpanCertified[]>;
  /**
   * A non-certifier's record of span-certified messages, the latest per sender, unchecked: f+1
   * senders naming one span (from, to, root) include a correct certifier that checked it, so the
   * span is certified without a pairing here (learnCertified), and its statements are forgotten.
   * A single claim from a certifier of the view proves nothing, but while one covers this
   * replica's oldest uncertified statement it does not take over (maybeStartRound).
   */
  readonly claims: Map<number, SpanCertified[]>;
  /** A non-certifier is checking a certifier's claim that covers its oldest statement (checkClaim). */
  claimCheck: boolean;
  /** Certifiers whose claim failed a check here, with the view: their claims are ignored for the rest of it. */
  readonly refuted: Map<number, number>;
}

/** Spans of at least this many statements are signed in the step even with a host thread (onSignRequest). */
const shareHereLeavesMin = 32;
/** Span-certified messages from one sender kept while its previous one is checked (more are dropped). */
const spanChecksWaitingMax = 4;
/** Claims (span-certified messages) a non-certifier keeps per sender, the latest (a few seconds of rounds). */
const claimsPerSenderMax = 64;

/**
 * Certificates kept for clients that ask again: ~10 MiB, half a minute at the ring's full rate on
 * this machine (clients ask up to 7 x their first wait after completion: ring/client.ts).
 */
const sentToClientsMax = 16_384;
/** One re-send per certificate per this long, however often its client asks. */
const resendIntervalMs = 1000;

export function initialState(): CertificateState {
  return { executed: new Map(), certifiedThrough: 0, leavesFloor: 1, holes: [], round: null, lastRoundMs: -Infinity, lastRoundDurationMs: 0, signedTo: new Map(), parked: new Map(), signing: new Map(), parkedCertified: new Map(), slowSigners: new Set(), roundCount: 0, skipTo: 0, skipSetters: new Set(), skipHeardAll: false, skipDeferred: 0, sentToClients: new Map(), sentSpans: [], sentCount: 0, spanChecks: new Map(), claims: new Map(), claimCheck: false, refuted: new Map() };
}

/** After a state transfer, or when statements far below execution are given up: those through `seq` are not this replica's to certify. */
export function resetBelow(r: Replica, seq: number): void {
  const s = r.certificateState;
  s.certifiedThrough = Math.max(s.certifiedThrough, seq);
  s.leavesFloor = Math.max(s.leavesFloor, seq + 1);
  s.round = null;
  // Not held: after a state transfer the new execution record is durable with this step, and a
  // crash must not find statements kept on both sides of the batches it skipped.
  forgetStored(r, seq, false);
  dropHoles(r);
}

/**
 * A state transfer from `executedThrough` to the checkpoint at `seq`: the batches between were
 * never executed here, but the statements this replica executed below them are its own, and may
 * be held by fewer than f+1 others already (every lagging replica transfers, under loss each few
 * seconds: ring simulation sweeps lost acknowledged updates so). They stay held, above a hole.
 */
export function skippedByTransfer(r: Replica, executedThrough: number, seq: number): void {
  const s = r.certificateState;
  const keeps = [...s.executed.keys()].some((k) => k > s.certifiedThrough && k <= executedThrough);
  // (At holesMax the statements go, as before session 29: a record of more would not read back.)
  if (!keeps || executedThrough >= seq || s.holes.length >= holesMax - 1) return resetBelow(r, seq);
  s.holes.push({ from: executedThrough + 1, to: seq });
  // With the transfer (this step's writes, not held; the held ones were staged before it): a
  // restarted replica finds its records on both sides of the hole, and the hole. Holes already
  // recorded stay unless no record is left below them (a held delete lost in a crash must not
  // leave records on both sides of a hole the record forgot).
  const lowest = r.ctx.store.keys('ring/leaves/').map(seqOfKey)[0] ?? seq + 1;
  const recorded = loadHoles(r.ctx.store).filter((h) => h.to < executedThrough + 1 && h.to >= lowest);
  saveHoles(r.ctx.store, [...recorded, { from: executedThrough + 1, to: seq }]);
}

/** Holes with no held statement below them are no longer holes: what is below and in them is not ours. */
function dropHoles(r: Replica): void {
  const s = r.certificateState;
  while (s.holes.length > 0) {
    const hole = s.holes[0]!;
    let below = false;
    for (const k of s.executed.keys()) {
      if (k <= s.certifiedThrough) continue;
      below = k < hole.from;
      break;
    }
    if (below) return;
    s.holes.shift();
    s.certifiedThrough = Math.max(s.certifiedThrough, hole.to);
    s.leavesFloor = Math.max(s.leavesFloor, hole.to + 1);
  }
}

/** `seq`, or the first seq above the hole it is in. */
function pastHoles(r: Replica, seq: number): number {
  for (const hole of r.certificateState.holes) if (hole.from <= seq && seq <= hole.to) seq = hole.to + 1;
  return seq;
}

/** The first hole that meets [from, to], if any. */
function holeIn(r: Replica, from: number, to: number): { from: number; to: number } | undefined {
  return r.certificateState.holes.find((h) => h.from <= to && h.to >= from);
}

/**
 * After a restart: the statements of the batches executed before it whose records are still in the
 * store (not seen certified then) are held again, and everything below the first of them counts as
 * certified or given up, as it did before the restart (records are deleted in seq order only). Their
 * takeover clocks start now.
 */
export function recoverStatements(r: Replica, kept: readonly { seq: number; leaves: readonly Leaf[] }[], holes: readonly { from: number; to: number }[] = []): void {
  const s = r.certificateState;
  const first = kept[0]?.seq ?? r.lastExecuted + 1;
  s.certifiedThrough = Math.max(s.certifiedThrough, first - 1);
  s.leavesFloor = Math.max(s.leavesFloor, first);
  s.round = null;
  s.holes.length = 0;
  s.holes.push(...holes.filter((h) => h.to >= first && h.from <= r.lastExecuted));
  for (const e of kept) if (e.seq > s.certifiedThrough) s.executed.set(e.seq, { seq: e.seq, leaves: e.leaves, executedMs: r.nowMs });
  dropHoles(r);
}

/**
 * Forgets the statements held through `seq`, in memory and in the store. After a certificate the
 * deletes are held like execution's writes (ring/deferred-writes.ts): its messages need not wait
 * for them to be durable, and a delete lost in a crash only makes the restarted replica hold
 * statements certified already (a second certificate of the same bytes, or a refusal to sign them,
 * which lets the certifier asking skip them: nextStart).
 */
function forgetStored(r: Replica, seq: number, held = true): void {
  const s = r.certificateState;
  const gone: number[] = [];
  for (const k of s.executed.keys()) {
    if (k > seq) break; // ascending by seq
    gone.push(k);
  }
  for (const k of gone) s.executed.delete(k);
  if (held) return r.deferred.hold(() => gone.forEach((k) => r.ctx.store.delete(leavesKey(k))));
  // Every record through seq, in this step: those held for this step's executions, and those whose
  // deletes an earlier step still holds (the inner store lists them), so that a crash keeps no
  // record below these deletes.
  for (const k of gone) r.ctx.store.delete(leavesKey(k));
  for (const key of r.deferred.inner.keys('ring/leaves/')) if (seqOfKey(key) <= seq) r.ctx.store.delete(key);
}

/** 0 for the primary, 1 for the next replica, ...: who certifies, and after how long it takes over. */
export function certifierRank(r: Replica, replica: number): number {
  return (replica - r.primary + r.n) % r.n;
}

function takeoverMs(r: Replica): number {
  return r.params.certifyTakeoverMs;
}

export function onExecuted(r: Replica, seq: number, leaves: readonly Leaf[]): void {
  const s = r.certificateState;
  s.executed.set(seq, { seq, leaves, executedMs: r.nowMs });
  // Both maps are usually empty (a replica behind its peers fills them): no copies on every execution then.
  if (s.parked.size > 0) {
    for (const m of [...s.parked.values()].filter((p) => p.to <= seq)) {
      s.parked.delete(m.replica);
      onSignRequest(r, m);
    }
  }
  takeUpParkedCertified(r);
  // The round itself starts at the next tick, not here: a tick later it may cover more batches,
  // and its share signature (if done in the step) would hold back this step's replies.
}

/** Spans stop short of this many statements (a certificate's tree is bounded: core/threshold). */
export const spanLeavesMax = Math.min(16_384, batchLeafCountMax);

/**
 * The span from `from` up to `to` from this replica's own executed batches, or null if it cannot
 * know it. With `shorten`, the span ends early rather than exceed spanLeavesMax (a certifier
 * choosing its span); otherwise it is exactly [from, to] or null (a signer checking a request).
 * Exported for the simulator's liars (ring/sim-faults.ts 'false-prefix').
 */
export function spanOf(r: Replica, from: number, to: number, shorten = false): Span | null {
  const s = r.certificateState;
  if (from < s.leavesFloor || to > r.lastExecuted || from > to) return null;
  const hole = holeIn(r, from, to);
  if (hole) {
    if (!shorten || hole.from <= from) return null;
    to = hole.from - 1;
  }
  const leaves: Leaf[] = [];
  let end = from - 1;
  for (let seq = from; seq <= to; seq++) {
    const e = s.executed.get(seq);
    if (e && leaves.length + e.leaves.length > spanLeavesMax) {
      if (!shorten || leaves.length === 0) return null;
      break;
    }
    if (e) leaves.push(...e.leaves);
    else if (seq <= s.certifiedThrough) return null; // already certified and forgotten here
    end = seq;
  }
  if (leaves.length === 0) return null;
  const tree = new BatchMerkleTree(r.config.crypto, leaves.map((l) => batchLeafHash(r.config.crypto, l.statement)));
  const epoch = r.config.epochAt?.(end) ?? r.epoch;
  return { from, to: end, leaves, tree, root: tree.root, epoch, message: batchMessage({ ringId: r.ringId, epoch }, end, leaves.length, tree.root) };
}

/** The lowest seq a span this replica would sign may start at. */
function ownFloor(r: Replica): number {
  const s = r.certificateState;
  return Math.max(s.leavesFloor, s.certifiedThrough + 1);
}

/** Where this replica's own rounds start: its floor, or above it after a stall gave statements up (nextStart). */
function spanStart(r: Replica): number {
  return pastHoles(r, Math.max(ownFloor(r), r.certificateState.skipTo));
}

/** Parked span-certified messages whose span this replica can now take (each is parked again if not). */
function takeUpParkedCertified(r: Replica): void {
  const s = r.certificateState;
  if (s.parkedCertified.size === 0) return;
  for (const m of [...s.parkedCertified.values()].filter((p) => p.to <= r.lastExecuted && p.from <= spanStart(r))) {
    s.parkedCertified.delete(m.replica);
    onSpanCertified(r, m);
  }
}

/**
 * Where spans start after `round` stalled for a takeover period. A certifier needs f others that
 * hold the span's statements, and a replica that restarted, took a state transfer or certified
 * further no longer holds those below its floor: a certifier that kept proposing a span nobody
 * else can sign would never certify again. But a replica that says nothing may be slow, not
 * lost, and skipping gives statements up: so a round moves the start only once all but f of the
 * others answered it, with a share or a refusal (share-refused; the f silent ones may be liars),
 * and then to the f-th lowest of what they can sign from (a share: 0; a refusal: its floor). A stall without that
 * evidence (a partition, slow peers, silent liars alone) moves nothing: the next round asks again.
 * A liar's refusal only counts with a floor above the span's start, but f liars naming floors
 * just above it would drag the start up one seq per stall: so when a round that started at a skip
 * stalls again and one of the f lowest claims is a refusal from a replica whose refusal set that
 * skip (`setters`), it takes the 2f-th lowest instead (f correct replicas remain at or below it).
 * That is suspicion, not proof: a correct setter's floor may have risen too (a restart, a state
 * transfer, or a span it saw certified meanwhile). Other replicas' new, higher floors (seed 120:
 * one replica refused from 14 after another's refusal set the start to 5) still move the start to
 * the f-th lowest, not past statements f others hold. Statements skipped are given up by this
 * certifier; they are ones fewer than f others still claim to hold, or, after a suspect stall,
 * ones that f or more replicas besides a setter may still hold.
 */
function nextStart(r: Replica, round: Round, setters: ReadonlySet<number> | null): { start: number; setters: Set<number> } {
  const none = { start: 0, setters: new Set<number>() };
  // The others' shares (valid ones: a bad share is removed, and a whole-span sharer that then
  // failed a prefix round is bad: fallBack); ours, if it is in yet, is no claim. (A prefix share is
  // no claim either: counted as one, f liars sending valid ones that no prefix round ever fails
  // blocked every skip, the session-30 third review.)
  const others = [...round.shares.keys()].filter((replica) => replica !== r.me && !round.bad.has(replica));
  const claims = [...[...round.refused].map(([replica, floor]) => ({ replica, floor })), ...others.map((replica) => ({ replica, floor: 0 }))];
  if (claims.length < r.n - 1 - r.f) return none;
  claims.sort((a, b) => a.floor - b.floor || a.replica - b.replica);
  // Shares are claims of floor 0: a replica that shared sets no skip and is never suspect.
  const lowest = claims.slice(0, r.f);
  const suspect = setters !== null && lowest.some((c) => c.floor > 0 && setters.has(c.replica));
  const start = claims[(suspect ? 2 * r.f : r.f) - 1]?.floor ?? 0;
  const refusedAtOrBelow = claims.filter((c) => c.floor > 0 && c.floor <= start);
  return start === 0 ? none : { start, setters: new Set(refusedAtOrBelow.slice(0, r.f).map((c) => c.replica)) };
}

function oldestUncertified(r: Replica): ExecutedLeaves | null {
  for (const e of r.certificateState.executed.values()) if (e.seq > r.certificateState.certifiedThrough) return e;
  return null;
}

/** The lowest seq whose statements this replica holds and has not seen certified (null: none). */
export function oldestUncertifiedSeq(r: Replica): number | null {
  return oldestUncertified(r)?.seq ?? null;
}

/**
 * A membership switch rebuilt `r` from the store (recoverStatements, which starts every takeover
 * clock at the rebuild): statements `before` held keep the time they executed, so the new list's
 * takeovers and signers judge them by how long they have waited, not by when the list changed.
 */
export function carryExecutionTimes(r: Replica, before: Replica): void {
  const executed = r.certificateState.executed;
  for (const [seq, e] of executed) {
    const then = before.certificateState.executed.get(seq);
    if (then && then.executedMs < e.executedMs) executed.set(seq, { ...e, executedMs: then.executedMs });
  }
}

/**
 * Whether nothing this replica holds at or below `seq` still waits for a certificate: every such
 * statement is certified here or, on a replica that is no certifier, covered by a claim of a
 * certifier of this view (unchecked: a membership switch waits for this, and only its timing
 * depends on it; ring/reconfiguration-replica.ts).
 */
export function certifiedOrClaimedThrough(r: Replica, seq: number): boolean {
  const certifier = certifierRank(r, r.me) <= r.f;
  let claimedTo = -1;
  for (const held of r.certificateState.executed.keys()) {
    if (held > seq) break; // ascending by seq
    if (certifier) return false;
    if (held <= claimedTo) continue;
    const claim = certifierClaimCovering(r, held);
    if (!claim) return false;
    claimedTo = claim.to;
  }
  return true;
}

/**
 * The claim reaching furthest among those by certifiers of this view (rank 0..f, not refuted in
 * it) of a span that covers `seq`, if one is held.
 */
function certifierClaimCovering(r: Replica, seq: number): SpanCertified | null {
  let best: SpanCertified | null = null;
  for (const [sender, kept] of r.certificateState.claims) {
    if (certifierRank(r, sender) > r.f || r.certificateState.refuted.get(sender) === r.view) continue;
    for (const m of kept) if (m.from <= seq && seq <= m.to && m.to <= r.lastExecuted && (!best || m.to > best.to)) best = m;
  }
  return best;
}

/**
 * Instead of taking over, a non-certifier checks the claim (one pairing) of a certifier that
 * covers its oldest statement, which fewer than f+1 senders made (a backup certifier is down, or
 * could not check it): a valid one certifies those statements here, and their certificates are
 * kept for clients that ask again (a certifier that lies to clients may have withheld them). A
 * claim whose root differs from this replica's statements, or whose signature fails, proves its
 * sender faulty (execution is deterministic, and certifiers claim only what they checked): its
 * claims are ignored for the rest of the view, and the takeover follows. A claim this replica
 * cannot rebuild (it starts below what it holds) is dropped alone. False when the caller may go
 * on to another claim or the takeover (the claim was dropped or refuted at once).
 */
function checkClaim(r: Replica, claim: SpanCertified): boolean {
  const s = r.certificateState;
  if (s.claimCheck) return true;
  const kept = s.claims.get(claim.replica) ?? [];
  const span = spanOf(r, claim.from, claim.to);
  if (!span) {
    s.claims.set(claim.replica, kept.filter((m) => m !== claim));
    return false;
  }
  const view = r.view;
  if (span.leaves.length !== claim.leafCount || !bytesEqual(span.root, claim.root)) {
    s.refuted.set(claim.replica, view);
    return false;
  }
  s.claimCheck = true;
  let refuted = false;
  r.checkCertificate(span.message, claim.signature, (valid) => {
    s.claimCheck = false;
    if (!valid) {
      refuted = true;
      return void s.refuted.set(claim.replica, view);
    }
    if (claim.to <= s.certifiedThrough) return;
    forgetThrough(r, claim.to);
    sendToClients(r, span, claim.signature, false);
  });
  // Inline, the verdict is in: a valid claim ends this tick's turn, a refuted one lets the next be tried.
  return !refuted;
}

/**
 * Starts a round when this replica is the certifier, or its turn to take over has come: rank k
 * waits k takeover periods from the oldest statement it holds uncertified. Ranks above f check no
 * signatures in the normal case: they learn what is certified from f+1 matching claims
 * (learnCertified). When a certifier of the view claims a span covering their oldest statement
 * and fewer than f+1 did (a backup certifier is down: without this, every span would be certified
 * twice), they check that claim instead of taking over (checkClaim); a false one refutes its
 * sender for the view. So they take over for statements no certifier truthfully claims: every
 * certifier restarted or took a state transfer past them, or lies.
 */
export function maybeStartRound(r: Replica): void {
  const s = r.certificateState;
  const rank = certifierRank(r, r.me);
  learnCertified(r);
  if (s.round && r.nowMs - s.round.startedMs < takeoverMs(r) && !answeredAll(r, s.round)) return;
  // A round is replaced only after it asked everyone and had a tick to hear back (ticks may be long).
  if (s.round && s.round.widenedMs === null) return widen(r, s.round);
  // Rounds at least twice their own duration apart when their BLS work runs in the step: it stays
  // a bounded share of this thread's time however slow the machine is, and each round covers what
  // executed meanwhile. When the host does that work on a thread of its own (certificateWork
  // 'host'), this thread only passes the messages and rounds may follow each other: the host's
  // thread spends on a round (our share, the combination and its check) less than the round lasts,
  // which also waits for another replica's share and the messages.
  const spacing = r.config.certificateWork === 'host' ? 1 : 2;
  if (r.nowMs - s.lastRoundMs < Math.max(r.params.certifyIntervalMs, spacing * s.lastRoundDurationMs)) return;
  const oldest = oldestUncertified(r);
  if (oldest === null || r.nowMs - oldest.executedMs < rank * takeoverMs(r)) return;
  // Each pass drops a claim or refutes its sender: bounded by the claims held.
  for (let claim = rank > r.f ? certifierClaimCovering(r, oldest.seq) : null; claim; claim = certifierClaimCovering(r, oldest.seq)) {
    if (checkClaim(r, claim)) return;
  }
  // A round still here has gone a takeover period without a certificate (without f+1 shares, or
  // with work the host has not answered: nextStart then moves nothing), or every other replica
  // answered it and it cannot complete (answeredAll).
  if (s.round) {
    // A prefix round is judged by the widened round it replaced (whose prefix shares say who holds what).
    const judged = s.round.base ?? s.round;
    const next = nextStart(r, judged, skipSettersFor(r, judged));
    const heardAll = judged.refused.size + [...judged.shares.keys()].filter((replica) => replica !== r.me).length >= r.n - 1;
    if (next.start > s.skipTo && !heardAll && s.skipDeferred === 0) s.skipDeferred = next.start;
    else if (next.start > s.skipTo) {
      s.skipTo = next.start;
      s.skipSetters = next.setters;
      s.skipHeardAll = heardAll;
      s.skipDeferred = 0;
    }
    s.round = null;
  }
  const span = spanOf(r, spanStart(r), r.lastExecuted, true);
  if (!span) return;
  const round: Round = { span, startedMs: r.nowMs, shares: new Map(), bad: new Set(), refused: new Map(), asked: new Set(), widenedMs: null, checking: false, prefix: new Map(), base: null, resigning: new Set(), reasked: false };
  s.round = round;
  s.lastRoundMs = r.nowMs;
  // Ours is signed while the others sign theirs (on the host's thread, it costs this one nothing).
  const signing = r.signShare(span.message, (share) => {
    if (s.round !== round) return;
    round.shares.set(r.me, share);
    tryCombine(r, round);
  });
  // Our share and f more make f+1: ask only f others (n-1-f share signatures fewer per round, the
  // largest CPU cost of a round), in rotation so the work and the chance to catch a bad share are
  // spread over all, those that answered last time first; widenRound() asks the rest if slow.
  // Without a key share for the span's epoch (a member being replaced), f+1 others.
  s.roundCount++;
  const others = Array.from({ length: r.n - 1 }, (_, k) => (r.me + 1 + ((k + s.roundCount) % (r.n - 1))) % r.n);
  others.sort((a, b) => Number(s.slowSigners.has(a)) - Number(s.slowSigners.has(b)));
  for (const replica of others.slice(0, signing ? r.f : r.f + 1)) askShare(r, round, replica);
}

function skipSettersFor(r: Replica, round: Round): ReadonlySet<number> | null {
  const s = r.certificateState;
  return s.skipTo > 0 && round.span.from === s.skipTo ? s.skipSetters : null;
}

/**
 * Whether every other replica answered `round` (a share, a refusal, a prefix share, or a share that
 * failed its check) while too few shares came for it to complete, and the answers move where spans
 * start (nextStart): it is replaced now, not after a takeover period that could bring nothing new
 * (each replica answers a span once). Under loss, with whole-ring crashes, a certifier whose peers
 * refused its span one after another (each after a state transfer) waited a takeover period per
 * refusal, and statements two correct replicas held were given up first (giveUpStale; a ring
 * simulation with a replica sending false prefix shares, session 30). The evidence a skip needs is
 * the same either way; only the wait goes.
 */
function answeredAll(r: Replica, round: Round): boolean {
  // A prefix round ends by combining, or falls back to its widened round (prefixFailed) first.
  if (round.base || round.checking || round.widenedMs === null || heardFrom(r, round) < r.n - 1) return false;
  const others = [...round.shares.keys()].filter((replica) => replica !== r.me).length;
  if (others + 1 >= r.config.certificateSigner.threshold) return false;
  return nextStart(r, round, skipSettersFor(r, round)).start > r.certificateState.skipTo;
}

/**
 * How many other replicas answered `round`: a share, a refusal, a prefix share, or a share that
 * failed its check. answeredAll and tryPrefix count alike (the session-30 review: tryPrefix left
 * out the bad ones, so a liar's corrupt share let answeredAll replace a round, and skip the prefix
 * correct replicas had signed, before tryPrefix took it).
 */
function heardFrom(r: Replica, round: Round): number {
  const heard = new Set([...round.refused.keys(), ...round.prefix.keys(), ...round.shares.keys(), ...round.bad]);
  heard.delete(r.me);
  return heard.size;
}

function askShare(r: Replica, round: Round, replica: number): void {
  const span = round.span;
  round.asked.add(replica);
  r.send(r.idOf(replica), { kind: 'sign-request', from: span.from, to: span.to, leafCount: span.leaves.length, root: span.root, replica: r.me });
}

/** A round without its f+1 shares after a few round durations asks every other replica. */
function widenRound(r: Replica): void {
  const round = r.certificateState.round;
  if (!round) return;
  if (round.base) return prefixFailed(r, round);
  if (round.widenedMs !== null) return tryPrefix(r, round);
  if (r.nowMs - round.startedMs < widenWaitMs(r)) return;
  widen(r, round);
}

/** At most half a takeover period: a round that waited longer would be replaced before it widened. */
function widenWaitMs(r: Replica): number {
  return Math.min(takeoverMs(r) / 2, Math.max(4 * r.params.certifyIntervalMs, 2 * r.certificateState.lastRoundDurationMs));
}

function widen(r: Replica, round: Round): void {
  round.widenedMs = r.nowMs;
  for (let replica = 0; replica < r.n; replica++) if (replica !== r.me && !round.asked.has(replica)) askShare(r, round, replica);
}

/**
 * A widened round that others answered with shares over prefixes of its span (they hold its
 * start but a hole cuts the rest: onSignRequest) becomes the round of a prefix: the longest that f
 * others hold, counting those whose own prefix has this replica's statements as far as it goes
 * (the same root) and those that signed the whole span. Shares over exactly that prefix count; the
 * others, whose spans end beyond it, are asked to sign it over again (with f >= 2 the correct
 * ones' holes seldom end alike: a state transfer each). This replica signs it too (its own
 * statements), and f+1 shares certify it. Waits for the widening, and then for every other
 * replica's answer or as long again as the widening waited (the replicas asked then answer
 * meanwhile), so a replica that sends prefixes (any replica may: a Byzantine one needs no hole)
 * cannot shorten a round that would complete anyway; it can delay a slow one by that wait (the
 * session-29 review: taken at the widening, one such share replaced every round by a one-batch
 * one). A liar that claims a long prefix and then does not sign it again, or whose share fails its
 * check, is dropped from the choice after two waits (prefixFailed, which asks silent ones twice):
 * at most f such choices.
 */
function tryPrefix(r: Replica, round: Round): void {
  const s = r.certificateState;
  if (s.round !== round || round.widenedMs === null || round.checking || round.prefix.size === 0) return;
  if (heardFrom(r, round) < r.n - 1 && r.nowMs - round.widenedMs < widenWaitMs(r)) return;
  const from = round.span.from;
  const consistent = [...round.prefix.values()].filter((m) => holdsPrefix(r, round, m));
  // Those that signed the whole span hold every prefix of it (asked to sign the chosen one too).
  const whole = [...round.shares.keys()].filter((replica) => replica !== r.me && !round.bad.has(replica));
  for (const end of [...new Set(consistent.map((m) => m.seq))].sort((a, b) => b - a)) {
    const holders = consistent.filter((m) => m.seq >= end);
    const span = holders.length + whole.length >= r.f ? spanOf(r, from, end) : null;
    if (!span) continue;
    const exact = holders.filter((m) => m.seq === end);
    const next: Round = {
      span, startedMs: round.startedMs, shares: new Map(exact.map((m) => [m.replica, m.share])), bad: new Set(), refused: new Map(round.refused),
      asked: new Set(round.asked), widenedMs: r.nowMs, checking: false, prefix: new Map(), base: round, resigning: new Set(), reasked: false,
    };
    s.round = next;
    for (const replica of [...holders.filter((m) => m.seq > end).map((m) => m.replica), ...whole]) {
      next.resigning.add(replica);
      askShare(r, next, replica);
    }
    const signing = r.signShare(span.message, (share) => {
      if (s.round !== next) return;
      next.shares.set(r.me, share);
      tryCombine(r, next);
    });
    if (!signing) tryCombine(r, next);
    return;
  }
}

/** Whether prefix share `m` covers this replica's own statements from the round's start to its end (the same root). */
function holdsPrefix(r: Replica, round: Round, m: Share): boolean {
  const own = spanOf(r, round.span.from, m.seq);
  return own !== null && bytesEqual(own.root, m.root);
}

/**
 * A prefix round that has not combined as long after it started as its widening waited: the
 * replicas among its f that gave no good share (asked to sign it over again and silent, or whose
 * share failed its check) are dropped from the widened round's prefixes, which is taken up again
 * for the next choice (tryPrefix), or for its takeover or skip (answeredAll). Each pass drops at
 * least one.
 */
function prefixFailed(r: Replica, round: Round): void {
  if (round.checking || round.widenedMs === null || r.nowMs - round.widenedMs < widenWaitMs(r)) return;
  // Those asked to sign it over again that said nothing are asked once more first (a request or a
  // share may have been lost: the session-30 review), and waited for as long again.
  const silent = [...round.resigning].filter((replica) => !round.shares.has(replica) && !round.bad.has(replica));
  if (silent.length > 0 && !round.reasked) {
    round.reasked = true;
    round.widenedMs = r.nowMs;
    for (const replica of silent) askShare(r, round, replica);
    return;
  }
  const base = round.base!;
  const exact = [...base.prefix.values()].filter((m) => m.seq === round.span.to).map((m) => m.replica);
  const failed = [...round.resigning, ...exact].filter((replica) => !round.shares.has(replica));
  if (failed.length > 0) fallBack(r, round, failed);
}

/**
 * Back to a prefix round's widened round without `failed`: answered (they count as heard), but
 * nothing more from them counts in it, nor are they chosen again, and a share over the whole span
 * one gave is no claim of holding its start any more (nextStart).
 */
function fallBack(r: Replica, round: Round, failed: readonly number[]): void {
  const base = round.base!;
  for (const replica of failed) {
    base.prefix.delete(replica);
    base.bad.add(replica);
  }
  r.certificateState.round = base;
  tryPrefix(r, base);
}

export function onSignRequest(r: Replica, m: SignRequest): void {
  const s = r.certificateState;
  // A replica that is no certifier asks only after its takeover wait (more than f+1 takeover
  // periods): it gets shares only for statements that stayed uncertified here that long, so a
  // Byzantine one cannot have this replica sign each span as it executes; nor is its request
  // parked for later (this replica stays silent, which never makes a round skip).
  if (certifierRank(r, m.replica) > r.f) {
    if (m.to > r.lastExecuted) return r.drop('stale');
    for (const e of s.executed.values()) {
      if (e.seq < m.from) continue;
      if (r.nowMs - e.executedMs < takeoverMs(r)) return r.drop('stale');
      break;
    }
  }
  // One share per requester at the host at a time (a requester may ask for every span end in
  // turn): the latest request that comes meanwhile waits for it, and is taken up then.
  if (s.signing.has(m.replica)) return void s.signing.set(m.replica, m);
  const signed = s.signedTo.get(m.replica);
  // The same span again is honoured only once the requester may have retried (a share was lost);
  // up to f+1 shorter ones per span end signed (prefix rounds: tryPrefix).
  const lowered = signed !== undefined && signed.to > m.to && signed.lowered <= r.f;
  if (signed && !lowered && (signed.to > m.to || (signed.to === m.to && r.nowMs - signed.atMs < takeoverMs(r) / 2))) return r.drop('stale');
  if (m.to > r.lastExecuted) {
    // Not executed here yet: sign when it is (one parked request per requester bounds the memory).
    if (m.to <= r.lastExecuted + 2 * r.params.watermarkWindow) s.parked.set(m.replica, m);
    return;
  }
  let span = spanOf(r, m.from, m.to);
  if (!span) {
    // Statements from m.from on are gone here: say where ours start, so a certifier that asks
    // only for spans nobody else can sign any more learns to skip (nextStart).
    const floor = ownFloor(r);
    if (m.from < floor) {
      r.send(r.idOf(m.replica), { kind: 'share-refused', to: m.to, floor, replica: r.me });
      return r.drop('stale');
    }
    // A hole in the span (a state transfer skipped those batches here): where ours go on above it,
    // and a share over the prefix below it that this replica holds (tryPrefix), if any.
    const hole = holeIn(r, m.from, m.to);
    if (!hole) return r.drop('stale');
    r.send(r.idOf(m.replica), { kind: 'share-refused', to: m.to, floor: pastHoles(r, hole.to + 1), replica: r.me });
    span = hole.from > m.from ? spanOf(r, m.from, hole.from - 1) : null;
    if (!span) return r.drop('stale');
  } else if (span.leaves.length !== m.leafCount || !bytesEqual(span.root, m.root)) {
    // A different root means the requester's statements differ from ours: no share for it.
    return r.drop('bad-proof');
  }
  const signedSpan = span;
  s.signedTo.set(m.replica, lowered ? { ...signed!, lowered: signed!.lowered + 1 } : { to: m.to, atMs: r.nowMs, lowered: 0 });
  s.signing.set(m.replica, null);
  // A requester's round waits for this share. A long span means a busy ring, whose event loop
  // would hold the host's answer behind many frames, while the ~2 ms here are little per update:
  // signed in this step then; a short one (a quiet ring) on the host's thread, if it has one.
  const signing = r.signShare(signedSpan.message, (signature) => {
    const share: Share = { kind: 'share', seq: signedSpan.to, root: signedSpan.root, replica: r.me, share: signature };
    r.send(r.idOf(m.replica), share);
    const next = s.signing.get(m.replica);
    s.signing.delete(m.replica);
    if (next) onSignRequest(r, next);
  }, span.leaves.length >= shareHereLeavesMin);
  // No key share for the span's epoch: nothing to send (the requester asks others when slow).
  if (!signing) s.signing.delete(m.replica);
}

export function onShareRefused(r: Replica, m: ShareRefused): void {
  const round = r.certificateState.round;
  // A refusal counts only for the round asked, from a replica it asked (one that was not would
  // widen every round: the session-30 review), and only if it names a floor the span starts below.
  if (!round || round.span.to !== m.to || !round.asked.has(m.replica) || m.floor <= round.span.from || round.shares.has(m.replica) || round.bad.has(m.replica)) return r.drop('stale');
  // One asked to sign a prefix round over again that refuses is dropped from the choice at once
  // (its floor recorded in the round taken up again: the fourth review).
  if (round.base && round.resigning.has(m.replica)) {
    round.base.refused.set(m.replica, m.floor);
    return fallBack(r, round, [m.replica]);
  }
  round.refused.set(m.replica, m.floor);
  // One of the f asked cannot sign: ask the rest now rather than after the widening wait.
  if (round.widenedMs === null) widen(r, round);
}

export function onShare(r: Replica, m: Share): void {
  const round = r.certificateState.round;
  if (round && m.seq >= round.span.from && m.seq < round.span.to && m.replica !== r.me && !round.shares.has(m.replica) && !round.bad.has(m.replica)) {
    round.prefix.set(m.replica, m);
    return tryPrefix(r, round);
  }
  if (!round || round.span.to !== m.seq || round.shares.has(m.replica) || round.bad.has(m.replica)) return r.drop('stale');
  if (!bytesEqual(m.root, round.span.root)) return r.drop('bad-proof');
  round.shares.set(m.replica, m.share);
  round.refused.delete(m.replica);
  tryCombine(r, round);
}

/**
 * Combines the first f+1 shares (ours first) and checks the result: one pairing when every share is
 * good. A failed check finds the bad shares one by one (inline: the Byzantine case), drops them and
 * tries again with the rest, so each retry has at least one share fewer and at most n follow. The
 * combination and its check may be the host's (a later step): the round may be gone by then, and
 * the result is dropped with it.
 */
function tryCombine(r: Replica, round: Round): void {
  const signer = r.config.certificateSigner;
  const span = round.span;
  if (round.checking || round.shares.size < signer.threshold) return;
  const order = [...round.shares.keys()].sort((a, b) => (a === r.me ? -1 : b === r.me ? 1 : a - b));
  const picked = order.slice(0, signer.threshold).map((replica) => ({ replica, share: round.shares.get(replica)! }));
  round.checking = true;
  r.combineShares(span.message, picked, (signature, valid) => {
    round.checking = false;
    const s = r.certificateState;
    if (s.round !== round) return;
    if (valid) {
      s.round = null;
      s.slowSigners = new Set([...round.asked].filter((replica) => !round.shares.has(replica)));
      s.lastRoundDurationMs = Math.min(r.nowMs - round.startedMs, takeoverMs(r));
      certified(r, span, signature);
      sendToClients(r, span, signature);
      r.broadcast({ kind: 'span-certified', from: span.from, to: span.to, leafCount: span.leaves.length, root: span.root, signature, replica: r.me });
      return;
    }
    let dropped = 0;
    for (const p of picked) {
      if (signer.verifyShare(p.replica, span.message, p.share)) continue;
      round.shares.delete(p.replica);
      round.bad.add(p.replica);
      dropped++;
      r.emit({ kind: 'bad-share', replica: r.me, sender: p.replica, seq: span.to });
    }
    // Good shares that do not combine cannot happen; if they seem to, wait for a takeover, not a loop.
    if (dropped > 0) tryCombine(r, round);
  });
}

/** A span another replica certified: checked here before this replica's tree root and archiver use it. */
export function onSpanCertified(r: Replica, m: SpanCertified): void {
  const s = r.certificateState;
  // Only the certifiers (ranks 0..f) check it (a pairing each) and hand it on, to their clients,
  // their tree roots (which share the signature with the other ring servers': replica/) and, once
  // checked, to every replica as a claim of their own. The others keep it as a claim, unchecked:
  // f+1 matching claims include a correct certifier's (learnCertified), and a single one, perhaps a
  // Byzantine replica's, can never make them forget what a backup certifier will ask them to sign.
  if (m.to <= s.certifiedThrough) return;
  if (certifierRank(r, r.me) > r.f) return noteClaim(r, m);
  // One pairing in flight per sender (a Byzantine replica cannot queue up checks): its next spans
  // wait for the verdict, since each starts where the one being checked ends.
  const waiting = s.spanChecks.get(m.replica);
  if (waiting) {
    if (waiting.length >= spanChecksWaitingMax) return r.drop('busy');
    waiting.push(m);
    return;
  }
  // A gap below `from` stays ours to certify: the span waits until a round of ours (or a backup's)
  // covers the gap, or one that stalls on refusals gives it up (nextStart). Taking it then matters:
  // our start moves to where the sender's statements now start; dropped, its higher floor looked
  // like a lie at the next stall, which gave up statements the sender still held (seed 385).
  if (m.from > spanStart(r) || m.to > r.lastExecuted) {
    if (m.to <= r.lastExecuted + 2 * r.params.watermarkWindow) s.parkedCertified.set(m.replica, m);
    return;
  }
  const span = spanOf(r, m.from, m.to);
  if (!span || span.leaves.length !== m.leafCount || !bytesEqual(span.root, m.root)) return r.drop('stale');
  s.spanChecks.set(m.replica, []);
  r.checkCertificate(span.message, m.signature, (valid) => {
    const next = s.spanChecks.get(m.replica) ?? [];
    s.spanChecks.delete(m.replica);
    // The view may have changed, or another span been certified, while the host checked this one.
    if (!valid) r.drop('bad-proof');
    else if (m.to > s.certifiedThrough && certifierRank(r, r.me) <= r.f) {
      certified(r, span, m.signature);
      // The sender may be the one certifier that lies to clients: ours is a copy they can trust.
      sendToClients(r, span, m.signature);
      // Our claim beside the sender's, to the non-certifiers: they learn the span from f+1 of them
      // (the certifiers check for themselves, so they get no copies to check again).
      for (let replica = 0; replica < r.n; replica++) if (certifierRank(r, replica) > r.f) r.send(r.idOf(replica), { ...m, replica: r.me });
    }
    for (const later of next) onSpanCertified(r, later);
  });
}

/** A non-certifier keeps the latest few claims of each sender (bounded: n x claimsPerSenderMax). */
function noteClaim(r: Replica, m: SpanCertified): void {
  const claims = r.certificateState.claims;
  const kept = claims.get(m.replica) ?? [];
  if (kept.some((k) => k.from === m.from && k.to === m.to && bytesEqual(k.root, m.root))) return;
  if (kept.length >= claimsPerSenderMax) kept.shift();
  kept.push(m);
  claims.set(m.replica, kept);
}

/**
 * A non-certifier's certified prefix from its claims: while f+1 senders name one span that starts
 * at or below where this replica's spans start and ends in what it executed, everything through
 * its end is certified (one of them is a correct certifier that checked the signature). Its
 * statements there are forgotten, with no certificate output: the certifiers made those. Where its
 * spans start is its floor, or above it once a round of its own that every other replica answered
 * stalled on refusals (nextStart; skipHeardAll): statements it held again at a restart that the
 * others certified while it was down are given up so, where claims starting above its floor would
 * otherwise never be taken. After a skip that f replicas did not answer, the floor stays: they may
 * be the other holders of what was skipped, and this replica the last one besides them.
 */
function learnCertified(r: Replica): void {
  const s = r.certificateState;
  if (s.claims.size === 0) return;
  // Each span taken raises certifiedThrough, so the loop ends within the claims held.
  for (let to = claimedByFPlusOne(r); to !== null; to = claimedByFPlusOne(r)) forgetThrough(r, to);
  for (const [sender, kept] of s.claims) {
    const live = kept.filter((m) => m.to > s.certifiedThrough);
    if (live.length === 0) s.claims.delete(sender);
    else s.claims.set(sender, live);
  }
}

/** The end of a span that f+1 senders claim, starting at or below where this replica's spans start and executed here, if any. */
function claimedByFPlusOne(r: Replica): number | null {
  const s = r.certificateState;
  const start = s.skipHeardAll ? spanStart(r) : ownFloor(r);
  const senders = new Map<string, Set<number>>();
  for (const [sender, kept] of s.claims) {
    for (const m of kept) {
      if (m.to <= s.certifiedThrough || m.from > start || m.to > r.lastExecuted) continue;
      const key = `${m.from}:${m.to}:${m.leafCount}:${toHex(m.root)}`;
      const set = senders.get(key) ?? new Set<number>();
      set.add(sender);
      senders.set(key, set);
      if (set.size > r.f) return m.to;
    }
  }
  return null;
}

/** Everything through `to` is certified: statements there are forgotten, and a round they cover ends. */
function forgetThrough(r: Replica, to: number): void {
  const s = r.certificateState;
  if (to + 1 >= s.skipTo) {
    s.skipTo = 0;
    s.skipSetters = new Set();
    s.skipHeardAll = false;
    s.skipDeferred = 0;
  }
  s.certifiedThrough = Math.max(s.certifiedThrough, to);
  forgetStored(r, to);
  dropHoles(r);
  if (s.round && s.round.span.to <= to) s.round = null;
}

function certified(r: Replica, span: Span, signature: Uint8Array): void {
  forgetThrough(r, span.to);
  // A replica that took over is listed too: the view's certifiers may never have had the span.
  const certifiers = Array.from({ length: r.f + 1 }, (_, rank) => r.config.members[(r.primary + rank) % r.n]!.id);
  if (certifierRank(r, r.me) > r.f) certifiers.push(r.config.members[r.me]!.id);
  r.emit({ kind: 'certificate', replica: r.me, seq: span.to, root: span.root, signature, statements: span.leaves.map((l) => l.statement), certifiers });
}

/** Sends each leaf's certificate to its client and keeps it for re-sends (`send` false: keeps it only), in memory and in the store. */
function sendToClients(r: Replica, span: Span, signature: Uint8Array, send = true): void {
  const sent: SentSpan['sent'][number][] = [];
  span.leaves.forEach((leaf, leafIndex) => {
    if (!leaf.clientKey) return;
    const path = span.tree.pathOf(leafIndex);
    const m = certificateMessage(span.to, span.epoch, span.root, signature, span.leaves.length, leaf, leafIndex, path);
    if (send) r.send(leaf.replyTo, m);
    keepSent(r, leaf.replyTo, m);
    sent.push({ leaf, leafIndex, path });
  });
  keepSpan(r, { to: span.to, epoch: span.epoch, root: span.root, signature, leafCount: span.leaves.length, sent });
}

function certificateMessage(to: number, epoch: number, root: Uint8Array, signature: Uint8Array, leafCount: number, leaf: Leaf, leafIndex: number, path: readonly Uint8Array[]): CertificateMessage {
  return { kind: 'certificate', seq: to, epoch, clientKey: leaf.clientKey!, nonce: leaf.nonce, statement: leaf.statement, leafIndex, leafCount, path, root, signature };
}

/**
 * Keeps a span's client certificates in the store (held like execution's writes: a record lost in
 * a crash only costs what the memory-only copy always did), dropping the oldest spans beyond
 * sentToClientsMax client certificates.
 */
function keepSpan(r: Replica, span: SentSpan): void {
  const count = span.sent.length;
  const s = r.certificateState;
  const kept = s.sentSpans;
  if (count === 0) return;
  // Spans come in order of their ends, nearly always: the usual case appends.
  let at = kept.length;
  while (at > 0 && kept[at - 1]!.to > span.to) at--;
  if (at > 0 && kept[at - 1]!.to === span.to) return;
  kept.splice(at, 0, { to: span.to, count });
  s.sentCount += count;
  const gone: number[] = [];
  while (kept.length > 1 && s.sentCount > sentToClientsMax) {
    const oldest = kept.shift()!;
    s.sentCount -= oldest.count;
    gone.push(oldest.to);
  }
  r.deferred.hold(() => {
    if (!gone.includes(span.to)) saveSent(r.ctx.store, span);
    for (const to of gone) r.ctx.store.delete(sentRecordKey(to));
  });
}

/** After a restart: the kept spans' certificates are ready to re-send again. */
export function recoverSent(r: Replica, spans: readonly SentSpan[]): void {
  for (const span of spans) {
    r.certificateState.sentSpans.push({ to: span.to, count: span.sent.length });
    r.certificateState.sentCount += span.sent.length;
    for (const c of span.sent) {
      if (!c.leaf.clientKey) continue;
      keepSent(r, c.leaf.replyTo, certificateMessage(span.to, span.epoch, span.root, span.signature, span.leafCount, c.leaf, c.leafIndex, c.path));
    }
  }
}

/**
 * Statements far below the execution point are given up on here (the archive's repair covers
 * their versions); this bounds the memory a stalled certifier can cost. Only once every rank has
 * had its turn at them, twice over (each takes over rank x certifyTakeoverMs after the batch
 * executed): until session 29 the distance alone decided, and a ring executing more than
 * 2 x watermarkWindow batches in one takeover period (128 in 3 s at the runtime's settings) gave
 * up, on every replica, statements whose certifier had skipped them by a state transfer before
 * the next rank's turn came: updates acknowledged to their clients and never certified (found by
 * a simulator sweep: test/ring/certificate-give-up.test.ts). What it costs: the statements of
 * 2n takeover periods (24 s at the runtime's settings) are held when no certificate comes.
 */
function giveUpStale(r: Replica): void {
  const s = r.certificateState;
  const floor = r.lastExecuted - 2 * r.params.watermarkWindow;
  if (s.certifiedThrough >= floor) return;
  const giveUpMs = 2 * r.n * takeoverMs(r);
  let through = floor;
  // Held in execution order (onExecuted, recoverStatements).
  for (const e of s.executed.values()) {
    if (e.seq > floor) break;
    if (r.nowMs - e.executedMs < giveUpMs) {
      through = e.seq - 1;
      break;
    }
  }
  if (through > s.certifiedThrough) resetBelow(r, through);
}

const sentKey = (clientKey: Uint8Array, nonce: number): string => `${toHex(clientKey)}:${nonce}`;

function keepSent(r: Replica, replyTo: string, message: CertificateMessage): void {
  const sent = r.certificateState.sentToClients;
  const key = sentKey(message.clientKey, message.nonce);
  sent.delete(key); // re-inserted last
  sent.set(key, { message, replyTo, resentMs: -Infinity });
  if (sent.size > sentToClientsMax) sent.delete(sent.keys().next().value as string);
}

/**
 * A client asks again for a certificate it has not had: re-sent only to the address it was sent
 * to (so nobody can have a client's certificates sent elsewhere) and only if this replica sent it
 * (a map lookup: asking costs a replica no cryptography).
 */
export function onCertificateRequest(r: Replica, from: string, m: CertificateRequest): void {
  const kept = r.certificateState.sentToClients.get(sentKey(m.clientKey, m.nonce));
  if (!kept || kept.replyTo !== from || r.nowMs - kept.resentMs < resendIntervalMs) return r.drop('stale');
  kept.resentMs = r.nowMs;
  r.send(from, kept.message);
}

export function onTick(r: Replica): void {
  widenRound(r);
  maybeStartRound(r);
  takeUpParkedCertified(r);
  giveUpStale(r);
  for (const [replica, m] of r.certificateState.parked) if (m.to > r.lastExecuted + 2 * r.params.watermarkWindow) r.certificateState.parked.delete(replica);
}
