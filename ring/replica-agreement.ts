/**
 * The normal case of PBFT (OSDI'99 §4.2) over the replica's state: a backup checks the primary's
 * pre-prepare, every replica collects 2f matching prepares (prepared: its proof is persisted before
 * its commit leaves) and 2f+1 matching commits (committed: the batch executes in order), and a
 * lagging replica accepts a decided slot from a relayed commit proof. ring/replica.ts dispatches
 * here and keeps acceptPrePrepare, which the primary's own proposals and a new view also use.
 */
import { bytesEqual } from '../core/bytes.ts';
import type { Commit, CommitProof, PrePrepare, Prepare } from './messages.ts';
import { primaryOf } from './config.ts';
import * as blocks from './replica-blocks.ts';
import type { Replica, Slot } from './replica.ts';

export interface AgreementState {
  /** Commits whose signatures this replica has checked (or made): relayable as proof as they are. */
  readonly checkedCommits: WeakSet<Commit>;
  /** Replicas that sent a commit whose signature failed once relayed: their commits are checked on arrival. */
  readonly checkOnArrival: Set<number>;
  /**
   * Pre-prepares of the current view for slots past this replica's vote ceiling, taken up as
   * execution catches up, already checked: the primary's (batchValid) or the new view's
   * re-proposals (checked with the new view; accepted without the blocks check, as install()
   * does). One per seq, the first; at most a watermark window of them; cleared on a view change.
   * receivedMs: when this replica first received it, which its timestamp is judged from (behindClock).
   */
  readonly parked: Map<number, { readonly prePrepare: PrePrepare; readonly reProposal: boolean; readonly receivedMs: number }>;
  /**
   * When this replica first received each pre-prepare it dropped for missing blocks (by seq, the
   * first digest only): the primary's retransmission brings it back, with its original timestamp,
   * once the blocks are here, perhaps many seconds later, and its lateness is judged from the first
   * receipt (behindClock). Removed once the slot is accepted, pruned below the stable checkpoint
   * on each addition (so at most a watermark window), cleared on a view change.
   */
  readonly firstReceived: Map<number, { readonly digest: Uint8Array; readonly atMs: number }>;
}

export function initialState(): AgreementState {
  return { checkedCommits: new WeakSet(), checkOnArrival: new Set(), parked: new Map(), firstReceived: new Map() };
}

/** A view change: pre-prepares of the old view waiting here are void (the new view re-proposes what was prepared). */
export function clearOnViewChange(r: Replica): void {
  r.agreementState.parked.clear();
  r.agreementState.firstReceived.clear();
}

export function onPrePrepare(r: Replica, pp: PrePrepare): void {
  if (!r.viewActive || pp.view !== r.view) return r.drop('wrong-view');
  if (pp.seq <= r.stableSeq || pp.seq > r.highWatermark) return r.drop('out-of-window');
  // Not yet (Replica.voteCeiling): kept (if the primary signed it) until execution has caught up.
  if (pp.seq > r.voteCeiling) return park(r, pp);
  if (holdsAnother(r, pp)) return;
  if (!pp.batch || !r.batchValid(pp)) return r.drop('bad-batch');
  const receivedMs = firstReceivedMs(r, pp);
  const refusal = timestampRefusal(r, pp, receivedMs);
  if (refusal) return refuseTimestamp(r, pp, refusal);
  acceptChecked(r, pp, receivedMs);
}

function timestampRefusal(r: Replica, pp: PrePrepare, receivedMs: number): 'future-timestamp' | 'past-timestamp' | null {
  if (aheadOfClock(r, pp)) return 'future-timestamp';
  if (behindClock(r, pp, receivedMs)) return 'past-timestamp';
  return null;
}

/**
 * The batch timestamp is the primary's non-deterministic choice, which PBFT has backups check
 * before they vote for it: here, against their own clock. Execution keeps the highest timestamp
 * ever agreed, and heartbeat certificates carry it to readers' freshness checks, so one stamped
 * far ahead would pin the ring's clock there for good. Only new proposals are checked (here and when parked): a
 * batch re-proposed in a new view was prepared before and keeps its old, lower, timestamp, and a
 * decided batch (commit proof) is executed whatever its timestamp.
 */
function aheadOfClock(r: Replica, pp: PrePrepare): boolean {
  return pp.batch!.timestampMs > r.nowMs + r.params.timestampAheadMaxMs;
}

/**
 * The other side: a batch stamped far behind would freeze the ring's clock (execution keeps the
 * highest timestamp), so heartbeat certificates would carry an old time and readers' freshness
 * checks and the dissemination tree's (replica/parent-link.ts isTimely) would fail against an
 * honest ring. Judged from when this replica first received the pre-prepare, not now: the honest
 * delays after that (a block fetch before the primary's retransmission, a wait above the vote
 * ceiling) are this replica's, not the primary's. The same exemptions as ahead: re-proposals and
 * decided batches are never judged.
 */
function behindClock(r: Replica, pp: PrePrepare, receivedMs: number): boolean {
  return pp.batch!.timestampMs < receivedMs - r.params.timestampBehindMaxMs;
}

