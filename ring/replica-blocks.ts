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
import { blockBytesMax, bguidOf } from '../core/version/block.ts';
import type { BlockData, Batch, FetchBlocks } from './messages.ts';
import type { Replica } from './replica.ts';

/**
 * Who asks for a block, each with its own budget: execution (a committed batch's blocks, or a
 * transferred state's), agreement (a backup's, for a pre-prepare) and the primary's queue (a
 * waiting request's, not budgeted: see inFlightBytesMax).
 */
export type BlockAsker = 'execution' | 'agreement' | 'queued';
type Budgeted = Exclude<BlockAsker, 'queued'>;
const budgeted = (asker: BlockAsker): asker is Budgeted => asker !== 'queued';

interface Wanted {
  readonly bguid: Uint8Array;
  readonly asker: BlockAsker;
  /** The members asked, in order; every ask stays valid (any correct answer satisfies it). */
  readonly askedOf: number[];
  /** When it was last asked (on the fetch clock, BlockState.clockMs). */
  askedMs: number;
  /** When a caller last needed it (requestBlocks): onTick forgets it three status periods on. */
  neededMs: number;
}

/** A member this replica asks for blocks, as heard from (times on the fetch clock). */
interface Source {
  /** Per asker, the open asks of it (blocks wanted and asked of it): its share bounds the budgeted (chooseMember). */
  readonly open: Record<BlockAsker, number>;
  /** How long its last answer to a budgeted ask took (from the ask). */
  latencyMs: number;
  /** Since when it has owed an answer to a budgeted ask: since its last answer, or the first ask after. */
  owingSinceMs: number;
}

export interface BlockState {
  /** BGUID hex -> the block asked for, in the order last needed (so onTick's expired ones lead). */
  readonly wanted: Map<string, Wanted>;
  /** Per budgeted asker, how many of `wanted` it asked for. */
  readonly wantedBy: Record<Budgeted, number>;
  /** Agreement's blocks not yet asked (beyond its budget): asked as the others arrive (pump). */
  readonly agreementNeed: Map<string, Uint8Array>;
  /** Per member (index). */
  readonly sources: Map<number, Source>;
  /**
   * The sizes of the last recentBlocksMax blocks received (a ring, next written at
   * recentBlockNext), starting full of the largest a block may be. blockBytesEstimate, the bytes a
   * block fetched next is taken to have, is the largest of them: one large block at once lets
   * fewer be asked, and only a run of recentBlocksMax smaller ones lets more. Until session 23's
   * review it was the largest received, halved at each smaller one: ~10 small blocks then let
   * 1,024 blocks of up to 4 MiB be asked (a client naming 20 of 64 B, then 200 of 512 KiB, made a
   * lagging backup ask for 100 MiB at once).
   */
  readonly recentBlockBytes: number[];
  recentBlockNext: number;
  blockBytesEstimate: number;
  /**
   * Time as the fetches see it: this replica's ticks, each counted at most half a status period.
   * After a stall of its own event loop, the answers its peers sent meanwhile wait in its socket
   * and are read after the first tick: on the wall clock every ask would look overdue then, and
   * every block in flight would be asked again of another.
   */
  clockMs: number;
  lastTickMs: number;
  /** The member the last new block was asked of: ties go to the members after it. */
  lastPeer: number;
  /** Set after a state transfer (and at boot) until the state's blocks are all present. */
  checkStateBlocks: boolean;
  blocked: boolean;
  /** Per member, the blocks sent to it within the last half status period (BGUID hex -> when). */
  readonly sent: Map<string, Map<string, number>>;
}

const blocksPerAnswerMax = 64;
/** How many of the last blocks received blockBytesEstimate looks at. */
const recentBlocksMax = 64;
/** How many of a queued request's missing blocks a primary asks for at a time (one fetch). */
export const askedPerRequestMax = blocksPerAnswerMax;
/** A block no caller needed within this many status periods is no longer wanted (onTick). */
const wantedPeriods = 3;
/**
 * A block asked this many status periods ago (fetch clock) is asked of one more member as well
 * (a hedge: the earlier asks stay valid, any correct answer satisfies them), and each further
 * hedge of it waits twice as long as the one before, up to hedgePeriodsMax. An age counted from
 * the ask, whatever else arrives meanwhile: a member that drips its answers delays the blocks
 * asked of it by that much at most, and the asks of a silent one reach a correct holder within
 * 2f-1 hedges (of the 3f others, f+1 correct ones hold what execution and agreement ask for, so at
 * most 2f-1 are faulty or lack it): 4 periods for f = 1, 4 + 8 + 16 = 28 for f = 2 (7 s at the
 * runtime's 250 ms, near its 6 s request timeout when agreement waits so; open). For
 * execution and agreement the first hedge waits longer when even the fastest member's last answer
 * took more than half of it (hedgeDue): on a busy machine the first of 8 blocks of 4 MiB asked by
 * a restarted server arrived 2.2 s (9 periods of 250 ms) after the ask, and each needless hedge
 * brings a copy more; a faulty member can make that wait shorter, not longer. The primary's queue
 * hedges after one period, as it re-asked before session 22: the backups time a request whose
 * blocks they hold while the primary fetches them.
 */
