/**
 * Execution (TOCS'02 §4.2, "executes the operation ... in sequence-number order"): committed
 * batches run in order once every block they name is here; each request runs at most once per
 * (client, nonce). The service's writes, the client table and the execution record are held
 * (ring/deferred-writes.ts) and staged with the next step, so the signed replies leave without
 * waiting for their fsync: the batch was decided durably by 2f+1 replicas before it committed
 * here, and after a crash this replica executes it again with the same result. A checkpoint is
 * taken outside the hold, after staging them (takeCheckpoint). Executed batches feed certificates
 * (their statements are kept in the store with the execution until certified) and checkpoints.
 */
import { assert } from '../core/assert.ts';
import { toHex } from '../core/bytes.ts';
import { IntegrityError } from '../core/errors.ts';
import type { ClientRequest, NoncePassed, PrePrepare, Reply } from './messages.ts';
import type { ExecutedRequest } from './outputs.ts';
import * as agreement from './replica-agreement.ts';
import * as blocks from './replica-blocks.ts';
import * as certificates from './replica-certificates.ts';
import * as checkpoints from './replica-checkpoints.ts';
import * as viewChange from './replica-view-change.ts';
import { clientKeyOf, encodeClientRecord, nextClientRecord, saveExecution, saveLeaves, type ClientRecord } from './replica-store.ts';
import type { KeptReply } from './kept-replies.ts';
import type { Replica } from './replica.ts';
import { requestDigest } from './signing.ts';


export function executeReady(r: Replica): void {
  if (checkpoints.awaitingState(r)) return;
  const stateMissing = blocks.missingForState(r);
  r.blockState.blocked = stateMissing.length > 0;
  if (r.blockState.blocked) return blocks.requestBlocks(r, stateMissing, 'execution');
  for (;;) {
    const s = r.slots.get(r.lastExecuted + 1);
    if (!s?.committed) break;
    const missing = blocks.missingForBatch(r, s.committed.prePrepare.batch!);
    if (missing.length > 0) {
      r.blockState.blocked = true;
      return blocks.requestBlocks(r, missing, 'execution');
    }
    execute(r, s.seq, s.committed.prePrepare);
  }
  agreement.takeUpParked(r);
  r.tryIssueBatches();
}

function execute(r: Replica, seq: number, pp: PrePrepare): void {
  const checkpointDue = r.deferred.hold(() => apply(r, seq, pp));
  if (checkpointDue) takeCheckpoint(r, seq);
}

/**
 * The checkpoint at `seq`, taken after execution's hold has ended. Its signed vote claims the
 * snapshot, and the vote that completes the quorum makes the checkpoint stable here (the stable
 * record, the log and old snapshots deleted, batches issued in the new window): everything it
 * writes must be staged, so durable before the vote leaves, and so must the execution it
 * snapshots. Taken inside the hold, the snapshot was a held write while the vote left in the same
 * step: a crash right after left lastExecuted = seq with no snapshot at seq, never made again.
 */
function takeCheckpoint(r: Replica, seq: number): void {
  r.deferred.stage();
  checkpoints.takeCheckpoint(r, seq);
}

