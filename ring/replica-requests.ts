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
import { heldLimits } from './client-requests.ts';
import type { Replica } from './replica.ts';
import { batchDigest, requestDigest } from './signing.ts';


/** `from`: the connection it came in on (a client, or a member relaying it). */
export function onRequest(r: Replica, req: ClientRequest, from: string, fromMember: boolean): void {
  const clientHex = toHex(req.clientKey);
  const record = r.clients.get(clientHex);
  if (record && req.nonce <= record.nonce) {
    if (fromMember) return;
    const digest = requestDigest(r.config.crypto, req);
    // Retransmission: resend the cached reply.
    if (req.nonce === record.nonce && bytesEqual(record.requestDigest, digest)) return r.sendReply(req.replyTo, req.clientKey, record);
    // A nonce this client's record passed (another client with the key, an app and a CLI call
    // sharing an identity, went first). Only one that never executed may be signed again: this
    // nonce with another request, or one strictly between the last two this client executed
    // (one below those may have executed earlier, its replies lost: answered, the client would
    // sign it again and it would run twice). Say so, once the request is the key holder's (a
    // forged one must not aim answers at any node), so the client signs again above it rather
    // than waiting out its deadline.
    r.drop('nonce-reuse');
    const neverExecuted = req.nonce === record.nonce || req.nonce > record.previousNonce;
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
      blocks.requestBlocks(r, missing);
      enqueue(r, req, from);
      keepWaiting(r, req);
    } else if (!fromMember && r.viewActive) r.send(r.idOf(r.primary), req);
    return;
  }
  const held = r.pending.add(req, r.nowMs, from);
  if (held === 'refused') return r.drop('client-window');
  if (held === 'replaced') r.drop('client-window');
  if (r.isPrimary && r.viewActive) {
    enqueue(r, req, from);
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

/** Does this replica lack a block the request names? Such a request is not proposable yet. */
function lacksBlocks(r: Replica, req: ClientRequest): boolean {
  return (r.service.blocksNeeded?.(req.operation, 1) ?? []).length > 0;
}

export function enqueue(r: Replica, req: ClientRequest, origin: string): void {
  if (r.inFlight.has(r.requestKey(req))) return;
  if (r.queue.size === 0) r.queueSinceMs = r.nowMs;
  // A full client's requests still waiting for their blocks make room for any other: only
  // proposable ones may push a request out or keep one out (the backups time every request whose
  // blocks they hold, and a proposable request with a higher nonce passes it when it executes).
  const queued = r.queue.add(req, r.nowMs, origin, (held) => lacksBlocks(r, held));
  if (queued === 'refused' || queued === 'replaced') r.drop('client-window');
}

/**
 * Notes a request queued while it waits for its blocks, and lets the oldest such ones go beyond
 * heldLimits.waitingMax / waitingBytesMax. A relayed one was held by no one on its way (a backup
 * holds only what it can time), so this is also what bounds one client going through a backup
 * (the third review), and origins being free names, what bounds the queue (the fourth). Entries
 * of requests proposed or executed since are dropped from the notes as they come up.
 */
function keepWaiting(r: Replica, req: ClientRequest): void {
  const w = r.waiting;
  const key = r.requestKey(req);
  const known = w.order.get(key);
  if (known) w.bytes -= known.operation.length;
  w.order.delete(key);
  w.order.set(key, req);
  w.bytes += req.operation.length;
  while (w.order.size > heldLimits.waitingMax || w.bytes > heldLimits.waitingBytesMax) {
    const [oldKey, old] = w.order.entries().next().value as [string, ClientRequest];
    w.order.delete(oldKey);
    w.bytes -= old.operation.length;
    if (lacksBlocks(r, old) && r.queue.remove(old)) r.drop('held-full');
  }
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
    const fillDue = inFlight === 0 && r.queue.size === 0 && limited;
    if (r.queue.size === 0 && !heartbeatDue && !fillDue) return;
    const young = r.nowMs - r.queueSinceMs < p.batchDelayMs;
    if (inFlight > 0 && r.queue.size < p.batchSizeMax && young && !heartbeatDue) return;
    const requests = takeBatchRequests(r);
    // Nothing proposable (every queued request done, in flight, or waiting for its blocks): stop;
    // a block's arrival tries again.
    if (requests.length === 0 && !heartbeatDue && !fillDue) return;
    if (heartbeatDue) r.lastHeartbeatMs = r.nowMs;
    const batch: Batch = { timestampMs: Math.max(Math.floor(r.nowMs), r.lastTimestampMs), heartbeat: heartbeatDue, requests };
    issue(r, r.nextSeq++, batch);
  }
}

/**
 * The next batch's requests: one per client (later nonces wait for the next batch, which keeps
 * nonce order simple), from the clients served longest ago. A request naming blocks this replica
 * lacks stays queued (the client may still be uploading them) and the blocks are asked for.
 */
function takeBatchRequests(r: Replica): ClientRequest[] {
  const requests = r.queue.takeOnePerClient(r.params.batchSizeMax, (req) => {
    const done = (r.clients.get(toHex(req.clientKey))?.nonce ?? -1) >= req.nonce;
    if (done || r.inFlight.has(r.requestKey(req))) return 'drop';
    const missing = missingOf(r, req);
    if (missing.length === 0) return 'take';
    blocks.requestBlocks(r, missing);
    return 'wait';
  });
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
