/**
 * View change and new view (Castro & Liskov TOCS'02 §4.4–4.5). A backup that waits too long for
 * a request it knows suspects the primary and moves to view v+1: it stops accepting normal-case
 * messages and broadcasts a signed view-change carrying its stable checkpoint proof and its
 * prepared proofs. The primary of v+1 gathers 2f+1 of them and sends a new-view whose
 * pre-prepares anyone can recompute from them (proofs.ts newViewProposals). A replica that sees
 * f+1 view changes for higher views joins the smallest, so a correct quorum follows quickly. If
 * the new view does not arrive in time the replica tries the next view, doubling the timeout.
 * That timer runs only once 2f+1 replicas (itself included) are known to want this view or a
 * later one (TOCS'02 §4.5.2, first rule, counting later views too): a replica alone in a higher
 * view waits there for the others instead of climbing ever higher ahead of them, and the others,
 * counting it, time out up to its view.
 */
import type { NewView, PrePrepare, ViewChange } from './messages.ts';
import { newViewProposals, newViewValid, viewChangeValid, type Proposal } from './proofs.ts';
import type { Replica } from './replica.ts';
import * as agreement from './replica-agreement.ts';
import { becomeStable } from './replica-checkpoints.ts';
import { saveView } from './replica-store.ts';

export interface ViewChangeState {
  /** Latest valid view change per sender. */
  readonly received: Map<number, ViewChange>;
  mine: ViewChange | null;
  deadlineMs: number;
  timeoutMs: number;
  /** The new-view that installed the current view (resent to replicas that missed it). */
  newView: NewView | null;
  /**
   * When a request this replica waits on last executed (request timer, TOCS'02 §4.5.2). The primary
   * is suspected when nothing it waits on has executed for requestTimeoutMs, so a backlog that
   * drains (in whatever order) never looks like a faulty primary; and, so that progress on other
   * requests cannot hide a left-out one, when one waits longer than fairnessTimeouts timeouts.
   */
  progressMs: number;
  /** Per member: when this replica last answered a stale view change of its with the new view. */
  readonly staleAnswered: Map<number, number>;
}

/** A pending request older than this many request timeouts suspects the primary, progress or not. */
const fairnessTimeouts = 8;

const timeoutDoublingsMax = 4;

export function initialState(): ViewChangeState {
  return { received: new Map(), mine: null, deadlineMs: Infinity, timeoutMs: 0, newView: null, progressMs: 0, staleAnswered: new Map() };
}

export function recover(r: Replica): void {
  r.viewChangeState.timeoutMs = r.params.viewChangeTimeoutMs;
  // A replica that crashed mid view change rebuilds its view-change message and resends it.
  if (!r.viewActive) startViewChange(r, r.view);
}

/**
 * Starts the view-change timer for the view this replica is changing to once 2f+1 replicas (its
 * own view change included) are known to want that view or a later one.
 */
function armTimer(r: Replica): void {
  const s = r.viewChangeState;
  if (r.viewActive || s.deadlineMs !== Infinity) return;
  let atOrAbove = 0;
  for (const m of s.received.values()) if (m.newView >= r.view) atOrAbove++;
  if (atOrAbove >= r.quorum) s.deadlineMs = r.nowMs + s.timeoutMs;
}

export function onTick(r: Replica): void {
  const s = r.viewChangeState;
  if (!r.viewActive) {
    if (r.nowMs >= s.deadlineMs) startViewChange(r, r.view + 1);
    else checkNewView(r);
    return;
  }
  if (r.isPrimary) return;
  if (r.withheld !== null && (r.lastExecuted >= r.withheld.seq || r.withheld.sinceMs > r.nowMs)) r.withheld = null;
  // A slot whose pre-prepare this replica refused for its timestamp goes on the withheld timer
  // only once the primary has filled it or a later slot for the others (filledFrom): a faulty
  // primary that sends one backup a future-stamped pre-prepare for a slot it has not filled (and
  // may never fill) must not have that backup leave the view alone while it keeps the others
  // going. Once filled, either the others decide the slot (a commit proof comes within a status
  // period) or nothing executes past it anywhere and the view should change.
  if (r.refusedTimestamps.size > 0) {
    for (const seq of r.refusedTimestamps) if (seq <= r.lastExecuted) r.refusedTimestamps.delete(seq);
    const lowest = Math.min(...r.refusedTimestamps);
    if (r.refusedTimestamps.size > 0 && filledFrom(r, lowest)) {
      r.refusedTimestamps.delete(lowest);
      r.noteWithheld(lowest);
    }
  }
  if (r.withheld !== null && r.nowMs - r.withheld.sinceMs > r.params.requestTimeoutMs) {
    r.withheld = null;
    return startViewChange(r, r.view + 1);
  }
  // Requests done meanwhile (executed here, or passed by a state transfer) are progress. The timers
  // run on each client's lowest pending request only: a client's requests execute in nonce order,
  // so its later ones could not have been served before.
  for (const [hex, p] of [...r.pending.lowest()]) {
    const executed = r.clients.get(hex)?.nonce ?? -1;
    if (executed >= p.request.nonce && r.pending.settle(hex, executed, r.nowMs) > 0) s.progressMs = r.nowMs;
  }
  let oldestMs = Infinity;
  let overdue = false;
  for (const [, p] of r.pending.lowest()) {
    oldestMs = Math.min(oldestMs, p.sinceMs);
    if (r.nowMs - p.sinceMs > r.params.requestTimeoutMs && r.service.mustNotWait?.(p.request.clientKey, p.request.operation)) overdue = true;
    // Relayed to the primary once more halfway through the timeout: the primary may have let it
    // go (pushed out, while its blocks were still on the way, by a client's own requests waiting
    // for blocks never uploaded: ClientRequests.add) and a faulty client does not retransmit.
    if (!p.relayed && r.nowMs - p.sinceMs > r.params.requestTimeoutMs / 2) {
      p.relayed = true;
      r.send(r.idOf(r.primary), p.request);
    }
  }
  if (oldestMs === Infinity) return;
  const waitedMs = r.nowMs - Math.max(s.progressMs, oldestMs);
  if (overdue || waitedMs > r.params.requestTimeoutMs || r.nowMs - oldestMs > fairnessTimeouts * r.params.requestTimeoutMs) {
    return startViewChange(r, r.view + 1);
  }
}

