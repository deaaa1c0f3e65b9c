/**
 * Client requests at a replica (Castro & Liskov TOCS'02 §4.1): the client sends to the primary;
 * backups relay to it and watch it (the pending map feeds the view-change timer). The primary
 * deduplicates by (client, nonce), queues, and proposes batches while the pipeline and the
 * watermark window have room; requests arriving meanwhile batch up (back-pressure batching).
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Batch, ClientRequest, PrePrepare } from './messages.ts';
import { sendToClient } from './replica-execution.ts';
import * as blocks from './replica-blocks.ts';
import { heldLimits, type Verdict } from './client-requests.ts';
import type { Replica } from './replica.ts';
import { neverExecutedBelow } from './replica-store.ts';
import { batchDigest, requestDigest } from './signing.ts';


/** `from`: the connection it came in on (a client, or a member relaying it). */
export function onRequest(r: Replica, req: ClientRequest, from: string, fromMember: boolean): void {
  const clientHex = toHex(req.clientKey);
  const record = r.clients.get(clientHex);
  if (record && req.nonce <= record.nonce) {
    if (fromMember) return;
    const digest = requestDigest(r.config.crypto, req);
    // Retransmission: resend the cached reply, the record's, or one this replica kept below it (its
    // replies were lost and another client with the key went on meanwhile: ring/kept-replies.ts).
    // Only to the key holder's request: the digest leaves out the reply address, so a copy of the
    // request with another one and no valid signature must not aim replies at any node.
    const kept = req.nonce < record.nonce ? r.keptReplies.find(clientHex, req.nonce) : undefined;
    const answered = req.nonce === record.nonce ? record : kept;
    if (answered && bytesEqual(answered.requestDigest, digest)) {
      if (r.requestValid(req)) r.sendReply(req.replyTo, req.clientKey, answered);
      return;
    }
    // A nonce this client's record passed (another client with the key, an app and a CLI call
    // sharing an identity, went first). Only one that never executed may be signed again: this
    // nonce with another request (the record's, or a kept one's), or one the record knows did not
    // execute (above its knownFrom, not among the last executed; one below that may have executed
    // earlier, its replies lost: answered, the client would sign it again and it would run twice).
    // Say so, once the request is the key holder's (a forged one must not aim answers at any
    // node), so the client signs again above it rather than waiting out its deadline.
    r.drop('nonce-reuse');
    const neverExecuted = answered !== undefined || neverExecutedBelow(record, req.nonce);
    if (!neverExecuted || !r.requestValid(req)) return;
    sendToClient(r, req.replyTo, { kind: 'nonce-passed', clientKey: req.clientKey, nonce: req.nonce, requestDigest: digest, executedNonce: record.nonce, replica: r.me });
  }
  if (r.pending.refuses(clientHex, req.nonce)) return r.drop('client-window');
  // Across keys, per connection, before the signature check (a fresh key per request is free). A
  // member's requests at a backup are its own (members relay to the primary only): bounded like a
  // client's. At the primary its relays carry its clients' requests: bounded at relayScale times.
  const size = req.operation.length;
  const scale = fromMember && r.isPrimary ? heldLimits.relayScale : 1;
  if (!r.pending.admits(from, size, scale) || (r.isPrimary && !r.queue.admits(from, size, scale))) return r.drop('held-full');
  if (!r.requestValid(req)) return r.drop('bad-signature');
  const missing = missingOf(r, req);
  if (missing.length > 0) {
    // Not timed at any replica, the primary included (as a backup after a view change it would
    // time it, and re-send it to each new primary): no primary proposes it before it has the blocks
    // (ring/replica-blocks.ts), and one that names a block never uploaded must not make every
    // primary look faulty in turn. The primary queues it among the requests waiting for blocks,
    // which never push a proposable one out (ClientRequests.add), and asks for the blocks; a backup
    // relays it. The client's retransmissions (or a backup's relay, below) bring it back once the
    // blocks are here.
    if (r.isPrimary && r.viewActive) {
      blocks.requestBlocks(r, missing, 'queued');
      enqueue(r, req, from, missing);
    } else if (!fromMember && r.viewActive) r.send(r.idOf(r.primary), req);
    return;
  }
  const held = r.pending.add(req, r.nowMs, from);
  if (held === 'refused') return r.drop('client-window');
  if (held === 'replaced') r.drop('client-window');
  if (r.isPrimary && r.viewActive) {
    enqueue(r, req, from, missing);
    tryIssueBatches(r);
  } else if (!fromMember && r.viewActive) {
    r.send(r.idOf(r.primary), req);
  }
}

/**
 * The first few blocks a request names that this replica lacks. Any client may name 65,536 blocks
 * nobody holds in one update: asking peers for all of them cost thousands of fetches per request,
 * and looking them all up again at every batch the request waits for cost the primary seconds.
 * The next few are asked for once these came.
 */
function missingOf(r: Replica, req: ClientRequest): Uint8Array[] {
  return r.service.blocksNeeded?.(req.operation, blocks.askedPerRequestMax) ?? [];
}

/**
 * Queues a request at the primary. One lacking blocks waits for them (ClientRequests.add): a
 * block's arrival wakes exactly the requests it completes (onBlockHere), its blocks are asked for
 * again with a backoff (onTick), and beyond heldLimits.waitingMax / waitingBytesMax the oldest
 * waiting go. A relayed one was held by no one on its way (a backup holds only what it can time),
 * so this is also what bounds one client going through a backup (the third review), and origins
 * being free names, what bounds the waiting in all (the fourth).
 */
