/**
 * Sizes a child's `fetch-blocks` requests to its parent, so each answer takes about
 * `replyTargetMs` rather than whatever `treeLimits.blocksReplyBytesMax` (4 MiB) takes.
 *
 * Why (session 26): a parent answers a fetch-blocks with up to 4 MiB in one message. On a link
 * under ~2 MiB/s that message needed longer than the child's patience (gapTimeoutMs, 2 s): the
 * child saw nothing new, left its honest parent as withholding, and heartbeats queued behind the
 * message made it leave as silent too (docs/replica.md, "Slow tree links").
 *
 * An answer's time is modelled as a fixed part (round trip, the parent's service time: a loaded
 * ring server can take a second or more whatever the size) plus a part per byte (the link). Both
 * come from two whole answers of different sizes from this parent; with only one (or a pair no
 * line with a positive slope and a fixed part of zero or more fits), all of it is taken as per
 * byte, which never overstates the link. A request then gets replyTargetMs less the fixed part of
 * wire time, but at least as much as the fixed part (between wireMsMin and wireMsMax): a parent
 * slow for every request gets large ones (the fixed part amortised, as the old 4 MiB requests
 * did), a slow link small ones. While the two sizes are not known yet, a request one block larger
 * than the model asks for goes out when even its worst answer fits the child's wait: it tells the
 * two parts apart (session-26 review: with a fixed 1 s service time, requests stayed at one block
 * for good, 16 MiB took 70 s where 4 MiB requests took 6 s).
 *
 * Only whole answers are measured (every block asked for), from the request they answer; the
 * block size that turns bytes into a count is averaged over the version being fetched only (one
 * averaged over the object's history asked for a thousand 4 KiB blocks one at a time after 1 MiB
 * ones: review). The first request of each version asks for one block. Each request is at least
 * `askBytesMin` (or every block left).
 */
import { assert } from '../core/assert.ts';
import { treeLimits } from './messages.ts';

/** The smallest request (unless fewer bytes are left): what a tree link must carry in about a second. */
export const askBytesMin = 256 * 1024;
/** How long an answer should take, fixed part included. */
export const replyTargetMs = 1_500;
/** The least wire time a request is given, however small its share of the answer's time. */
const wireMsMin = replyTargetMs / 3;
/** The most wire time a request is given, however large the fixed part: heartbeats queue behind it. */
const wireMsMax = 2_000;
/** Two sizes tell the parts apart only if they differ by this share at least. */
const sizeSpreadMin = 0.25;
/** The slowest link the tree is built for, ms per byte: askBytesMin in 2 s (gapTimeoutMs), ~128 KiB/s. */
const linkMsPerByteMax = 2_000 / askBytesMin;
/** A request asks for at most this many times the bytes of the last whole answer. */
const growthMax = 4;
/** The fastest a link is ever taken to be, ms per byte (100 MiB/s): a slope at or under zero says little. */
const msPerByteMin = 1_000 / (100 * 1024 * 1024);
/** A request (and a probe, one block more) is sized so an all-per-byte answer takes at most this share of the patience. */
const patienceShare = 0.8;

/** A block request's answer is awaited this many times what the parent's answers showed it should take. */
export const answerSlack = 1.5;

/** How long a child waits for an answer: `baseMs` at least, `capMs` at most (ParentLink.patience). */
export interface Patience {
  readonly baseMs: number;
  readonly capMs: number;
}

/** The wait for an answer expected to take `expectedMs` (null: no estimate); never over the cap. */
export function patienceFor(p: Patience, expectedMs: number | null): number {
  return Math.min(expectedMs === null ? p.baseMs : Math.max(p.baseMs, answerSlack * expectedMs), p.capMs);
}

/**
 * An outstanding request is asked again (the same blocks, once) when it is this many times older
 * than expected (and blocksReplyTimeoutMs at least): its answer may be lost with its connection.
 * Not sooner, and not twice: each copy is a whole answer more on the wire, and a parent merely
 * slower than its model got two or three (third review).
 */
const reaskAfterExpected = 2;

interface Sample {
  readonly bytes: number;
  readonly ms: number;
}