const hedgePeriods: Record<BlockAsker, number> = { execution: 4, agreement: 4, queued: 1 };
const hedgePeriodsMax = 16;
/**
 * Per budgeted asker, at most inFlightBytesMax of blocks wanted at once as blockBytesEstimate
 * counts them, and at most inFlightBlocksMax blocks. Execution and agreement ask for blocks a
 * correct replica holds (what 2f+1 prepared, or what a stable checkpoint reaches), possibly
 * thousands after a restart; the next are asked as these arrive (execution looks at what it lacks
 * again once half its budget is free, and at each tick; agreement's waiting blocks are asked by
 * pump). The estimate is only that: after recentBlocksMax small blocks in a row, up to
 * inFlightBlocksMax blocks of up to 4 MiB each can be asked before the first large one arrives and
 * raises it (a client can order 64 tiny blocks before large ones; asking by the sizes an update's
 * block references declare would close that, not done). Before
 * session 22 all were asked of every peer at once, and again each status period until they came:
 * a server restarted after missing 32 MiB had its peers build ~3 GiB of answers (their send queues
 * refused most) and stall up to 145 s. The primary's queue is not budgeted: any client can name
 * blocks nobody holds, which would hold a budget for good and starve the asks of a correct
 * client's request, which the backups time; it is bounded per request (askedPerRequestMax) and by
 * the queue's re-ask backoff instead, and its asks do not time the members (onBlockData).
 */
const inFlightBytesMax = 64 * 1024 * 1024;
const inFlightBlocksMax = 1024;

export function initialState(): BlockState {
  return {
    wanted: new Map(),
    wantedBy: { execution: 0, agreement: 0 },
    agreementNeed: new Map(),
    sources: new Map(),
    recentBlockBytes: new Array<number>(recentBlocksMax).fill(blockBytesMax),
    recentBlockNext: 0,
    blockBytesEstimate: blockBytesMax,
    clockMs: 0,
    lastTickMs: -Infinity,
    lastPeer: -1,
    checkStateBlocks: true,
    blocked: false,
    sent: new Map(),
  };
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
 * Asks for missing blocks, each of one member (chooseMember), and of one more each time its last
 * ask is old enough (hedgeDue). Within the asker's budget (budgetBlocks, and members' shares); the
 * rest wait for the caller's next call (execution: once half its budget is free, and each tick) or,
 * for agreement, for pump. Execution asks for all it lacks; a primary for at most
 * `askedPerRequestMax` of a queued request's blocks at a time (replica-requests.ts missingOf).
 */
export function requestBlocks(r: Replica, bguids: readonly Uint8Array[], asker: BlockAsker): void {
  if (asker !== 'agreement') return askFor(r, bguids, asker, false);
  // A pre-prepare's blocks beyond the budget wait here, and pump asks them as others arrive, not
  // only at the pre-prepare's next retransmission (which brings it back to be accepted).
  const need = r.blockState.agreementNeed;
  need.clear();
  for (const bguid of bguids) need.set(toHex(bguid), bguid);
  askFor(r, bguids, asker, false);
}

/** Asks agreement's waiting blocks as places free up. */
function pump(r: Replica): void {
  const s = r.blockState;
  if (s.agreementNeed.size > 0 && s.wantedBy.agreement < budgetBlocks(r)) askFor(r, s.agreementNeed.values(), 'agreement', true);
}

