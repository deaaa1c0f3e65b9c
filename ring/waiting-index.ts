/**
 * The primary's queued requests that wait for blocks (ring/client-requests.ts), indexed by the
 * BGUIDs each was last found to lack, with the schedule of its re-asks. Before session 21 nothing
 * said which request a block completes: every attempt to issue batches looked at up to 4 × 256
 * waiting requests (a block lookup each), and every block arrival made such an attempt, so a tiny
 * put-block cost the primary ~6 ms while 1,024 requests waited; and each waiting request's blocks
 * were asked for again every status period for as long as it waited (1,024 requests naming 64
 * blocks never uploaded: 655,360 BGUIDs a second). Both reviews of session 20 left these open.
 */
import { toHex } from '../core/bytes.ts';

/**
 * Re-asks of a waiting request's blocks come 1, 2, 4, ... status periods after the last ask, at
 * most this many apart (a power of two). The first ask goes when the request arrives, and the
 * client's retransmissions ask again (at most once a status period per block): an honest request
 * whose block is late at the primary gets it from a backup at once, and one whose answer was lost
 * within a status period or two; what waits for ever costs 1/64 of the traffic it cost.
 */
export const reaskPeriodsMax = 64;
const levels = Math.log2(reaskPeriodsMax) + 1;

interface Entry<T> {
  readonly item: T;
  readonly bytes: number;
  /** BGUIDs (hex) it was last found to lack and has not seen arrive. */
  missing: Set<string>;
  /** Re-asks so far, capped: the next is 2^level status periods after askedMs. */
  level: number;
  askedMs: number;
}

export class WaitingIndex<T> {
  /** In the order they last arrived: the oldest is shed first (ClientRequests.shedWaiting). */
  private readonly entries = new Map<T, Entry<T>>();
  private readonly byBlock = new Map<string, Set<Entry<T>>>();
  /** Per level, in the order asked, so the due ones lead each set. */
  private readonly schedule: Set<Entry<T>>[] = Array.from({ length: levels }, () => new Set());
  private totalBytes = 0;
  /** Entries looked at (a block's arrival, a re-ask due): tests count the primary's work with it. */
  looks = 0;

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** BGUIDs some entry waits for (tests: the index holds nothing of a request let go). */
  get blocksIndexed(): number {
    return this.byBlock.size;
  }

  has(item: T): boolean {
    return this.entries.has(item);
  }

  /** `item` (not yet here) waits for `missing`, asked for now. */
  add(item: T, bytes: number, missing: readonly Uint8Array[], nowMs: number): void {
    const entry: Entry<T> = { item, bytes, missing: new Set(), level: 0, askedMs: nowMs };
    this.entries.set(item, entry);
    this.totalBytes += bytes;
    this.index(entry, missing);
    this.schedule[0]!.add(entry);
  }

  /** `item` arrived again: no longer the oldest. */
  touch(item: T): void {
    const entry = this.entries.get(item);
    if (!entry) return;
    this.entries.delete(item);
    this.entries.set(item, entry);
  }

  delete(item: T): boolean {
    const entry = this.entries.get(item);
    if (!entry) return false;
    this.entries.delete(item);
    this.totalBytes -= entry.bytes;
    this.unindex(entry);
    this.schedule[entry.level]!.delete(entry);
    return true;
  }

  oldest(): T | undefined {
    return this.entries.keys().next().value;
  }

  /**
   * Block `bguidHex` is here: the items it was the last missing block of (still held: the caller
   * looks at each again, as more of its blocks may be missing beyond those it was found to lack).
   * Costs the number of items waiting for it; nothing for a block nobody waits for.
   */
  arrived(bguidHex: string): T[] {
    const waiting = this.byBlock.get(bguidHex);
    if (!waiting) return [];
    this.byBlock.delete(bguidHex);
    const complete: T[] = [];
    for (const entry of waiting) {
      this.looks++;
      entry.missing.delete(bguidHex);
      if (entry.missing.size === 0) complete.push(entry.item);
    }
    return complete;
  }

  /** The items whose re-ask is due at `nowMs`; the caller `rewait`s or deletes each. Costs the number due. */
  due(nowMs: number, periodMs: number): T[] {
    const out: T[] = [];
    this.schedule.forEach((entries, level) => {
      const waitMs = periodMs * 2 ** level;
      for (const entry of entries) {
        if (nowMs - entry.askedMs < waitMs) break;
        this.looks++;
        out.push(entry.item);
      }
    });
    return out;
  }

  /**
   * `item` still waits, now for `missing`, asked for now. `backOff`: this was a re-ask, so the
   * next comes twice as late (up to reaskPeriodsMax); otherwise these are blocks not asked for
   * before (its earlier ones came), and the next re-ask is one status period away.
   */
  rewait(item: T, missing: readonly Uint8Array[], nowMs: number, backOff: boolean): void {
    const entry = this.entries.get(item)!;
    this.schedule[entry.level]!.delete(entry);
    this.unindex(entry);
    this.index(entry, missing);
    entry.level = backOff ? Math.min(entry.level + 1, levels - 1) : 0;
    entry.askedMs = nowMs;
    this.schedule[entry.level]!.add(entry);
  }

  clear(): void {
    this.entries.clear();
    this.byBlock.clear();
    for (const entries of this.schedule) entries.clear();
    this.totalBytes = 0;
  }

  private index(entry: Entry<T>, missing: readonly Uint8Array[]): void {
    for (const bguid of missing) {
      const key = toHex(bguid);
      if (entry.missing.has(key)) continue;
      entry.missing.add(key);
      let waiting = this.byBlock.get(key);
      if (!waiting) this.byBlock.set(key, (waiting = new Set()));
      waiting.add(entry);
    }
  }

  private unindex(entry: Entry<T>): void {
    for (const key of entry.missing) {
      const waiting = this.byBlock.get(key);
      if (!waiting) continue;
      waiting.delete(entry);
      if (waiting.size === 0) this.byBlock.delete(key);
    }
    entry.missing.clear();
  }
}