/**
 * A request not answered yet: to whom, in which attachment to it (ParentLink.attachCount: a
 * request from before a detach timed the first answer after re-attaching from then, 19 s for
 * 512 KiB: review), when first sent, how many blocks, and whether it was asked again.
 */
interface Outstanding {
  readonly parent: string;
  readonly attachment: number;
  readonly firstMs: number;
  readonly count: number;
  reasked: boolean;
}

export class BlockPacer {
  private outstanding: Outstanding | null = null;
  /** When a request (or a re-ask) last went out. */
  lastAskMs = -Infinity;
  /**
   * The answer after a re-asked request's is not measured: the re-ask's own answer may be on the
   * wire in front of it (third review: such an answer read as a 2.4 s fixed part on a fast link,
   * requests grew to 14 blocks on a 0.6 MiB/s link, and heartbeats queued behind them).
   */
  private skipNextSample = false;
  /**
   * How long the re-asked request's copy may hold the wire in front of the next answer (its own
   * answer's time): added to what the next request is expected to take, so the child waits for it
   * (a copy of a 4 MiB block on a 2.5 MiB/s link made the next answer late, and the child left).
   */
  private copyAheadMs = 0;
  /** The parent and attachment of the last request. */
  private lastAsked: { readonly parent: string; readonly attachment: number } | null = null;
  /** The last two whole answers, oldest first, and whose. */
  private samples: Sample[] = [];
  private samplesOf: string | null = null;
  /** Blocks received of the version being fetched (their average size turns bytes into a count). */
  private version = -1;
  private seenCount = 0;
  private seenBytes = 0;

  /**
   * Whether a request to `parent` (in this `attachment`) is outstanding and not yet due to be
   * asked again: younger than `timeoutMs` and than reaskAfterExpected times its expected time.
   */
  waiting(parent: string, attachment: number, nowMs: number, timeoutMs: number, patienceMs: number): boolean {
    if (!this.isOutstanding(parent, attachment)) return false;
    if (this.outstanding!.reasked) return true;
    // No model yet: as long as the request would take on the slowest link the tree is built for
    // (a first request re-asked at 1 s while a 4 MiB block was still on a 2.5 MiB/s link put a
    // copy in front of the next answer: fourth review), but no longer than half the child's wait,
    // or the second answer cannot come in time (fifth review: a lost first answer of a 2-block
    // version then always cost a parent change).
    const expectedMs = this.expectedAnswerMs(parent);
    const slowestMs = (this.seenCount > 0 ? this.outstanding!.count * this.averageBlockBytes : askBytesMin) * linkMsPerByteMax;
    return nowMs - this.lastAskMs < Math.max(timeoutMs, expectedMs === null ? Math.min(slowestMs, patienceMs / 2) : reaskAfterExpected * expectedMs);
  }

  /** How many blocks the outstanding request to `parent` asked for (a re-ask asks for the same), or null. */
  outstandingCount(parent: string, attachment: number): number | null {
    return this.isOutstanding(parent, attachment) ? this.outstanding!.count : null;
  }

  private isOutstanding(parent: string, attachment: number): boolean {
    return this.outstanding !== null && this.outstanding.parent === parent && this.outstanding.attachment === attachment;
  }