/** Executes one committed batch (its writes held by the caller); true when a checkpoint is due at `seq`. */
function apply(r: Replica, seq: number, pp: PrePrepare): boolean {
  const batch = pp.batch!;
  assert(seq === r.lastExecuted + 1, 'execution follows sequence order');
  const timestampMs = Math.max(batch.timestampMs, r.lastTimestampMs);
  const executed: ExecutedRequest[] = [];
  const leaves: certificates.Leaf[] = [];
  const replies: [ClientRequest, ClientRecord][] = [];
  const corruptBefore = r.service.corruptBlocksFound?.() ?? 0;
  batch.requests.forEach((req, index) => {
    const hex = toHex(req.clientKey);
    const digest = requestDigest(r.config.crypto, req);
    const key = r.requestKey(req);
    r.inFlight.delete(key);
    if (r.pending.settle(hex, req.nonce, r.nowMs) > 0) viewChange.onProgress(r);
    // The primary's queue too: a request there waiting for blocks is looked at only when they come.
    r.queue.settle(hex, req.nonce, r.nowMs);
    const previous = r.clients.get(hex);
    if (previous && req.nonce <= previous.nonce) {
      executed.push({ clientKeyHex: hex, nonce: req.nonce, requestDigestHex: toHex(digest), outcome: 'replay' });
      return;
    }
    const outcome = r.service.execute(req.clientKey, req.operation, { seq, timestampMs, index });
    // A block read here was corrupt at rest: the store discarded it (durably) and read it as absent,
    // where every other replica read it, so this result may differ from theirs. Stop; restarted,
    // the replica fetches the block from its peers before it executes again (session-19 review).
    if ((r.service.corruptBlocksFound?.() ?? 0) !== corruptBefore) {
      throw new IntegrityError(`a stored block read while executing seq ${seq} was corrupt; it is discarded and is fetched again after a restart`);
    }
    if (previous) r.keptReplies.keep(hex, previous);
    const record: ClientRecord = nextClientRecord(previous, req.nonce, digest, seq, outcome.result);
    r.clients.set(hex, record);
    r.ctx.store.put(clientKeyOf(hex), encodeClientRecord(record));
    replies.push([req, record]);
    if (outcome.statement) leaves.push({ statement: outcome.statement, clientKey: req.clientKey, nonce: req.nonce, replyTo: req.replyTo });
    executed.push({ clientKeyHex: hex, nonce: req.nonce, requestDigestHex: toHex(digest), outcome: 'executed' });
  });
  if (batch.heartbeat) {
    for (const statement of r.service.heartbeatStatements(timestampMs, r.params.heartbeatIntervalMs)) leaves.push({ statement, clientKey: null, nonce: 0, replyTo: '' });
  }
  r.lastExecuted = seq;
  r.lastTimestampMs = timestampMs;
  saveExecution(r.ctx.store, seq, timestampMs);
  // Held with the execution: after a crash, this batch's statements are here exactly when it is.
  if (leaves.length > 0) saveLeaves(r.ctx.store, seq, leaves);
  r.counters.executedBatches++;
  r.counters.executedRequests += replies.length;
  r.emit({ kind: 'executed', replica: r.me, seq, view: pp.view, digestHex: toHex(pp.digest), requests: executed });
  for (const [req, record] of replies) sendReply(r, req.replyTo, req.clientKey, record);
  if (leaves.length > 0) certificates.onExecuted(r, seq, leaves);
  return seq % r.params.checkpointInterval === 0;
}

const unsignedReply = new Uint8Array(0);

/**
 * A reply goes straight from this replica to the client. Over a host with channel integrity (the
 * runtime's transport tags every frame under keys bound to this replica's identity) the channel
 * already proves who sent it and that it is unaltered, so it goes unsigned, as PBFT's replies
 * carry a MAC rather than a signature: that saved each replica a signature and the client f+1
 * checks per update. A reply is never a transferable proof; the threshold certificate is.
 */
export function sendReply(r: Replica, to: string, clientKey: Uint8Array, record: KeptReply): void {
  const body = {
    kind: 'reply' as const,
    view: r.view,
    seq: record.seq,
    clientKey,
    nonce: record.nonce,
    requestDigest: record.requestDigest,
    result: record.result,
    replica: r.me,
  };
  sendToClient(r, to, body);
}

/** A reply or a nonce-passed answer to a client: signed unless the channel already authenticates it (see sendReply). */
export function sendToClient(r: Replica, to: string, body: Omit<Reply, 'signature'> | Omit<NoncePassed, 'signature'>): void {
  r.send(to, r.config.channelIntegrity === true ? { ...body, signature: unsignedReply } : (r.sign(body) as Reply | NoncePassed));
}
