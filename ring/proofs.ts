/**
 * Checks of the signed proofs replicas exchange (Castro & Liskov TOCS'02 §4.4–4.5): checkpoint
 * proofs, prepared proofs, commit proofs, view-change and new-view messages; and the new primary's
 * rule for which batches the new view re-proposes. Pure functions: they never throw on peer input.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import type {
  Batch,
  ClientRequest,
  Checkpoint,
  CommitProof,
  NewView,
  PrePrepare,
  PreparedProof,
  ViewChange,
} from './messages.ts';
import { batchDigest, verifyMessage } from './signing.ts';

export interface ProofContext {
  readonly crypto: Crypto;
  readonly publicKeys: readonly Uint8Array[];
  readonly f: number;
  readonly watermarkWindow: number;
  /** A replica's cached client-request check (signature verified once per request, not once per proof carrying it). */
  readonly requestValid?: (request: ClientRequest) => boolean;
}

const n = (c: ProofContext): number => c.publicKeys.length;
const primaryOf = (c: ProofContext, view: number): number => view % n(c);

function signedBy(c: ProofContext, m: { replica: number } & Parameters<typeof verifyMessage>[2]): boolean {
  const key = c.publicKeys[m.replica];
  return key !== undefined && verifyMessage(c.crypto, key, m);
}

/** Every request in the batch carries a valid client signature (validity is checked before agreement). */
export function batchRequestsValid(c: ProofContext, batch: Batch): boolean {
  return batch.requests.every((r) => (c.requestValid ? c.requestValid(r) : verifyMessage(c.crypto, r.clientKey, r)));
}

/** A pre-prepare signed by its view's primary, carrying a batch that matches its digest. */
export function prePrepareValid(c: ProofContext, pp: PrePrepare, checkRequests = true): boolean {
  if (pp.replica !== primaryOf(c, pp.view) || !pp.batch) return false;
  if (!bytesEqual(batchDigest(c.crypto, pp.batch), pp.digest)) return false;
  if (!signedBy(c, pp)) return false;
  return !checkRequests || batchRequestsValid(c, pp.batch);
}

/** 2f+1 signed checkpoints from distinct replicas for one (seq, digest); the digest, or null. */
export function checkpointProofDigest(c: ProofContext, seq: number, proof: readonly Checkpoint[]): Uint8Array | null {
  const first = proof[0];
  if (!first) return null;
  const seen = new Set<number>();
  for (const cp of proof) {
    if (cp.seq !== seq || !bytesEqual(cp.stateDigest, first.stateDigest) || seen.has(cp.replica)) return null;
    if (!signedBy(c, cp)) return null;
    seen.add(cp.replica);
  }
  return seen.size >= 2 * c.f + 1 ? first.stateDigest : null;
}

export function preparedProofValid(c: ProofContext, proof: PreparedProof): boolean {
  const pp = proof.prePrepare;
  if (!prePrepareValid(c, pp)) return false;
  const seen = new Set<number>();
  for (const p of proof.prepares) {
    if (p.view !== pp.view || p.seq !== pp.seq || !bytesEqual(p.digest, pp.digest)) return false;
    if (p.replica === pp.replica || seen.has(p.replica) || !signedBy(c, p)) return false;
    seen.add(p.replica);
  }
  return seen.size >= 2 * c.f;
}

export function commitProofValid(c: ProofContext, proof: CommitProof): boolean {
  const pp = proof.prePrepare;
  if (!prePrepareValid(c, pp)) return false;
  const seen = new Set<number>();
  for (const m of proof.commits) {
    if (m.view !== pp.view || m.seq !== pp.seq || !bytesEqual(m.digest, pp.digest)) return false;
    if (seen.has(m.replica) || !signedBy(c, m)) return false;
    seen.add(m.replica);
  }
  return seen.size >= 2 * c.f + 1;
}

export function viewChangeValid(c: ProofContext, vc: ViewChange): boolean {
  if (!signedBy(c, vc)) return false;
  if (vc.stableSeq > 0 && !checkpointProofDigest(c, vc.stableSeq, vc.checkpointProof)) return false;
  if (vc.stableSeq === 0 && vc.checkpointProof.length !== 0) return false;
  const seqs = new Set<number>();
  for (const p of vc.prepared) {
    const pp = p.prePrepare;
    if (pp.seq <= vc.stableSeq || pp.seq > vc.stableSeq + c.watermarkWindow) return false;
    if (pp.view >= vc.newView || seqs.has(pp.seq)) return false;
    if (!preparedProofValid(c, p)) return false;
    seqs.add(pp.seq);
  }
  return true;
}

export interface Proposal {
  readonly seq: number;
  readonly batch: Batch;
  readonly digest: Uint8Array;
}

export const nullBatch: Batch = { timestampMs: 0, heartbeat: false, requests: [] };

/**
 * The new primary's choice (TOCS'02 §4.5.2): min-s is the highest stable checkpoint among the
 * view changes, max-s the highest prepared sequence number; every seq in between gets the batch
 * of its highest-view prepared proof, or a null batch. Deterministic in the set of view changes.
 */
export function newViewProposals(c: ProofContext, viewChanges: readonly ViewChange[]): { minSeq: number; proposals: Proposal[] } {
  let minSeq = 0;
  for (const vc of viewChanges) minSeq = Math.max(minSeq, vc.stableSeq);
  const best = new Map<number, PreparedProof>();
  let maxSeq = minSeq;
  for (const vc of viewChanges) {
    for (const p of vc.prepared) {
      const seq = p.prePrepare.seq;
      if (seq <= minSeq) continue;
      maxSeq = Math.max(maxSeq, seq);
      const held = best.get(seq);
      if (!held || held.prePrepare.view < p.prePrepare.view) best.set(seq, p);
    }
  }
  const proposals: Proposal[] = [];
  const nullDigest = batchDigest(c.crypto, nullBatch);
  for (let seq = minSeq + 1; seq <= maxSeq; seq++) {
    const p = best.get(seq);
    proposals.push(p ? { seq, batch: p.prePrepare.batch!, digest: p.prePrepare.digest } : { seq, batch: nullBatch, digest: nullDigest });
  }
  return { minSeq, proposals };
}

/** The view changes of a quorum behind a new view: distinct, valid, for that view; or null. */
export function newViewValid(c: ProofContext, nv: NewView): Proposal[] | null {
  if (nv.replica !== primaryOf(c, nv.view) || !signedBy(c, nv)) return null;
  const senders = new Set<number>();
  for (const vc of nv.viewChanges) {
    if (vc.newView !== nv.view || senders.has(vc.replica) || !viewChangeValid(c, vc)) return null;
    senders.add(vc.replica);
  }
  if (senders.size < 2 * c.f + 1) return null;
  const { proposals } = newViewProposals(c, nv.viewChanges);
  if (proposals.length !== nv.prePrepares.length) return null;
  for (let i = 0; i < proposals.length; i++) {
    const want = proposals[i]!;
    const pp = nv.prePrepares[i]!;
    if (pp.view !== nv.view || pp.seq !== want.seq || !bytesEqual(pp.digest, want.digest)) return null;
    // Batches in the proposals come from verified prepared proofs, so only the signature is new.
    if (pp.replica !== nv.replica || !signedBy(c, pp)) return null;
  }
  return proposals;
}

export function viewChangeKey(vc: ViewChange): string {
  return `${vc.newView}:${vc.replica}:${toHex(vc.signature).slice(0, 16)}`;
}