/**
 * Has the primary filled slot `seq` or a later one in this view, as far as this replica can tell:
 * a pre-prepare accepted here, another replica's prepare, or a decision?
 */
function filledFrom(r: Replica, seq: number): boolean {
  for (const slot of r.slots.values()) {
    if (slot.seq < seq) continue;
    if (slot.committed || slot.prePrepare?.view === r.view) return true;
    for (const p of slot.prepares.values()) if (p.view === r.view) return true;
  }
  return false;
}

/** Execution of a request this replica was waiting on: the primary is making progress. */
export function onProgress(r: Replica): void {
  r.viewChangeState.progressMs = r.nowMs;
}

export function startViewChange(r: Replica, view: number): void {
  const s = r.viewChangeState;
  const firstTry = r.viewActive || view === r.view;
  r.view = view;
  r.viewActive = false;
  agreement.clearOnViewChange(r);
  saveView(r.ctx.store, view, false);
  for (const slot of r.slots.values()) {
    slot.prePrepare = null;
    slot.prepares.clear();
    slot.commits.clear();
  }
  const prepared = [...r.slots.values()]
    .filter((slot) => slot.seq > r.stableSeq && slot.prepared)
    .sort((a, b) => a.seq - b.seq)
    .map((slot) => slot.prepared!);
  const mine = r.sign({
    kind: 'view-change',
    newView: view,
    stableSeq: r.stableSeq,
    checkpointProof: r.stableSeq > 0 ? r.stableProof : [],
    prepared,
    replica: r.me,
  }) as ViewChange;
  s.mine = mine;
  s.received.set(r.me, mine);
  r.broadcast(mine);
  if (!firstTry) s.timeoutMs = Math.min(s.timeoutMs * 2, r.params.viewChangeTimeoutMs * 2 ** timeoutDoublingsMax);
  s.deadlineMs = Infinity;
  armTimer(r);
  r.counters.viewChanges++;
  r.emit({ kind: 'view-change-started', replica: r.me, view });
  checkNewView(r);
}

/** A restarted primary that may have forgotten pre-prepares it sent leaves its view. */
export function abdicate(r: Replica): void {
  startViewChange(r, r.view + 1);
}

export function onViewChange(r: Replica, from: string, vc: ViewChange): void {
  const s = r.viewChangeState;
  // View changes are never relayed: one that does not come from the member it names is forged or
  // replayed (and its index may not even name a member: the codec allows up to 255).
  if (r.memberIndex.get(from) !== vc.replica) return r.drop('not-member');
  if (vc.newView < r.view || (vc.newView === r.view && r.viewActive)) {
    answerStale(r, vc);
    return r.drop('stale');
  }
  const held = s.received.get(vc.replica);
  if (held && held.newView >= vc.newView) return;
  if (!viewChangeValid(r.proofContext, vc)) return r.drop('bad-proof');
  s.received.set(vc.replica, vc);
  // The primary itself leaving its view (restarted, abdicate()) is reason enough to follow: a
  // faulty primary could stall the view anyway, so this gives it no new power.
  if (r.viewActive && vc.replica === r.primary && vc.newView === r.view + 1) return startViewChange(r, r.view + 1);
  // f+1 replicas want a higher view, so at least one correct one does: join the smallest of them.
  const higher = [...s.received.values()].filter((m) => m.newView > r.view).map((m) => m.newView);
  if (higher.length >= r.f + 1) startViewChange(r, Math.min(...higher));
  armTimer(r);
  checkNewView(r);
}