  /**
   * How many of the `missing` blocks of `version` to ask `parent` for now; `patience`: how long
   * the child waits for the answer before it leaves the parent (patienceFor).
   */
  countToAsk(parent: string, attachment: number, version: number, missing: number, patience: Patience): number {
    if (missing <= 0) return 0;
    if (version !== this.version) {
      this.version = version;
      this.seenCount = 0;
      this.seenBytes = 0;
    }
    // The last request to this parent went unanswered in an earlier attachment (the child left):
    // the model that sized it is not trusted again (third review: a model fooled by a parent's
    // varying service time asked for the same request after every re-attach, left each time).
    const o = this.outstanding;
    if (o && o.parent === parent && o.attachment !== attachment && this.samplesOf === parent) this.samples = [];
    if (this.seenCount === 0) return 1;
    const averageBytes = this.averageBlockBytes;
    const countMax = Math.min(missing, treeLimits.fetchBlocksMax, Math.max(1, Math.floor(treeLimits.blocksReplyBytesMax / averageBytes)));
    const model = this.modelOf(parent);
    if (!model) return Math.min(countMax, Math.max(1, Math.floor(askBytesMin / averageBytes)));
    // At least as much wire time as the fixed part (half of each answer's time is then data), but
    // no more than wireMsMax: heartbeats queue behind it.
    const wireMs = Math.min(Math.max(replyTargetMs - model.fixedMs, model.fixedMs, wireMsMin), wireMsMax);
    const last = this.samples[this.samples.length - 1]!;
    const safeBytes = safeBytesFor(model, last, patience);
    const bytes = Math.min(Math.max(Math.min(wireMs / model.msPerByte, growthMax * last.bytes, safeBytes), askBytesMin), treeLimits.blocksReplyBytesMax);
    let count = Math.max(1, Math.floor(bytes / averageBytes));
    // Not told apart yet, and this request would not tell them: one block more, if safe.
    if (!model.twoSizes && count * averageBytes <= last.bytes * (1 + sizeSpreadMin) && last.bytes + averageBytes <= safeBytes) count = Math.max(count, Math.ceil((last.bytes + averageBytes) / averageBytes));
    return Math.min(countMax, count);
  }

  /**
   * A request for `count` blocks went to `parent` in `attachment`. The same request asked again
   * (for the same blocks, so its second answer brings nothing and is ignored) keeps its first
   * time: its answer is timed from then, which may understate the link, never overstate it.
   */
  asked(parent: string, attachment: number, count: number, nowMs: number): void {
    assert(count > 0, 'a fetch-blocks asks for at least one block');
    if (this.isOutstanding(parent, attachment)) {
      this.outstanding!.reasked = true;
    } else {
      // A request to another parent or attachment: the copy that would have delayed it is not on
      // this wire (the flag carried over locked requests at one block: fourth review).
      const last = this.lastAsked;
      if (last && (last.parent !== parent || last.attachment !== attachment)) this.skipNextSample = false;
      this.outstanding = { parent, attachment, firstMs: nowMs, count, reasked: false };
    }
    this.lastAsked = { parent, attachment };
    this.lastAskMs = nowMs;
  }

  /**
   * An answer from `from` brought `count` of the blocks we asked for (`bytes` of them). Returns
   * whether it answered the outstanding request in full: every block asked for. An answer that
   * brings none (to a re-ask whose blocks came already) leaves the request outstanding: timing
   * the real answer against a later request overstated the link (review).
   */
  answered(from: string, attachment: number, count: number, bytes: number, nowMs: number): boolean {
    this.seenCount += count;
    this.seenBytes += bytes;
    const o = this.outstanding;
    if (!o || o.parent !== from || o.attachment !== attachment || count === 0) return false;
    this.outstanding = null;
    const whole = count >= o.count;
    if (whole && !this.skipNextSample) this.sample(from, { bytes, ms: Math.max(1, nowMs - o.firstMs) });
    this.skipNextSample = o.reasked;
    this.copyAheadMs = o.reasked ? nowMs - o.firstMs : 0;
    return whole;
  }

  /**
   * How long the outstanding request's answer should take by `parent`'s model (null: no request
   * outstanding to it, or no model yet). The child waits for it a while longer than this before
   * it calls the parent withholding (ParentLink.gapPatienceMs).
   */
  expectedAnswerMs(parent: string): number | null {
    const o = this.outstanding;
    const model = this.modelOf(parent);
    if (!o || o.parent !== parent || this.seenCount === 0 || !model) return null;
    const copyMs = this.skipNextSample ? this.copyAheadMs : 0;
    return model.fixedMs + o.count * this.averageBlockBytes * model.msPerByte + copyMs;
  }

  /** The model of `parent`'s answers (null: none yet, or the samples are another parent's). */
  modelOf(parent: string): { readonly msPerByte: number; readonly fixedMs: number; readonly twoSizes: boolean } | null {
    return this.samplesOf === parent ? this.model() : null;
  }

  /** The average size of the blocks received of the version being fetched (seenCount > 0). */
  private get averageBlockBytes(): number {
    return this.seenBytes / this.seenCount;
  }