export function enqueue(r: Replica, req: ClientRequest, origin: string, missing = missingOf(r, req)): void {
  if (r.inFlight.has(r.requestKey(req))) return;
  if (r.queue.readySize === 0 && missing.length === 0) r.queueSinceMs = r.nowMs;
  // A full client's requests still waiting for their blocks make room for any other: only
  // proposable ones may push a request out or keep one out (the backups time every request whose
  // blocks they hold, and a proposable request with a higher nonce passes it when it executes).
  const queued = r.queue.add(req, r.nowMs, origin, missing);
  if (queued === 'refused' || queued === 'replaced') r.drop('client-window');
  for (let shed = r.queue.shedWaiting(); shed > 0; shed--) r.drop('held-full');
}

/**
 * A queued request looked at again (for a batch, on a block's arrival, at its re-ask): done or in
 * flight, proposable, or the blocks it still lacks, asked for here (at most once a status period
 * each: requestBlocks).
 */
function recheck(r: Replica, req: ClientRequest): Verdict {
  const done = (r.clients.get(toHex(req.clientKey))?.nonce ?? -1) >= req.nonce;
  if (done || r.inFlight.has(r.requestKey(req))) return 'drop';
  const missing = missingOf(r, req);
  if (missing.length === 0) return 'ready';
  blocks.requestBlocks(r, missing, 'queued');
  return missing;
}

/**
 * Block `bguidHex` is here (uploaded or fetched): the primary's queued requests it completes are
 * proposable; whether any became so. O(1) for a block no queued request waits for.
 */
export function onBlockHere(r: Replica, bguidHex: string): boolean {
  if (r.queue.waitingSize === 0) return false;
  return r.queue.blockArrived(bguidHex, r.nowMs, (req) => recheck(r, req)) > 0;
}

/**
 * Primary: asks again for the blocks of the waiting requests whose re-ask is due, 1, 2, 4, ... up
 * to reaskPeriodsMax status periods apart (ring/waiting-index.ts). Before, every status period
 * for every waiting request, up to 64 blocks each, for as long as it waited (the fourth review:
 * 655,360 BGUIDs a second from 1,024 requests naming blocks never uploaded).
 */
export function onTick(r: Replica): void {
  if (!r.isPrimary || !r.viewActive || r.queue.waitingSize === 0) return;
  r.queue.reaskDue(r.nowMs, r.params.statusIntervalMs, (req) => recheck(r, req));
}

/** Primary: assigns sequence numbers while the pipeline and the window it may vote in (Replica.voteCeiling) have room. */
export function tryIssueBatches(r: Replica): void {
  if (!r.isPrimary || !r.viewActive) return;
  const p = r.params;
  // While the member list is about to change (a finite agreementLimit: the boundary), an idle
  // ring still reaches the boundary: empty batches, one at a time, up to it.
  const limited = Number.isFinite(r.config.agreementLimit?.() ?? Infinity);
  while (r.nextSeq <= r.voteCeiling) {
    const inFlight = r.nextSeq - 1 - r.lastExecuted;
    if (inFlight >= p.pipelineDepthMax) return;
    const heartbeatDue = p.heartbeatIntervalMs > 0 && r.nowMs - r.lastHeartbeatMs >= p.heartbeatIntervalMs;
    // Requests waiting for blocks are not proposable: they neither fill a batch nor hurry one.
    const ready = r.queue.readySize;
    const fillDue = inFlight === 0 && ready === 0 && limited;
    if (ready === 0 && !heartbeatDue && !fillDue) return;
    const young = r.nowMs - r.queueSinceMs < p.batchDelayMs;
    if (inFlight > 0 && ready < p.batchSizeMax && young && !heartbeatDue) return;
    const requests = takeBatchRequests(r);
    // Nothing proposable (every queued request done, in flight, or waiting for its blocks): stop;
    // a block's arrival wakes the requests it completes and tries again.
    if (requests.length === 0 && !heartbeatDue && !fillDue) return;
    if (heartbeatDue) r.lastHeartbeatMs = r.nowMs;
    const batch: Batch = { timestampMs: Math.max(Math.floor(r.nowMs), r.lastTimestampMs), heartbeat: heartbeatDue, requests };
    issue(r, r.nextSeq++, batch);
  }
}

/**
 * The next batch's requests: one per client (later nonces wait for the next batch, which keeps
 * nonce order simple), from the clients served longest ago. Requests waiting for blocks are not
 * looked at (ClientRequests.takeOnePerClient).
 */
function takeBatchRequests(r: Replica): ClientRequest[] {
  const requests = r.queue.takeOnePerClient(r.params.batchSizeMax, r.nowMs, (req) => recheck(r, req));
  r.queueSinceMs = r.nowMs;
  return requests;
}

export function issue(r: Replica, seq: number, batch: Batch): void {
  const digest = batchDigest(r.config.crypto, batch);
  const unsigned = { kind: 'pre-prepare', view: r.view, seq, digest, replica: r.me, batch } as const;
  const pp = r.sign(unsigned) as PrePrepare;
  r.acceptPrePrepare(pp);
  r.broadcast(pp);
}
