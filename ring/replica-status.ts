/**
 * Retransmission and catch-up (TOCS'02 §5.2 "status" messages, simplified). Every status period a
 * replica broadcasts what it has (view, last executed, stable checkpoint) and re-sends its own
 * messages for slots still in progress; a peer that sees it is behind answers with what it lacks:
 * the stable checkpoint proof, commit proofs for decided slots (pre-prepare + 2f+1 commits, all
 * signed, so any replica may relay them), the new-view it missed, or its view-change message.
 */
import type { CommitProof, Status } from './messages.ts';
import type { Replica } from './replica.ts';

export interface StatusState {
  lastStatusMs: number;
}

/** Commit proofs sent per status answer: bounds one answer's size; the next status continues. */
const commitProofsPerStatusMax = 16;

export function initialState(): StatusState {
  return { lastStatusMs: -Infinity };
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
    if (!pp || pp.view !== r.view) continue;
    if (r.isPrimary) r.broadcast(pp);
    const prepare = slot.prepares.get(r.me);
    if (prepare) r.broadcast(prepare);
    const commit = slot.commits.get(r.me);
    if (commit) r.broadcast(commit);
  }
}

export function onStatus(r: Replica, from: string, m: Status): void {
  if (m.stableSeq < r.stableSeq && r.stableProof.length > 0) {
    r.send(from, { kind: 'checkpoint-proof', checkpoints: r.stableProof });
  }
  if (m.lastExecuted < r.lastExecuted) {
    const first = Math.max(m.lastExecuted, r.stableSeq) + 1;
    const last = Math.min(r.lastExecuted, first + commitProofsPerStatusMax - 1);
    for (let seq = first; seq <= last; seq++) {
      const proof: CommitProof | null | undefined = r.slots.get(seq)?.committed;
      if (proof) r.send(from, proof);
    }
  }
  const nv = r.viewChangeState.newView;
  if (r.viewActive && nv && nv.view === r.view && (m.view < r.view || (m.view === r.view && !m.viewActive))) {
    r.send(from, nv);
  }
  const mine = r.viewChangeState.mine;
  if (!r.viewActive && mine && mine.newView === r.view && m.view <= r.view) r.send(from, mine);
}