/** When this replica first received this pre-prepare: now, unless it was dropped for missing blocks before. */
function firstReceivedMs(r: Replica, pp: PrePrepare): number {
  const seen = r.agreementState.firstReceived.get(pp.seq);
  return seen && bytesEqual(seen.digest, pp.digest) ? seen.atMs : r.nowMs;
}

function noteFirstReceived(r: Replica, pp: PrePrepare, atMs: number): void {
  const seen = r.agreementState.firstReceived;
  if (seen.has(pp.seq)) return;
  for (const seq of seen.keys()) if (seq <= r.stableSeq) seen.delete(seq);
  seen.set(pp.seq, { digest: pp.digest, atMs });
}

/**
 * A validly signed pre-prepare with a timestamp this backup will not agree to: like a bad one it
 * gets no prepare, and the slot goes on the withheld timer once it is the next to execute here
 * (Replica.refusedTimestamps), so the view changes if it does not execute anyway (the others may
 * find the time right: then this replica learns the slot from commit proofs and suspects nobody).
 * A heartbeat-only batch puts no request on the request timer. Not sooner: a faulty primary could
 * otherwise push one correct backup out of the view alone with a future-stamped pre-prepare for a
 * slot it has not filled for the others.
 */
function refuseTimestamp(r: Replica, pp: PrePrepare, reason: 'future-timestamp' | 'past-timestamp'): void {
  r.drop(reason);
  r.refusedTimestamps.add(pp.seq);
}

/** The slot already holds a pre-prepare (a different digest is the primary equivocating: dropped). */
function holdsAnother(r: Replica, pp: PrePrepare): boolean {
  const held = r.slot(pp.seq).prePrepare;
  if (held && !bytesEqual(held.digest, pp.digest)) r.drop('conflicting-pre-prepare');
  return held !== null;
}

/** A checked pre-prepare, first received at receivedMs: accepted once its blocks are here. */
function acceptChecked(r: Replica, pp: PrePrepare, receivedMs: number): void {
  const missing = blocks.missingForBatch(r, pp.batch!);
  if (missing.length > 0) {
    // Prepare only with the blocks in hand; the primary's retransmission brings the pre-prepare back.
    blocks.requestBlocks(r, missing, 'agreement');
    noteFirstReceived(r, pp, receivedMs);
    return r.drop('missing-blocks');
  }
  r.agreementState.firstReceived.delete(pp.seq);
  r.acceptPrePrepare(pp);
}

/**
 * Keeps a pre-prepare this replica may not vote on yet, checked now (anyone can send a
 * pre-prepare; the primary's signature and the requests' are checked once, here), and only the
 * first for a seq (a second valid one is the primary equivocating; the first is as good as any).
 * Its blocks are checked when it is taken up.
 */
function park(r: Replica, pp: PrePrepare): void {
  const parked = r.agreementState.parked;
  if (parked.has(pp.seq)) return;
  if (!pp.batch || !r.batchValid(pp)) return r.drop('bad-batch');
  const receivedMs = firstReceivedMs(r, pp);
  const refusal = timestampRefusal(r, pp, receivedMs);
  if (refusal) return refuseTimestamp(r, pp, refusal);
  parked.set(pp.seq, { prePrepare: pp, reProposal: false, receivedMs });
}

/** Takes up parked pre-prepares that are now within the vote ceiling (after execution or a new view). */
export function takeUpParked(r: Replica): void {
  const parked = r.agreementState.parked;
  if (parked.size === 0) return;
  for (const seq of parked.keys()) if (seq <= r.stableSeq) parked.delete(seq);
  const ceiling = r.voteCeiling;
  for (let seq = r.stableSeq + 1; seq <= ceiling && parked.size > 0; seq++) {
    const entry = parked.get(seq);
    if (!entry) continue; // none, or taken up meanwhile (accepting can execute, and execution takes up parked ones)
    parked.delete(seq);
    if (seq <= r.stableSeq) continue; // passed by a checkpoint taken up meanwhile
    const pp = entry.prePrepare;
    if (holdsAnother(r, pp)) continue;
    // A new view's re-proposal is accepted as install() would have; nobody retransmits it.
    if (entry.reProposal) r.acceptPrePrepare(pp);
    else acceptChecked(r, pp, entry.receivedMs);
  }
}

export function onPrepare(r: Replica, p: Prepare): void {
  if (!r.viewActive || p.view !== r.view) return r.drop('wrong-view');
  if (p.seq <= r.stableSeq || p.seq > r.highWatermark) return r.drop('out-of-window');
  if (p.replica === primaryOf(p.view, r.n)) return r.drop('bad-proof');
  const s = r.slot(p.seq);
  // Once prepared in this view, further prepares add nothing: skip their signature check.
  if (s.prepares.has(p.replica) || (s.prepared && s.prepared.prePrepare.view === r.view)) return;
  if (!r.signedByReplica(p)) return r.drop('bad-signature');
  s.prepares.set(p.replica, p);
  checkPrepared(r, s);
}

