/**
 * Threshold certificates for executed batches (DESIGN.md "Certificates and heartbeats"). After
 * executing a batch, each replica builds the Merkle tree over the batch's certificate statements
 * and signs one share of the batch header (ring id, epoch, sequence, leaf count, root), encoded as
 * core/threshold/statements.ts batchSigningMessage, so certificates verify with core/threshold's
 * verifyCertificate. Shares go to f+1 combiners chosen by the sequence number (so at
 * least one is correct); a combiner combines the first f+1 shares optimistically and verifies the
 * result once; only when that fails does it check shares one by one, naming each bad sender.
 */
import { bytesEqual } from '../core/bytes.ts';
import { buildLevels, pathOf, rootOf } from './batch-merkle.ts';
import { batchMessage } from './certificate-format.ts';
import type { CertificateMessage, Share } from './messages.ts';
import type { Replica } from './replica.ts';

export interface Leaf {
  readonly statement: Uint8Array;
  /** Null for heartbeat statements, which no client waits on. */
  readonly clientKey: Uint8Array | null;
  readonly nonce: number;
  readonly replyTo: string;
}

interface BatchShares {
  readonly seq: number;
  readonly root: Uint8Array;
  /** What the ring signs: the encoded batch header. */
  readonly message: Uint8Array;
  readonly levels: Uint8Array[][];
  readonly leaves: readonly Leaf[];
  readonly shares: Map<number, Uint8Array>;
  readonly bad: Set<number>;
  signature: Uint8Array | null;
}

export interface CertificateState {
  readonly batches: Map<number, BatchShares>;
  /** Executed batches whose share this replica has not signed yet (signed on later ticks, oldest first). */
  readonly unsigned: number[];
  /** Shares that arrived before this replica executed their batch. */
  readonly early: Map<number, Map<number, Share>>;
}

/** Shares signed per tick: bounds how long one tick holds the replica when BLS is slow. */
const sharesPerTickMax = 8;

export function initialState(): CertificateState {
  return { batches: new Map(), unsigned: [], early: new Map() };
}

export function combinersOf(r: Replica, seq: number): number[] {
  const out: number[] = [];
  for (let i = 0; i <= r.f; i++) out.push((seq + i) % r.n);
  return out;
}

/**
 * Records an executed batch's statements. The threshold share is signed later (signPending, from
 * the tick), so the replies of the executing step are not held behind BLS work, which costs far
 * more than agreement on a batch.
 */
export function onExecuted(r: Replica, seq: number, leaves: readonly Leaf[]): void {
  const levels = buildLevels(r.config.crypto, leaves.map((l) => l.statement));
  const root = rootOf(levels);
  const message = batchMessage(r, seq, leaves.length, root);
  const state: BatchShares = { seq, root, message, levels, leaves, shares: new Map(), bad: new Set(), signature: null };
  r.certificateState.batches.set(seq, state);
  r.certificateState.unsigned.push(seq);
  const early = r.certificateState.early.get(seq);
  r.certificateState.early.delete(seq);
  for (const m of early?.values() ?? []) addShare(r, state, m);
}

/** Signs (and offers to the combiners) this replica's shares for executed batches, at most `countMax` per call. */
export function signPending(r: Replica, countMax: number): void {
  const s = r.certificateState;
  for (let i = 0; i < countMax && s.unsigned.length > 0; i++) {
    const state = s.batches.get(s.unsigned.shift()!);
    if (!state) continue;
    const share = r.config.certificateSigner.signShare(state.message);
    state.shares.set(r.me, share);
    const shareMessage: Share = { kind: 'share', seq: state.seq, root: state.root, replica: r.me, share };
    for (const c of combinersOf(r, state.seq)) if (c !== r.me) r.send(r.idOf(c), shareMessage);
    tryCombine(r, state);
  }
}

export function onShare(r: Replica, m: Share): void {
  const state = r.certificateState.batches.get(m.seq);
  if (state) {
    addShare(r, state, m);
    tryCombine(r, state);
    return;
  }
  if (m.seq <= r.lastExecuted || m.seq > r.lastExecuted + r.params.watermarkWindow) return r.drop('stale');
  let early = r.certificateState.early.get(m.seq);
  if (!early) r.certificateState.early.set(m.seq, (early = new Map()));
  early.set(m.replica, m);
}

function addShare(r: Replica, state: BatchShares, m: Share): void {
  if (state.signature || state.shares.has(m.replica) || state.bad.has(m.replica)) return;
  // A share over another root comes from a replica that executed something else: not combinable.
  if (!bytesEqual(m.root, state.root)) return r.drop('bad-proof');
  state.shares.set(m.replica, m.share);
}

function tryCombine(r: Replica, state: BatchShares): void {
  // A combiner combines once its own share is in: it then holds the batch and has vouched for it.
  if (state.signature || !state.shares.has(r.me) || !combinersOf(r, state.seq).includes(r.me)) return;
  const signer = r.config.certificateSigner;
  // Each round either succeeds or removes at least one bad share, so n rounds bound the loop.
  for (let round = 0; round < r.n; round++) {
    if (state.shares.size < signer.threshold) return;
    const order = [...state.shares.keys()].sort((a, b) => (a === r.me ? -1 : b === r.me ? 1 : a - b));
    const picked = order.slice(0, signer.threshold).map((replica) => ({ replica, share: state.shares.get(replica)! }));
    const signature = signer.combine(state.message, picked);
    if (r.config.certificateVerifier.verify(state.message, signature)) {
      state.signature = signature;
      deliver(r, state, signature);
      return;
    }
    for (const p of picked) {
      if (signer.verifyShare(p.replica, state.message, p.share)) continue;
      state.shares.delete(p.replica);
      state.bad.add(p.replica);
      r.emit({ kind: 'bad-share', replica: r.me, sender: p.replica, seq: state.seq });
    }
  }
}

function deliver(r: Replica, state: BatchShares, signature: Uint8Array): void {
  r.emit({
    kind: 'certificate',
    replica: r.me,
    seq: state.seq,
    root: state.root,
    signature,
    statements: state.leaves.map((l) => l.statement),
  });
  state.leaves.forEach((leaf, leafIndex) => {
    if (!leaf.clientKey) return;
    const m: CertificateMessage = {
      kind: 'certificate',
      seq: state.seq,
      clientKey: leaf.clientKey,
      nonce: leaf.nonce,
      statement: leaf.statement,
      leafIndex,
      leafCount: state.leaves.length,
      path: pathOf(state.levels, leafIndex),
      root: state.root,
      signature,
    };
    r.send(leaf.replyTo, m);
  });
}

/** Forgets batches far below the execution point (their certificates are out or never will be). */
export function onTick(r: Replica): void {
  signPending(r, sharesPerTickMax);
  const floor = r.lastExecuted - 2 * r.params.watermarkWindow;
  for (const seq of r.certificateState.batches.keys()) if (seq < floor) r.certificateState.batches.delete(seq);
  for (const seq of r.certificateState.early.keys()) if (seq <= r.lastExecuted) r.certificateState.early.delete(seq);
}
