/**
 * Sizes a child's `fetch-blocks` requests to its link with the parent, so each answer takes about
 * `replyTargetMs` on the wire rather than whatever `treeLimits.blocksReplyBytesMax` (4 MiB) takes.
 *
 * Why (session 26): a parent answers a fetch-blocks with up to 4 MiB in one message. On a link
 * under ~2 MiB/s that message needed longer than the child's patience (gapTimeoutMs, 2 s): the
 * child saw nothing new, left its honest parent as withholding, and heartbeats queued behind the
 * message made it leave as silent too (docs/replica.md, "Slow tree links"). Asking for what the
 * link has shown it carries makes every honest answer arrive well inside that patience, keeps
 * heartbeats from waiting more than about a second behind block data, and lets the child count a
 * whole answer as progress (ParentLink.onBlocksArrived) instead of needing 2 MiB per clock.
 *
 * The rate is measured, not claimed: bytes of hash-checked blocks we asked for, divided by the
 * time since the request went out (round trip and the parent's service time included, so it never
 * overstates the link). Only the last answer counts, so a link that slows down is followed at the
 * next request. A parent that answers slowly on purpose only makes us ask for less; each request
 * is still at least `askBytesMin` (or every block left), so what it must deliver per clock has a
 * floor: tree links slower than about askBytesMin per gapTimeoutMs are not supported.
 */
import { assert } from '../core/assert.ts';
import { treeLimits } from './messages.ts';

/** The smallest request (unless fewer bytes are left): what a tree link must carry in about a second. */
export const askBytesMin = 256 * 1024;
/** How long an answer should take on the wire, at the rate the previous one showed. */
export const replyTargetMs = 1_500;

export class BlockPacer {
  /** The parent the outstanding request went to (null: none outstanding). */
  private askedOf: string | null = null;
  /** When the outstanding request first went out (a re-ask keeps it: the answer may be to the first). */
  private askedMs = -Infinity;
  /** When a request (or a re-ask) last went out. */
  lastAskMs = -Infinity;
  private askedCount = 0;
  /** Bytes per ms the last whole answer showed, and from whom. */
  private rate: { readonly of: string; readonly bytesPerMs: number } | null = null;
  /** Blocks received so far (their average size turns a byte budget into a count). */
  private seenCount = 0;
  private seenBytes = 0;

  /** Whether a request to `parent` is outstanding and younger than `timeoutMs`. */
  waiting(parent: string, nowMs: number, timeoutMs: number): boolean {
    return this.askedOf === parent && nowMs - this.lastAskMs < timeoutMs;
  }

  /** How many of the `missing` blocks to ask `parent` for now. */
  countToAsk(parent: string, missing: number): number {
    if (missing <= 0) return 0;
    // The first request (block size not known yet) asks for one block: its answer shows both.
    if (this.seenCount === 0) return 1;
    const rateBytesPerMs = this.rate?.of === parent ? this.rate.bytesPerMs : 0;
    const budgetBytes = Math.min(Math.max(rateBytesPerMs * replyTargetMs, askBytesMin), treeLimits.blocksReplyBytesMax);
    const averageBytes = this.seenBytes / this.seenCount;
    return Math.min(missing, treeLimits.fetchBlocksMax, Math.max(1, Math.floor(budgetBytes / averageBytes)));
  }

  /** A request for `count` blocks went to `parent` (a re-ask of the same one keeps its first time). */
  asked(parent: string, count: number, nowMs: number): void {
    assert(count > 0, 'a fetch-blocks asks for at least one block');
    if (this.askedOf !== parent) this.askedMs = nowMs;
    this.askedOf = parent;
    this.askedCount = count;
    this.lastAskMs = nowMs;
  }

  /**
   * An answer from `from` brought `count` of the blocks we asked for (`bytes` of them). Returns
   * whether it answered the outstanding request in full: every block asked for.
   */
  answered(from: string, count: number, bytes: number, nowMs: number): boolean {
    this.seenCount += count;
    this.seenBytes += bytes;
    if (this.askedOf !== from) return false;
    this.askedOf = null;
    if (count > 0) this.rate = { of: from, bytesPerMs: bytes / Math.max(1, nowMs - this.askedMs) };
    return count >= this.askedCount;
  }

  /** For tests and metrics: the measured rate from `parent` in bytes per ms (0: none yet). */
  rateFrom(parent: string): number {
    return this.rate?.of === parent ? this.rate.bytesPerMs : 0;
  }
}
