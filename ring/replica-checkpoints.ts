/**
 * Checkpoints, log truncation and state transfer (Castro & Liskov TOCS'02 §4.3, §5.3). Every K
 * sequence numbers a replica snapshots its state (service + client table + agreed clock), signs
 * the snapshot's digest and broadcasts it; 2f+1 matching checkpoints make it stable: the log
 * below it is dropped and the watermark window moves. A replica that learns of a stable checkpoint
 * above its execution point (it lagged, or lost its disk) fetches the snapshot from any peer and
 * checks it against the 2f+1 signed digests before installing it.
 */
import { assert } from '../core/assert.ts';
import { bytesEqual, toHex } from '../core/bytes.ts';
import { asBytesField, asList, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { HashTag, taggedHash } from '../core/crypto.ts';
import { discardNow } from '../core/store.ts';
import type { Checkpoint, StateReply, StateRequest } from './messages.ts';
import { checkpointProofDigest } from './proofs.ts';
import * as certificates from './replica-certificates.ts';
import type { Replica } from './replica.ts';
import {
  clientKeyOf,
  clientRecordFromTuple,
  clientRecordTuple,
  encodeClientRecord,
  saveExecution,
  saveStable,
  seqOfKey,
  slotKey,
  snapshotDigestKey,
  snapshotKey,
  type ClientRecord,
} from './replica-store.ts';
import { ringFrameBytesMax } from './codec.ts';

export interface CheckpointState {
  /** Checkpoint messages above the stable one, by seq then sender. */
  readonly votes: Map<number, Map<number, Checkpoint>>;
  /** Digests of this replica's own snapshots (kept in the store) by seq. */
  readonly own: Map<number, Uint8Array>;
  /** Stable seq whose state this replica must fetch before executing further, or null. */
  awaitingSeq: number | null;
  lastStateRequestMs: number;
  /** Per member: when this replica last sent it a state reply (at most one per status period). */
  readonly stateAnswered: Map<string, number>;
}

export function initialState(): CheckpointState {
  return { votes: new Map(), own: new Map(), awaitingSeq: null, lastStateRequestMs: -Infinity, stateAnswered: new Map() };
}

const digestOf = (r: Replica, snapshot: Uint8Array): Uint8Array => taggedHash(r.config.crypto, HashTag.checkpoint, snapshot);

/**
 * Reads back this replica's snapshots. lmdb keeps no checksums: a snapshot whose bytes no longer
 * hash to the digest written beside it (what this replica computed and voted), or, at the stable
 * checkpoint, to its proof's digest, rotted at rest. It is discarded (peers would refuse it in a
 * state reply; the state in force came from execution), where it used to trip the divergence
 * assert at every start. One that still hashes to what was computed is this replica's own state:
 * if that disagrees with a proof, the replica diverged, and the assert stops it.
 */
export function recover(r: Replica): void {
  for (const key of r.ctx.store.keys('ring/snap/')) {
    const seq = seqOfKey(key);
    const digest = digestOf(r, r.ctx.store.get(key)!);
    const computed = r.ctx.store.get(snapshotDigestKey(seq));
    const rotted = computed !== undefined ? !bytesEqual(digest, computed) : seq === r.stableSeq && r.stableProof.length > 0 && !bytesEqual(digest, r.stableProof[0]!.stateDigest);
    if (rotted) {
      discardNow(r.ctx.store, [key, snapshotDigestKey(seq)]);
      r.drop('corrupt-snapshot');
      continue;
    }
    r.checkpointState.own.set(seq, digest);
  }
  if (r.lastExecuted < r.stableSeq) r.checkpointState.awaitingSeq = r.stableSeq;
}

/**
 * Whether execution waits for a state transfer. Below the stable checkpoint it always does (the
 * log under it is gone, so nothing there can execute): whatever cleared the wait, a replica left
 * there asks again rather than sitting still.
 */
export function awaitingState(r: Replica): boolean {
  const s = r.checkpointState;
  if (r.lastExecuted < r.stableSeq) s.awaitingSeq = Math.max(s.awaitingSeq ?? 0, r.stableSeq);
  else if (s.awaitingSeq !== null && r.lastExecuted >= s.awaitingSeq) s.awaitingSeq = null;
  return s.awaitingSeq !== null;
}

/** Canonical bytes of everything execution depends on: equal on every correct replica at a seq. */
function snapshotOf(r: Replica): Uint8Array {
  const clients = [...r.clients.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return encode([r.lastTimestampMs, r.service.snapshot(), clients.map(([hex, rec]) => [hex, clientRecordTuple(rec)])]);
}

export function takeCheckpoint(r: Replica, seq: number): void {
  const snapshot = snapshotOf(r);
  const stateDigest = digestOf(r, snapshot);
  r.ctx.store.put(snapshotKey(seq), snapshot);
  r.ctx.store.put(snapshotDigestKey(seq), stateDigest);
  r.checkpointState.own.set(seq, stateDigest);
  const cp = r.sign({ kind: 'checkpoint', seq, stateDigest, replica: r.me }) as Checkpoint;
  vote(r, cp);
  r.broadcast(cp);
  checkStable(r, seq);
}

function vote(r: Replica, cp: Checkpoint): void {
  let votes = r.checkpointState.votes.get(cp.seq);
  if (!votes) r.checkpointState.votes.set(cp.seq, (votes = new Map()));
  votes.set(cp.replica, cp);
}

export function onCheckpoint(r: Replica, cp: Checkpoint): void {
  if (cp.seq <= r.stableSeq) return r.drop('stale');
  if (cp.seq % r.params.checkpointInterval !== 0 || cp.seq > r.stableSeq + 4 * r.params.watermarkWindow) {
    return r.drop('out-of-window');
  }
  if (!r.signedByReplica(cp)) return r.drop('bad-signature');
  vote(r, cp);
  checkStable(r, cp.seq);
}

function checkStable(r: Replica, seq: number): void {
  const votes = r.checkpointState.votes.get(seq);
  if (!votes) return;
  const byDigest = new Map<string, Checkpoint[]>();
  for (const cp of votes.values()) {
    const key = toHex(cp.stateDigest);
    byDigest.set(key, [...(byDigest.get(key) ?? []), cp]);
  }
  for (const group of byDigest.values()) {
    if (group.length >= r.quorum) return becomeStable(r, seq, group.slice(0, r.quorum));
  }
}

export function onCheckpointProof(r: Replica, proof: readonly Checkpoint[]): void {
  const seq = proof[0]?.seq;
  if (seq === undefined || seq <= r.stableSeq) return r.drop('stale');
  if (!checkpointProofDigest(r.proofContext, seq, proof)) return r.drop('bad-proof');
  becomeStable(r, seq, proof);
}

/** Moves the low watermark to `seq` (proof: 2f+1 signed matching checkpoints) and truncates the log. */
export function becomeStable(r: Replica, seq: number, proof: readonly Checkpoint[]): void {
  if (seq <= r.stableSeq) return;
  const digest = proof[0]!.stateDigest;
  const mine = r.checkpointState.own.get(seq);
  assert(!mine || bytesEqual(mine, digest), `replica ${r.me} diverged from a stable checkpoint at ${seq}`);
  r.stableSeq = seq;
  r.stableProof = [...proof];
  saveStable(r.ctx.store, seq, proof);
  for (const s of [...r.slots.keys()]) {
    if (s > seq) continue;
    r.slots.delete(s);
    r.ctx.store.delete(slotKey(s));
  }
  for (const s of [...r.checkpointState.votes.keys()]) if (s <= seq) r.checkpointState.votes.delete(s);
  for (const s of [...r.checkpointState.own.keys()]) {
    if (s >= seq) continue;
    r.checkpointState.own.delete(s);
    r.ctx.store.delete(snapshotKey(s));
    r.ctx.store.delete(snapshotDigestKey(s));
  }
  for (const [key, at] of [...r.inFlight]) if (at <= seq) r.inFlight.delete(key);
  r.nextSeq = Math.max(r.nextSeq, seq + 1);
  r.emit({ kind: 'checkpoint-stable', replica: r.me, seq, digestHex: toHex(digest) });
  if (r.lastExecuted < seq) {
    r.checkpointState.awaitingSeq = seq;
    requestState(r);
  }
  r.tryIssueBatches();
}

function requestState(r: Replica): void {
  const seq = r.checkpointState.awaitingSeq;
  if (seq === null) return;
  r.checkpointState.lastStateRequestMs = r.nowMs;
  const m: StateRequest = { kind: 'state-request', seq };
  r.broadcast(m);
}

export function onTick(r: Replica): void {
  if (awaitingState(r) && r.nowMs - r.checkpointState.lastStateRequestMs >= 2 * r.params.statusIntervalMs) requestState(r);
}

/**
 * A member asks for the state at a stable checkpoint: it gets this replica's whole snapshot (up to
 * the frame limit) for a few bytes, so only a member that is behind (its latest status, if any,
 * shows it below this checkpoint) and at most once per status period (an asker retries every two).
 */
export function onStateRequest(r: Replica, from: string, m: StateRequest): void {
  if (r.stableSeq < m.seq || r.stableSeq === 0) return r.drop('stale');
  if ((r.statusState.peerExecuted.get(from) ?? -1) >= r.stableSeq) return r.drop('stale');
  const lastMs = r.checkpointState.stateAnswered.get(from) ?? -Infinity;
  if (r.nowMs - lastMs < r.params.statusIntervalMs) return r.drop('rate-limited');
  const snapshot = r.ctx.store.get(snapshotKey(r.stableSeq));
  if (!snapshot) return; // this replica is itself waiting for the state at its stable checkpoint
  r.checkpointState.stateAnswered.set(from, r.nowMs);
  const reply: StateReply = { kind: 'state-reply', seq: r.stableSeq, snapshot, checkpoints: r.stableProof };
  r.send(from, reply);
}

/**
 * Installs a snapshot proved by 2f+1 checkpoints. Only one at or above both the checkpoint awaited
 * and the stable one: an older snapshot (a faulty member's replay, or a slow answer) would leave
 * this replica below its stable checkpoint, where nothing can execute.
 */
export function onStateReply(r: Replica, m: StateReply): void {
  const awaited = r.checkpointState.awaitingSeq;
  if (awaited === null || m.seq <= r.lastExecuted || m.seq < Math.max(awaited, r.stableSeq)) return r.drop('stale');
  const digest = checkpointProofDigest(r.proofContext, m.seq, m.checkpoints);
  if (!digest || !bytesEqual(digest, digestOf(r, m.snapshot))) return r.drop('bad-proof');
  const executedThrough = r.lastExecuted;
  const parsed = parseSnapshot(m.snapshot);
  if (!parsed || !r.service.restore(parsed.service)) return r.drop('bad-proof');
  for (const key of r.ctx.store.keys('ring/client/')) r.ctx.store.delete(key);
  r.clients.clear();
  for (const [hex, record] of parsed.clients) {
    r.clients.set(hex, record);
    r.ctx.store.put(clientKeyOf(hex), encodeClientRecord(record));
  }
  r.lastExecuted = m.seq;
  r.lastTimestampMs = parsed.lastTimestampMs;
  saveExecution(r.ctx.store, m.seq, parsed.lastTimestampMs);
  r.ctx.store.put(snapshotKey(m.seq), m.snapshot);
  r.ctx.store.put(snapshotDigestKey(m.seq), digest);
  r.checkpointState.own.set(m.seq, digest);
  for (const s of [...r.slots.keys()]) if (s <= m.seq) r.slots.delete(s);
  becomeStable(r, m.seq, m.checkpoints);
  awaitingState(r); // clears the wait: lastExecuted = m.seq, at or above it
  // The statements of the skipped batches were never executed here: peers certify them. Those
  // executed below them are still this replica's to sign (a hole above them).
  certificates.skippedByTransfer(r, executedThrough, m.seq);
  r.blockState.checkStateBlocks = true;
  r.counters.stateTransfers++;
  r.emit({ kind: 'state-transferred', replica: r.me, seq: m.seq });
  r.executeReady();
}

interface ParsedSnapshot {
  lastTimestampMs: number;
  service: Uint8Array;
  clients: [string, ClientRecord][];
}

/** The snapshot's digest already matched 2f+1 signed checkpoints, but parse defensively anyway. */
function parseSnapshot(bytes: Uint8Array): ParsedSnapshot | null {
  try {
    const t = asTuple(decode(bytes, ringFrameBytesMax, 'snapshot'), 'snapshot', 3);
    const clients = asList(t[2], 'snapshot.clients', 1 << 24, (v) => {
      const pair = asTuple(v, 'client', 2);
      return [String(pair[0]), clientRecordFromTuple(pair[1])] as [string, ClientRecord];
    });
    return {
      lastTimestampMs: asUint(t[0], 'snapshot.lastTimestampMs'),
      service: asBytesField(t[1], 'snapshot.service', { bytesMax: ringFrameBytesMax }),
      clients,
    };
  } catch {
    return null;
  }
}