export function checkPrepared(r: Replica, s: Slot): void {
  const pp = s.prePrepare;
  if (!pp || pp.view !== r.view || (s.prepared && s.prepared.prePrepare.view === r.view)) return;
  const matching = [...s.prepares.values()].filter((p) => p.view === pp.view && bytesEqual(p.digest, pp.digest));
  if (matching.length < 2 * r.f) return;
  s.prepared = { prePrepare: pp, prepares: matching.slice(0, 2 * r.f) };
  r.persistSlot(s);
  const commit = r.sign({ kind: 'commit', view: pp.view, seq: pp.seq, digest: pp.digest, replica: r.me }) as Commit;
  r.agreementState.checkedCommits.add(commit);
  s.commits.set(r.me, commit);
  r.broadcast(commit);
  checkCommitted(r, s);
}

/**
 * With a host that guarantees channel integrity (ReplicaConfig.channelIntegrity), a commit counts
 * toward this replica's own decision on the strength of the channel it came on: one that arrives
 * from the replica it names is that replica's vote whatever its signature, as a commit carrying
 * PBFT's MAC authenticator is. Its signature matters only to a third party, when the commit is
 * relayed inside a commit proof, and is checked then (relayableCommitProof). That is 2f signature
 * checks fewer per replica per batch. Prepares are still checked on arrival: a prepared proof goes
 * into view-change messages, and one with a bad signature in it would be rejected there. Without
 * the guarantee (a host over bare connections) every commit is checked on arrival: a forged commit
 * could otherwise make a replica execute a batch that was only prepared.
 */
export function onCommit(r: Replica, c: Commit, from: string): void {
  if (!r.viewActive || c.view !== r.view) return r.drop('wrong-view');
  if (c.seq <= r.stableSeq || c.seq > r.highWatermark) return r.drop('out-of-window');
  const s = r.slot(c.seq);
  if (s.commits.has(c.replica) || s.committed) return;
  const fromSigner = r.config.channelIntegrity === true && c.replica >= 0 && c.replica < r.n && from === r.idOf(c.replica);
  if (!fromSigner || r.agreementState.checkOnArrival.has(c.replica)) {
    if (!r.signedByReplica(c)) return r.drop('bad-signature');
    r.agreementState.checkedCommits.add(c);
  }
  s.commits.set(c.replica, c);
  checkCommitted(r, s);
}

/**
 * The slot's commit proof if every commit in it carries a valid signature (checked now if it was
 * taken on its channel, or read back from disk after a restart), else null: a peer would reject it. The replica whose commit failed has
 * its commits checked on arrival from then on, so it can spoil the proofs of a bounded number of
 * slots; a peer that cannot get a slot's proof catches up by state transfer.
 */
export function relayableCommitProof(r: Replica, proof: CommitProof): CommitProof | null {
  // Without channel integrity every commit was checked on arrival (or came in a checked proof).
  if (r.config.channelIntegrity !== true) return proof;
  for (const c of proof.commits) {
    if (r.agreementState.checkedCommits.has(c)) continue;
    if (!r.signedByReplica(c)) {
      r.agreementState.checkOnArrival.add(c.replica);
      r.drop('bad-signature');
      return null;
    }
    r.agreementState.checkedCommits.add(c);
  }
  return proof;
}

export function checkCommitted(r: Replica, s: Slot): void {
  const pp = s.prePrepare;
  if (s.committed || !pp || !s.prepared || s.prepared.prePrepare.view !== pp.view) return;
  const matching = [...s.commits.values()].filter((c) => c.view === pp.view && bytesEqual(c.digest, pp.digest));
  if (matching.length < r.quorum) return;
  s.committed = { kind: 'commit-proof', prePrepare: pp, commits: matching.slice(0, r.quorum) };
  // Held like execution's writes: our prepared proof is already durable, and so are those of
  // the 2f others whose commits decided the slot.
  r.deferred.hold(() => r.persistSlot(s));
  r.executeReady();
}

/** A decided slot relayed by a peer (catch-up after loss or a crash): 2f+1 commits prove it. */
export function onCommitProof(r: Replica, proof: CommitProof): void {
  const seq = proof.prePrepare.seq;
  if (seq <= r.lastExecuted || seq <= r.stableSeq || seq > r.lastExecuted + 2 * r.params.watermarkWindow) {
    return r.drop('stale');
  }
  const s = r.slot(seq);
  if (s.committed) return;
  if (!commitProofValid(r, proof)) return r.drop('bad-proof');
  for (const c of proof.commits) r.agreementState.checkedCommits.add(c);
  s.committed = proof;
  for (const req of proof.prePrepare.batch!.requests) r.inFlight.set(r.requestKey(req), seq);
  r.persistSlot(s);
  r.executeReady();
}

export function commitProofValid(r: Replica, proof: CommitProof): boolean {
  const pp = proof.prePrepare;
  const seen = new Set<number>();
  for (const c of proof.commits) {
    if (c.view !== pp.view || c.seq !== pp.seq || !bytesEqual(c.digest, pp.digest) || seen.has(c.replica)) return false;
    if (!r.signedByReplica(c)) return false;
    seen.add(c.replica);
  }
  return seen.size >= r.quorum && r.batchValid(pp);
}
