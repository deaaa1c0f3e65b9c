/**
 * Blocks on the ring (DESIGN.md "Inner ring": bulk data stays off the agreement path). Clients
 * push content-addressed blocks to every replica (put-block; the replica hashes them), and ordered
 * updates name them by BGUID. Execution must see the same blocks everywhere, so a replica that
 * lacks a named block — or, after a state transfer, a block its object heads reach — does not
 * prepare or execute until it has fetched it from a peer (fetch-blocks / block-data, checked
 * against the BGUID it asked for). A correct primary only proposes requests whose blocks it has,
 * and 2f+1 prepares mean f+1 correct replicas hold them, so a fetch can always be answered.
 */
import { toHex } from '../core/bytes.ts';
import { HashTag, taggedHash } from '../core/crypto.ts';
import { bguidOf } from '../core/version/block.ts';
import type { BlockData, Batch, FetchBlocks } from './messages.ts';
import type { Replica } from './replica.ts';

export interface BlockState {
  /**
   * BGUID hex -> when it was last asked for, in the order asked (a re-ask moves an entry to the
   * end), so the entries no longer asked for lead and onTick forgets them.
   */
  readonly wanted: Map<string, { bguid: Uint8Array; askedMs: number }>;
  /** Set after a state transfer (and at boot) until the state's blocks are all present. */
  checkStateBlocks: boolean;
  blocked: boolean;
  /** Per member, the blocks sent to it within the last half status period (BGUID hex -> when). */
  readonly sent: Map<string, Map<string, number>>;
}

const blocksPerAnswerMax = 64;
/** How many of a queued request's missing blocks a primary asks for at a time (one fetch). */
export const askedPerRequestMax = blocksPerAnswerMax;
/** A block not asked for again within this many status periods is no longer wanted (onTick). */
const wantedPeriods = 3;

export function initialState(): BlockState {
  return { wanted: new Map(), checkStateBlocks: true, blocked: false, sent: new Map() };
}

/** Missing blocks the batch's requests name (empty when the service keeps no blocks). */
export function missingForBatch(r: Replica, batch: Batch): Uint8Array[] {
  const needed = r.service.blocksNeeded;
  if (!needed) return [];
  return batch.requests.flatMap((req) => needed.call(r.service, req.operation));
}

export function missingForState(r: Replica): Uint8Array[] {
  const s = r.blockState;
  if (!s.checkStateBlocks || !r.service.missingStateBlocks) return [];
  const missing = r.service.missingStateBlocks();
  if (missing.length === 0) s.checkStateBlocks = false;
  return missing;
}

/**
 * Asks the peers for missing blocks, each at most once per status period. Execution asks for all
 * it lacks (what 2f+1 replicas prepared, so f+1 correct ones hold it). A primary asks for at most
 * `askedPerRequestMax` of a queued request's blocks at a time (replica-requests.ts missingOf).
 */
export function requestBlocks(r: Replica, bguids: readonly Uint8Array[]): void {
  const s = r.blockState;
  const ask: Uint8Array[] = [];
  for (const bguid of bguids) {
    const key = toHex(bguid);
    const held = s.wanted.get(key);
    if (held && r.nowMs - held.askedMs < r.params.statusIntervalMs) continue;
    s.wanted.delete(key);
    s.wanted.set(key, { bguid, askedMs: r.nowMs });
    ask.push(bguid);
  }
  for (let i = 0; i < ask.length; i += blocksPerAnswerMax) {
    const m: FetchBlocks = { kind: 'fetch-blocks', bguids: ask.slice(i, i + blocksPerAnswerMax) };
    r.broadcast(m);
  }
}

/**
 * An upload. Beyond storing it, O(1) for a block already here or one no queued request waits
 * for: before session 21 every upload made the primary try to issue batches, looking at up to
 * 4 × 256 requests waiting for blocks (~6 ms a tiny put-block while 1,024 waited).
 */
export function onPutBlock(r: Replica, from: string, block: Uint8Array): void {
  const bguid = r.service.putBlock ? r.service.putBlock('data', block) : taggedHash(r.config.crypto, HashTag.dataBlock, block);
  if (!r.service.putBlock) r.ctx.store.put(`blk/${toHex(bguid)}`, block);
  r.send(from, { kind: 'block-stored', bguid, replica: r.me });
  const key = toHex(bguid);
  const woke = r.blockHere(key);
  if (r.blockState.wanted.delete(key)) r.executeReady();
  else if (woke) r.tryIssueBatches();
}

/**
 * Sends a member the blocks it asks for, each at most once per half status period: a fetcher asks
 * again only after a whole one (requestBlocks; the half leaves room for network jitter), and a
 * fetch of 64 BGUIDs (a few KiB) could otherwise be answered with 64 blocks of up to 4 MiB as often
 * as a faulty member cares to send it.
 */
export function onFetchBlocks(r: Replica, from: string, m: FetchBlocks): void {
  if (!r.service.getBlock) return;
  const sent = recentlySent(r, from);
  for (const bguid of m.bguids.slice(0, blocksPerAnswerMax)) {
    const key = toHex(bguid);
    if (sent.has(key)) {
      r.drop('rate-limited');
      continue;
    }
    const block = r.service.getBlock(bguid);
    if (!block) continue;
    sent.set(key, r.nowMs);
    r.send(from, { kind: 'block-data', blockKind: block.kind, bytes: block.bytes } satisfies BlockData);
  }
}

/** The blocks sent to `member` within the last half status period (older entries are dropped here). */
function recentlySent(r: Replica, member: string): Map<string, number> {
  let sent = r.blockState.sent.get(member);
  if (!sent) r.blockState.sent.set(member, (sent = new Map()));
  // Entries are in the order sent: the expired ones lead.
  for (const [key, atMs] of sent) {
    if (r.nowMs - atMs < r.params.statusIntervalMs / 2) break;
    sent.delete(key);
  }
  return sent;
}

export function onBlockData(r: Replica, m: BlockData): void {
  const bguid = bguidOf(r.config.crypto, m.blockKind, m.bytes);
  const key = toHex(bguid);
  // Only blocks this replica asked for, and only under the name they hash to.
  if (!r.blockState.wanted.has(key) || !r.service.putBlock) return r.drop('stale');
  r.service.putBlock(m.blockKind, m.bytes);
  r.blockState.wanted.delete(key);
  const woke = r.blockHere(key);
  if (r.blockState.blocked) r.executeReady();
  else if (woke) r.tryIssueBatches();
}

export function onTick(r: Replica): void {
  // Blocks nothing asked for again (a queued request pushed out, a batch executed with blocks a
  // client put meanwhile) are forgotten; the entries asked for longest ago lead.
  const wanted = r.blockState.wanted;
  for (const [key, entry] of wanted) {
    if (r.nowMs - entry.askedMs < wantedPeriods * r.params.statusIntervalMs) break;
    wanted.delete(key);
  }
  if (r.blockState.blocked) r.executeReady();
}