/**
 * The sender of a view change for a view at or below the one installed here is behind: it is
 * shown the new view it missed. The new-view is the protocol's largest message, so it goes only
 * to a sender that signed the view change (the caller checked it came from that member), at most
 * once per status period (its own retransmissions come that often), and the signature is checked
 * only when an answer is due.
 */
function answerStale(r: Replica, vc: ViewChange): void {
  const s = r.viewChangeState;
  if (!r.viewActive || !s.newView || vc.newView > r.view) return;
  const lastMs = s.staleAnswered.get(vc.replica) ?? -Infinity;
  if (r.nowMs - lastMs < r.params.statusIntervalMs) return;
  if (!r.signedByReplica(vc)) return r.drop('bad-signature');
  s.staleAnswered.set(vc.replica, r.nowMs);
  r.send(r.idOf(vc.replica), s.newView);
}

function checkNewView(r: Replica): void {
  if (r.viewActive || !r.isPrimary) return;
  const s = r.viewChangeState;
  const forView = [...s.received.values()].filter((m) => m.newView === r.view).sort((a, b) => a.replica - b.replica);
  if (forView.length < r.quorum) return;
  const chosen = [s.received.get(r.me)!, ...forView.filter((m) => m.replica !== r.me)].slice(0, r.quorum);
  const { proposals } = newViewProposals(r.proofContext, chosen);
  const prePrepares = proposals.map(
    (p) => r.sign({ kind: 'pre-prepare', view: r.view, seq: p.seq, digest: p.digest, replica: r.me, batch: null }) as PrePrepare,
  );
  const nv = r.sign({ kind: 'new-view', view: r.view, viewChanges: chosen, prePrepares, replica: r.me }) as NewView;
  r.broadcast(nv);
  install(r, nv, proposals);
}

export function onNewView(r: Replica, nv: NewView): void {
  if (nv.view < r.view || (nv.view === r.view && r.viewActive)) return r.drop('stale');
  const proposals = newViewValid(r.proofContext, nv);
  if (!proposals) return r.drop('bad-proof');
  install(r, nv, proposals);
}

function install(r: Replica, nv: NewView, proposals: readonly Proposal[]): void {
  const s = r.viewChangeState;
  r.view = nv.view;
  // Active only once the view's proposals are in place and nextSeq is set: a primary must not
  // propose on its own meanwhile (becomeStable below ends by trying to issue batches), or it would
  // reuse a seq that a re-proposal or nextSeq's reset then claims for a second digest.
  r.viewActive = false;
  r.withheld = null; // withholding applied to an older view only
  r.refusedTimestamps.clear();
  saveView(r.ctx.store, nv.view, true);
  s.newView = nv;
  s.timeoutMs = r.params.viewChangeTimeoutMs;
  s.deadlineMs = Infinity;
  s.progressMs = r.nowMs;
  for (const [replica, m] of s.received) if (m.newView <= nv.view) s.received.delete(replica);
  for (const slot of r.slots.values()) {
    slot.prePrepare = null;
    slot.prepares.clear();
    slot.commits.clear();
  }
  const top = nv.viewChanges.reduce((a, b) => (b.stableSeq > a.stableSeq ? b : a));
  if (top.stableSeq > r.stableSeq) becomeStable(r, top.stableSeq, top.checkpointProof);
  r.inFlight.clear();
  let maxSeq = top.stableSeq;
  agreement.clearOnViewChange(r);
  proposals.forEach((p, i) => {
    maxSeq = Math.max(maxSeq, p.seq);
    if (p.seq <= r.stableSeq) return;
    const pp = { ...nv.prePrepares[i]!, batch: p.batch };
    // Past the vote ceiling (a replica behind in execution, or one whose member list is about to
    // change) it waits like any other pre-prepare there (Replica.voteCeiling), already checked.
    if (p.seq > r.voteCeiling) r.agreementState.parked.set(p.seq, { prePrepare: pp, reProposal: true, receivedMs: r.nowMs });
    else r.acceptPrePrepare(pp);
  });
  r.nextSeq = Math.max(maxSeq, r.lastExecuted, r.stableSeq) + 1;
  r.viewActive = true;
  r.emit({ kind: 'view-installed', replica: r.me, view: nv.view });
  // A former primary's queue is the new primary's job now (the pending map still watches it).
  if (!r.isPrimary) r.queue.clear();
  for (const p of r.pending.all()) {
    p.sinceMs = r.nowMs;
    p.relayed = false;
    if (r.isPrimary) r.enqueue(p.request, p.origin);
    else r.send(r.idOf(r.primary), p.request);
  }
  r.executeReady();
}
