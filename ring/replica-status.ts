/**
 * Retransmission and catch-up (TOCS'02 §5.2 "status" messages, simplified). Every status period a
 * replica broadcasts what it has (view, last executed, stable checkpoint) and re-sends its own
 * messages for slots still in progress; a peer that sees it is behind answers with what it lacks:
 * the stable checkpoint proof, commit proofs for decided slots (pre-prepare + 2f+1 commits, all
 * signed, so any replica may relay them), the new-view it missed, or its view-change message.
 */
import type { CommitProof, Status } from './messages.ts';
import type { Replica } from './replica.ts';
import * as agreement from './replica-agreement.ts';

export interface StatusState {
  lastStatusMs: number;
  /** Per peer: up to which seq commit proofs were last sent, and when (so a slow peer is not flooded). */
  readonly proofsSent: Map<string, { upToSeq: number; atMs: number }>;
  /** Per peer: the last executed seq its latest status claimed (whether it is behind, for state requests). */
  readonly peerExecuted: Map<string, number>;
}

/** Commit proofs sent per status answer: bounds one answer's size; the next status continues. */
const commitProofsPerStatusMax = 16;
/** Batch bytes per status answer: a peer that lags because it is slow must not be buried in proofs. */
const commitProofBytesPerStatusMax = 4 * 1024 * 1024;

export function initialState(): StatusState {
  return { lastStatusMs: -Infinity, proofsSent: new Map(), peerExecuted: new Map() };
}

function batchBytes(proof: CommitProof): number {
  let n = 0;
  for (const r of proof.prePrepare.batch?.requests ?? []) n += r.operation.length + 128;
  return n;
}

export function onTick(r: Replica): void {
  const s = r.statusState;
  if (r.nowMs - s.lastStatusMs < r.params.statusIntervalMs) return;
  s.lastStatusMs = r.nowMs;
  const status: Status = { kind: 'status', view: r.view, viewActive: r.viewActive, lastExecuted: r.lastExecuted, stableSeq: r.stableSeq };
  r.broadcast(status);
  retransmit(r);
}

function retransmit(r: Replica): void {
  if (!r.viewActive) {
    const mine = r.viewChangeState.mine;
    if (mine && mine.newView === r.view) r.broadcast(mine);
    return;
  }
  for (const slot of r.slots.values()) {
    if (slot.seq <= r.lastExecuted || slot.committed) continue;
    const pp = slot.prePrepare;
    // Only slots stuck for a while: a busy ring's in-progress slots are not lost, just not done yet.
    if (!pp || pp.view !== r.view || r.nowMs - slot.sinceMs < 2 * r.params.statusIntervalMs) continue;
    if (r.isPrimary) r.broadcast(pp);
    const prepare = slot.prepares.get(r.me);
    if (prepare) r.broadcast(prepare);
    const commit = slot.commits.get(r.me);
    if (commit) r.broadcast(commit);
  }
}

function sendCommitProofs(r: Replica, to: string, m: Status): void {
  let first = Math.max(m.lastExecuted, r.stableSeq) + 1;
  const sent = r.statusState.proofsSent.get(to);
  // Proofs already on their way to this peer are not sent again until they had time to arrive.
  if (sent && r.nowMs - sent.atMs < 4 * r.params.statusIntervalMs) first = Math.max(first, sent.upToSeq + 1);
  const last = Math.min(r.lastExecuted, first + commitProofsPerStatusMax - 1);
  let bytes = 0;
  let upToSeq = first - 1;
  for (let seq = first; seq <= last && bytes < commitProofBytesPerStatusMax; seq++) {
    const held: CommitProof | null | undefined = r.slots.get(seq)?.committed;
    const proof = held ? agreement.relayableCommitProof(r, held) : null;
    if (!proof) break;
    bytes += batchBytes(proof);
    r.send(to, proof);
    upToSeq = seq;
  }
  if (upToSeq >= first) r.statusState.proofsSent.set(to, { upToSeq, atMs: r.nowMs });
}

export function onStatus(r: Replica, from: string, m: Status): void {
  r.statusState.peerExecuted.set(from, m.lastExecuted);
  if (m.stableSeq < r.stableSeq && r.stableProof.length > 0) {
    r.send(from, { kind: 'checkpoint-proof', checkpoints: r.stableProof });
  }
  if (m.lastExecuted < r.lastExecuted) sendCommitProofs(r, from, m);
  const nv = r.viewChangeState.newView;
  if (r.viewActive && nv && nv.view === r.view && (m.view < r.view || (m.view === r.view && !m.viewActive))) {
    r.send(from, nv);
  }
  const mine = r.viewChangeState.mine;
  if (!r.viewActive && mine && mine.newView === r.view && m.view <= r.view) r.send(from, mine);
}