/** requestBlocks for `asker`; `newOnly`: `bguids` holds no block wanted already (agreementNeed). */
function askFor(r: Replica, bguids: Iterable<Uint8Array>, asker: BlockAsker, newOnly: boolean): void {
  const s = r.blockState;
  const asks = new Map<number, Uint8Array[]>();
  // This asker's wanted blocks met so far: once all are met (each refreshed and, if due, hedged),
  // with its budget full, nothing more is asked and the rest of the list (thousands, maybe) is not
  // walked. Counted per asker: until session 23's review it waited for both askers' blocks, so
  // while the other asker wanted any, each tick walked all execution lacks (toHex per block).
  // Another asker's blocks past that point are refreshed and hedged by its own calls (agreement:
  // the pre-prepare's retransmission); one it stops needing is forgotten after wantedPeriods and
  // then asked as this asker's.
  let seen = 0;
  const fastestMs = fastestAnswerMs(r);
  const full = (): boolean => budgeted(asker) && s.wantedBy[asker] >= budgetBlocks(r);
  for (const bguid of bguids) {
    if (full() && (newOnly || seen >= s.wantedBy[asker as Budgeted])) break;
    const key = toHex(bguid);
    let entry = s.wanted.get(key);
    if (entry) {
      if (entry.asker === asker) seen++;
      s.agreementNeed.delete(key);
      s.wanted.delete(key); // to the end: needed now
      s.wanted.set(key, entry);
      entry.neededMs = s.clockMs;
      if (!hedgeDue(r, entry, fastestMs)) continue;
    } else if (full()) continue;
    const peer = chooseMember(r, asker, entry?.askedOf ?? []);
    if (peer < 0) continue; // every member holds its share: asked once one answers
    if (!entry) {
      entry = { bguid, asker, askedOf: [], askedMs: s.clockMs, neededMs: s.clockMs };
      s.wanted.set(key, entry);
      s.agreementNeed.delete(key);
      if (budgeted(asker)) s.wantedBy[asker]++;
      s.lastPeer = peer;
    }
    ask(s, entry, peer);
    const list = asks.get(peer);
    if (list) list.push(bguid);
    else asks.set(peer, [bguid]);
  }
  for (const [peer, list] of asks) {
    for (let i = 0; i < list.length; i += blocksPerAnswerMax) {
      r.send(r.idOf(peer), { kind: 'fetch-blocks', bguids: list.slice(i, i + blocksPerAnswerMax) } satisfies FetchBlocks);
    }
  }
}

function ask(s: BlockState, entry: Wanted, peer: number): void {
  const source = sourceOf(s, peer);
  if (!entry.askedOf.includes(peer)) {
    source.open[entry.asker]++;
    entry.askedOf.push(peer);
  }
  if (budgeted(entry.asker) && source.owingSinceMs === Infinity) source.owingSinceMs = s.clockMs;
  entry.askedMs = s.clockMs;
}

/** Blocks a budgeted asker may want at once. */
function budgetBlocks(r: Replica): number {
  return Math.max(1, Math.min(inFlightBlocksMax, Math.floor(inFlightBytesMax / r.blockState.blockBytesEstimate)));
}

/**
 * Whether `entry`'s last ask is old enough to ask one more member: hedgePeriods, or for execution
 * and agreement twice the fastest member's last answer time if longer (a loaded ring: every
 * answer is late, and a hedge would only bring a copy more; a faulty member can make this shorter,
 * not longer), doubling with each member asked, up to hedgePeriodsMax.
 */
function hedgeDue(r: Replica, entry: Wanted, fastestMs: number): boolean {
  const period = r.params.statusIntervalMs;
  const baseMs = Math.max(hedgePeriods[entry.asker] * period, budgeted(entry.asker) ? 2 * fastestMs : 0);
  const ageMs = Math.min(hedgePeriodsMax * period, baseMs * 2 ** (entry.askedOf.length - 1));
  return r.blockState.clockMs - entry.askedMs >= ageMs;
}

/** The shortest last answer time among the members (0 while one has not answered yet). */
function fastestAnswerMs(r: Replica): number {
  let fastestMs = Infinity;
  for (let i = 0; i < r.n; i++) if (i !== r.me) fastestMs = Math.min(fastestMs, sourceOf(r.blockState, i).latencyMs);
  return fastestMs === Infinity ? 0 : fastestMs;
}

/**
 * The member to ask next for a block of `asker`'s, or -1: one with room in its share (below), not
 * asked for this block yet if there is one, then the fewest open asks, then the member after the
 * one the last new block was asked of. A member is late while its last answer took, or what it
 * owes has waited, hedgePeriods or more. The budget is shared among the members that are not late
 * (so one member, faulty or not, holds at most ceil(budget / prompt members)); a late one is asked
 * one block at a time (a probe: its answer, if prompt, makes it count again), or, when all are
 * late (a loaded ring), each gets ceil(budget / (n - 1)). A member that drips its answers or is
 * silent thus keeps the share it was given until it is late (about a hedge age after the first ask
 * it owes), then holds at most one place; what it is asked is asked of another hedgePeriods later.
 * (A member that answers its newest ask once a period never looks late: each answer resets what it
 * owes. It withholds the rest until hedged; docs/ring.md, measured in test/ring/block-fetch-f2.)
 * Late is a threshold (hedgePeriods) on the answers a member owes, not a count of misses.
 */