  /**
   * Keeps the new answer and whichever of the two before it differs most from it in size: two
   * sizes once known stay known (replacing the newer of a pair with an answer of about its size
   * could leave two too close to tell the parts apart: review).
   */
  private sample(from: string, s: Sample): void {
    if (this.samplesOf !== from) this.samples = [];
    this.samplesOf = from;
    let partner: Sample | null = null;
    for (const o of this.samples) if (!partner || Math.abs(o.bytes - s.bytes) >= Math.abs(partner.bytes - s.bytes)) partner = o;
    this.samples = partner ? [partner, s] : [s];
  }

  /**
   * Time per byte and fixed time of an answer. From two sizes far enough apart whose line has a
   * positive slope and a fixed part of zero or more: that line (its slope at least msPerByteMin and
   * at most the newer answer's average). Otherwise: all per byte, from the newest answer.
   */
  private model(): { msPerByte: number; fixedMs: number; twoSizes: boolean } | null {
    const b = this.samples[this.samples.length - 1];
    if (!b) return null;
    const a = this.samples.length > 1 ? this.samples[0]! : null;
    const average = b.ms / b.bytes;
    if (!a || !apart(a, b)) return { msPerByte: average, fixedMs: 0, twoSizes: false };
    const slope = (b.ms - a.ms) / (b.bytes - a.bytes);
    // A line whose fixed part would be below zero (an outlier: one slow answer among quick ones)
    // tells nothing apart: all per byte, and probe again (second review: with the fixed part only
    // clamped, such a pair held requests at one block for good). Dropping such pairs outright
    // threw away genuine ones when the parent's service time varies (third review).
    // Nor does one whose slope is zero or less (the larger answer came as fast or faster: the
    // parent's service time varied): taken as a fast link, it asked a 0.6 MiB/s link for 3 s of
    // data at a time, and heartbeats queued behind it.
    const small = a.bytes <= b.bytes ? a : b;
    if (slope <= 0 || slope > small.ms / small.bytes) return { msPerByte: average, fixedMs: 0, twoSizes: false };
    const msPerByte = Math.min(average, Math.max(slope, msPerByteMin));
    return { msPerByte, fixedMs: Math.min(Math.max(b.ms - b.bytes * msPerByte, 0), b.ms), twoSizes: true };
  }
}

function apart(a: Sample, b: Sample): boolean {
  return Math.abs(b.bytes - a.bytes) >= sizeSpreadMin * Math.max(a.bytes, b.bytes);
}

/**
 * The most bytes a request may ask for, whatever the model says, so that even the worst answer
 * comes within `patienceShare` of the wait the request will get (patienceFor its expected time):
 * a model fooled by a parent whose service time varies (or by answers skewed by what queued beside
 * them) once asked a 0.6 MiB/s link for 4 MiB, and (third review) for 6 blocks it could not bring
 * within the wait, again after every re-attach. The worst answer for B bytes takes the last
 * answer's time plus, for each byte more, the last answer's average, or the slowest supported
 * link's time if that is less (a parent taking 3.5 s for every answer is not a 73 KiB/s link:
 * review). With expected = fixed + B·perByte, safe if worst ≤ share·min(base, cap), or worst ≤
 * share·cap and worst ≤ share·slack·expected. The price: a parent slow for every request (a loaded
 * ring server) grows its requests slowly, since its answers cannot be told from a slow link's.
 */
function safeBytesFor(model: { msPerByte: number; fixedMs: number }, last: Sample, patience: Patience): number {
  const perByte = Math.min(last.ms / last.bytes, linkMsPerByteMax);
  // worst(B) = last.ms + (B - last.bytes)·perByte ≤ limitMs
  const upTo = (limitMs: number): number => last.bytes + (limitMs - last.ms) / perByte;
  const k = patienceShare * answerSlack;
  // worst(B) ≤ k·(fixed + B·perByteModel), an upper bound on B when perByte > k·perByteModel
  const byExpected = perByte <= k * model.msPerByte ? Infinity : (k * model.fixedMs - last.ms + last.bytes * perByte) / (perByte - k * model.msPerByte);
  return Math.max(upTo(patienceShare * Math.min(patience.baseMs, patience.capMs)), Math.min(upTo(patienceShare * patience.capMs), byExpected));
}