function chooseMember(r: Replica, asker: BlockAsker, askedOf: readonly number[]): number {
  const s = r.blockState;
  let promptCount = 0;
  for (let i = 0; i < r.n; i++) if (i !== r.me && !late(r, i)) promptCount++;
  const budget = budgetBlocks(r);
  let best = -1;
  let bestRank = Infinity;
  for (let k = 1; k < r.n; k++) {
    const i = (s.lastPeer + k + r.n) % r.n;
    if (i === r.me) continue;
    const open = sourceOf(s, i).open[asker];
    const isLateNow = late(r, i);
    const share = !budgeted(asker) ? Infinity : !isLateNow ? Math.ceil(budget / promptCount) : promptCount > 0 ? 1 : Math.ceil(budget / (r.n - 1));
    if (open >= share) continue;
    const rank = (askedOf.includes(i) ? 2 * r.n * inFlightBlocksMax : 0) + (isLateNow ? r.n * inFlightBlocksMax : 0) + open;
    if (rank < bestRank) [best, bestRank] = [i, rank];
  }
  return best;
}

/** Whether member `i` is late (chooseMember). Exported for tests. */
export function late(r: Replica, i: number): boolean {
  const source = sourceOf(r.blockState, i);
  return Math.max(source.latencyMs, r.blockState.clockMs - source.owingSinceMs) >= hedgePeriods.execution * r.params.statusIntervalMs;
}

function sourceOf(s: BlockState, peer: number): Source {
  let source = s.sources.get(peer);
  if (!source) s.sources.set(peer, (source = { open: { execution: 0, agreement: 0, queued: 0 }, latencyMs: 0, owingSinceMs: Infinity }));
  return source;
}

/** Block `key` is no longer wanted (here, or forgotten). Whether it was. */
function unwant(s: BlockState, key: string): boolean {
  s.agreementNeed.delete(key);
  const entry = s.wanted.get(key);
  if (!entry) return false;
  s.wanted.delete(key);
  if (budgeted(entry.asker)) s.wantedBy[entry.asker]--;
  for (const peer of entry.askedOf) {
    const source = sourceOf(s, peer);
    source.open[entry.asker]--;
    // Answered by another: it owes nothing now (its own answer, if any, comes as stale), and it
    // has taken at least as long as it owed to answer (a silent member stays late).
    if (source.open.execution + source.open.agreement === 0 && source.owingSinceMs !== Infinity) {
      source.latencyMs = Math.max(source.latencyMs, s.clockMs - source.owingSinceMs);
      source.owingSinceMs = Infinity;
    }
  }
  return true;
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
  if (unwant(r.blockState, key)) r.executeReady();
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

export function onBlockData(r: Replica, from: string, m: BlockData): void {
  const bguid = bguidOf(r.config.crypto, m.blockKind, m.bytes);
  const key = toHex(bguid);
  const s = r.blockState;
  const entry = s.wanted.get(key);
  // Only blocks this replica asked for, and only under the name they hash to.
  if (!entry || !r.service.putBlock) return r.drop('stale');
  r.service.putBlock(m.blockKind, m.bytes);
  noteBlockBytes(s, m.bytes.length);
  const peer = r.memberIndex.get(from);
  // Only a member's answer to a budgeted ask of it times it: the primary's queue asks for blocks
  // any client names, which nobody may hold, and that must not make correct members look late.
  if (peer !== undefined && budgeted(entry.asker) && entry.askedOf.includes(peer)) {
    const source = sourceOf(s, peer);
    source.latencyMs = s.clockMs - entry.askedMs;
    source.owingSinceMs = s.clockMs; // unwant below resets it if it owes nothing more
  }
  unwant(s, key);
  const woke = r.blockHere(key);
  // Execution looks at what it lacks (all of it: thousands of blocks, maybe) once half the budget
  // is free, and at each tick, not at every arrival: that made 2,000 small blocks cost seconds.
  if (s.blocked && s.wantedBy.execution + s.wantedBy.agreement <= budgetBlocks(r) / 2) r.executeReady();
  else if (woke) r.tryIssueBatches();
  pump(r);
}

/** Records a block received of `bytes` (blockBytesEstimate). */
function noteBlockBytes(s: BlockState, bytes: number): void {
  const replaced = s.recentBlockBytes[s.recentBlockNext]!;
  s.recentBlockBytes[s.recentBlockNext] = bytes;
  s.recentBlockNext = (s.recentBlockNext + 1) % recentBlocksMax;
  if (bytes >= s.blockBytesEstimate) s.blockBytesEstimate = bytes;
  else if (replaced === s.blockBytesEstimate) s.blockBytesEstimate = Math.max(...s.recentBlockBytes);
}

export function onTick(r: Replica): void {
  const s = r.blockState;
  s.clockMs += Math.min(Math.max(0, r.nowMs - s.lastTickMs), r.params.statusIntervalMs / 2);
  s.lastTickMs = r.nowMs;
  // Blocks nothing needed again (a queued request pushed out, a batch executed with blocks a
  // client put meanwhile) are forgotten; the entries needed longest ago lead.
  for (const [key, entry] of s.wanted) {
    if (s.clockMs - entry.neededMs < wantedPeriods * r.params.statusIntervalMs) break;
    unwant(s, key);
  }
  if (s.blocked) r.executeReady();
  pump(r);
}
