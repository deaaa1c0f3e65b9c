/**
 * The upward half of a secondary replica for one object: finding a parent (locator candidates,
 * then the redirects of full members), renewing the membership, noticing a parent that is
 * silent or withholds versions, and re-attaching elsewhere. It never decides whether data is
 * true (ObjectCopy does); it only decides whom to listen to.
 */
import type { RandomSource } from '../core/machine.ts';
import { patienceFor, type Patience } from './block-pacer.ts';
import { defaultChildSetOptions } from './children.ts';
import type { ReplicaEffect, ReplicaEvent } from './events.ts';
import { treeLimits } from './messages.ts';
import type { ObjectCopy } from './object-copy.ts';
import type { TreeLocator } from './types.ts';

export interface ParentTiming {
  /** Renew membership (and ask for a gap fill) this often. */
  readonly renewMs: number;
  /**
   * No newer heartbeat and no progress for this long: the parent is gone (or feeds us nothing).
   * Heartbeat period × 3 or more; stretched for objects whose heartbeats come less often.
   */
  readonly parentTimeoutMs: number;
  /** The most that stretch may reach (a parent that forwards ever fewer heartbeats widens it). */
  readonly parentSilenceMaxMs?: number;
  /** The silence allowed while the object's heartbeat period is not known yet (one heartbeat held). */
  readonly parentSilenceUnknownMs?: number;
  /**
   * What a parent delivers is news only if certified at most parentTimeoutMs plus this long ago
   * (clock skew between hosts and a loaded ring's certification delay; default 30 s), or on the
   * way to a version a heartbeat that recent names: a parent forwarding each heartbeat, or each
   * version, late kept its child as far behind as it liked, for ever (session-22 second review;
   * session-23 review: versions too, and a bound the parent cannot stretch).
   */
  readonly heartbeatSlackMs?: number;
  readonly attachTimeoutMs: number;
  /**
   * Behind a version we hold certified proof of, without progress, for this long while the parent
   * has it: the parent withholds. Progress is what one honest answer to a fetch brings at the
   * least (see ParentLink.delivered), not any delivery: a parent forwarding one old version at a
   * time, each within this timeout, kept its child behind for ever (session-23 review, the dribble).
   */
  readonly gapTimeoutMs: number;
  /**
   * Same, but the parent says it lacks the version too: wait longer (it is re-attaching and
   * catching up, or it lies about being behind, which this bounds).
   */
  readonly parentBehindTimeoutMs: number;
  readonly fetchRetryMs: number;
  /**
   * A fetch whose answer has not come (no progress since) is asked again only after this long
   * (default 1.2 s): on a slow link the answer is still on the wire, and asking every fetchRetryMs
   * queued copy after copy of it in front of the next answer (session 26). Well under
   * gapTimeoutMs, so that a lost answer is asked again and comes before the child gives up on an
   * honest parent (1.5 s left 0.5 s for the round trip and the wire: review).
   */
  readonly fetchReplyTimeoutMs?: number;
  /**
   * A refused or unanswered attach makes that candidate wait this long; each further one in a row
   * (for this object) doubles the wait, up to refusedBackoffMaxMs.
   */
  readonly retryBackoffMs: number;
  readonly refusedBackoffMaxMs?: number;
  readonly distrustSilentMs: number;
  readonly distrustLiarMs: number;
  /**
   * Extra patience per block still missing of a version that came as block references (large
   * transfers take longer than a push; every reply that brings blocks restarts the clock anyway).
   */
  readonly blockWaitMsPerBlock?: number;
  /**
   * A fetch-blocks still unanswered after this long, and after twice what the parent's answers
   * say it should take (BlockPacer), is asked again, once, for the same blocks (a reply may be lost with
   * its connection; default 1 s, 3 s before session 26: a lost answer was then asked again too late
   * to come within the child's patience). Until then no second one goes out: re-asking every
   * fetchRetryMs while a busy parent worked through the first made it read and send the same
   * blocks again and again.
   */
  readonly blocksReplyTimeoutMs?: number;
}

export const defaultParentTiming: ParentTiming = {
  renewMs: 1_000,
  parentTimeoutMs: 3_500,
  parentSilenceMaxMs: 120_000,
  parentSilenceUnknownMs: 30_000,
  heartbeatSlackMs: 30_000,
  attachTimeoutMs: 1_000,
  gapTimeoutMs: 2_000,
  parentBehindTimeoutMs: 8_000,
  fetchRetryMs: 300,
  fetchReplyTimeoutMs: 1_200,
  retryBackoffMs: 200,
  refusedBackoffMaxMs: 10_000,
  distrustSilentMs: 10_000,
  distrustLiarMs: 600_000,
  blockWaitMsPerBlock: 100,
  blocksReplyTimeoutMs: 1_000,
};

/** Heartbeat periods without a newer heartbeat (or progress) before the parent is left. */
const silentHeartbeatPeriods = 3.5;

/** Bounds on the distrust list (shared by a member's objects) and on each link's refusal list. */
const distrustedMax = 1024;
const refusalsMax = 256;

type LinkState =
  | { readonly kind: 'detached'; readonly retryAtMs: number }
  | { readonly kind: 'attaching'; readonly to: string; readonly sinceMs: number }
  | { readonly kind: 'attached'; readonly to: string; lastHeardMs: number; lastRenewMs: number };

export interface ParentLinkOptions {
  readonly selfId: string;
  readonly aguid: Uint8Array;
  readonly copy: ObjectCopy;
  readonly locator: TreeLocator;
  readonly random: RandomSource;
  readonly timing: ParentTiming;
  /** Shared with the member's other objects. */
  readonly distrustedUntilMs: Map<string, number>;
  /** Names a redirect may send us to (tree members); a refuser can name anything. */
  readonly isTreeMember: (id: string) => boolean;
  /**
   * What an honest parent puts in one push (ChildSetOptions entriesPerPushMax and pushBytesMax;
   * the members of a tree share them): what counts as progress on a gap. Default: the defaults.
   */
  readonly pushLimits?: { readonly entriesMax: number; readonly bytesMax: number };
  /**
   * How long the answer to the outstanding fetch-blocks to `parent` should take, by what this
   * parent's answers have shown (BlockPacer.expectedAnswerMs); null: no estimate.
   */
  readonly expectedBlocksAnswerMs?: (parent: string) => number | null;
  readonly emit: (event: ReplicaEvent) => void;
}

export class ParentLink {
  private state: LinkState = { kind: 'detached', retryAtMs: 0 };
  /** Our path from the root, ending with our parent; kept while re-attaching so the subtree stays cycle-free. */
  path: readonly string[] = [];
  private redirects: string[] = [];
  /** When the withholding clock last (re)started: null while we are not behind. */
  private behindSinceMs: number | null = null;
  /**
   * Since then: the first version we lacked, how many versions make progress (the gap then, up to
   * one push), and the bytes and blocks delivered. Only progress restarts the clock.
   */
  private window = { fromVersion: 0, versionsWanted: 1, bytes: 0, blocks: 0 };
  private lastFetchMs = -Infinity;
  /** The first version the parent lacks, as it told us (attach-ok) or showed us (pushes). */
  private parentNextVersion = 0;
  /** Times this link attached (the first attach included). */
  attachCount = 0;
  /**
   * Candidate → refusals without a redirect (and unanswered attaches) in a row for this object,
   * and until when it is not asked again. Per object, not shared: a root that does not know this
   * object (yet) is no worse a parent for the others.
   */
  private readonly refusals = new Map<string, { count: number; untilMs: number }>();

  constructor(private readonly o: ParentLinkOptions) {}

  get isAttached(): boolean {
    return this.state.kind === 'attached';
  }

  get parentId(): string | null {
    return this.state.kind === 'attached' ? this.state.to : null;
  }

  isParentOrTarget(from: string): boolean {
    return this.state.kind !== 'detached' && this.state.to === from;
  }

  onAttachOk(from: string, path: readonly string[], parentNextVersion: number, nowMs: number): ReplicaEffect[] {
    const s = this.state;
    if (s.kind === 'detached' || s.to !== from) return [this.detachMessage(from)];
    const valid = path.length >= 1 && path.length < treeLimits.pathLengthMax && path[path.length - 1] === from && !path.includes(this.o.selfId);
    if (!valid) return this.abandon('cycle or bad path', this.o.timing.distrustSilentMs, nowMs);
    this.path = [...path];
    this.parentNextVersion = parentNextVersion;
    // A renewal answered is not progress: a parent that answered renewals and forwarded nothing
    // was kept for ever, its subtree with it (session-22 review). Only verified news is (onHeard).
    if (s.kind === 'attached') return [];
    this.moveTo({ kind: 'attached', to: from, lastHeardMs: nowMs, lastRenewMs: nowMs });
    this.attachCount++;
    this.refusals.clear();
    this.behindSinceMs = null;
    this.lastFetchMs = -Infinity;
    this.o.emit({ kind: 'attached', aguid: this.o.copy.key, parent: from, depth: path.length });
    return [];
  }

  onAttachRefused(from: string, redirect: readonly string[], nowMs: number): ReplicaEffect[] {
    const s = this.state;
    if (s.kind === 'detached' || s.to !== from) return [];
    if (s.kind === 'attached') {
      // The parent dropped us (it expired us or re-parented into a cycle check): find another.
      this.moveTo({ kind: 'detached', retryAtMs: nowMs });
      this.o.emit({ kind: 'detached', aguid: this.o.copy.key, parent: from, reason: 'refused' });
      return this.tryAttach(nowMs);
    }
    this.redirects = redirect.filter((id) => id !== this.o.selfId && this.o.isTreeMember(id));
    if (this.redirects.length === 0) this.backOff(from, nowMs);
    this.moveTo({ kind: 'detached', retryAtMs: nowMs });
    return this.tryAttach(nowMs);
  }

  /**
   * Verified new versions arrived from the parent (news only if certified recently: isTimely);
   * `bytes`: their updates, certificates and inline blocks.
   */
  onProgress(nowMs: number, bytes = 0): void {
    const certifiedMs = this.o.copy.headCertifiedMs;
    if (certifiedMs !== null && this.isTimely(certifiedMs, nowMs)) this.onHeard(nowMs);
    this.parentNextVersion = Math.max(this.parentNextVersion, this.o.copy.nextVersion);
    this.delivered(nowMs, bytes, 0);
    this.lastFetchMs = -Infinity;
  }

  /**
   * `count` blocks we asked for (`bytes` of them) of a version that came as block references
   * arrived; `inFull`: they were every block the request asked for. The child sizes its requests
   * to the link (BlockPacer), at least askBytesMin or every block left, so a whole answer is one
   * honest answer's worth whatever its bytes (on a slow link the 2 MiB of the bytes clause took
   * longer than gapTimeoutMs: session 26).
   */
  onBlocksArrived(nowMs: number, count: number, bytes: number, inFull: boolean): void {
    const awaiting = this.o.copy.awaitingStatement;
    if (awaiting && this.isTimely(awaiting.timestampMs, nowMs)) this.onHeard(nowMs);
    if (inFull && this.behindSinceMs !== null) this.startClock(nowMs);
    else this.delivered(nowMs, bytes, count);
  }

  /**
   * Restarts the withholding clock when what the parent delivered since it last (re)started adds
   * up to what one honest answer to a fetch brings at the least: min(gap then, entriesPerPushMax)
   * versions, half of pushBytesMax (a push that stops for bytes holds over pushBytesMax with the
   * entry after it, so two in a row hold half), or fetchBlocksMax blocks (a blocks reply that
   * stops for bytes holds over half of blocksReplyBytesMax unless its blocks are over half of it
   * each, and the bytes count those). Catching up stops the clock (onMaybeBehind). Less is not
   * progress, however often it comes: every delivery restarted the clock, so a parent forwarding
   * one old version per 1.9 s (never silent, never 2 s without a delivery) kept its child behind
   * for ever, 114 s after 239 s in the session-23 review's repro.
   */
  private delivered(nowMs: number, bytes: number, blocks: number): void {
    if (this.behindSinceMs === null) return;
    const w = this.window;
    w.bytes += bytes;
    w.blocks += blocks;
    const bytesMax = this.o.pushLimits?.bytesMax ?? defaultChildSetOptions.pushBytesMax;
    const progress = this.o.copy.nextVersion - w.fromVersion >= w.versionsWanted || w.bytes >= bytesMax / 2 || w.blocks >= treeLimits.fetchBlocksMax;
    if (progress) this.startClock(nowMs);
  }

  /** (Re)starts the withholding clock: from now, the parent owes one push's worth on the gap as it is. */
  private startClock(nowMs: number): void {
    const copy = this.o.copy;
    const entriesMax = Math.min(this.o.pushLimits?.entriesMax ?? defaultChildSetOptions.entriesPerPushMax, treeLimits.entriesPerPushMax);
    this.behindSinceMs = nowMs;
    this.window = { fromVersion: copy.nextVersion, versionsWanted: Math.max(1, Math.min(copy.knownVersion + 1 - copy.nextVersion, entriesMax)), bytes: 0, blocks: 0 };
  }

  /**
   * How long the parent may bring no progress on a gap it has: gapTimeoutMs, plus
   * blockWaitMsPerBlock per block still missing; while blocks are asked of it, at least half again
   * what its answers have shown the request should take (a loaded ring server answering every
   * request after 3 s was left at the last few blocks of every large version, for ever: session
   * 26). parentBehindTimeoutMs bounds both, whatever a parent shows: so a parent must bring at
   * least one whole answer (256 KiB, or every block left) per 8 s to be kept.
   */
  get gapPatienceMs(): number {
    const parent = this.parentId;
    const expectedMs = parent === null ? null : (this.o.expectedBlocksAnswerMs?.(parent) ?? null);
    return patienceFor(this.patience, expectedMs);
  }

  /** What gapPatienceMs is made of: the per-block patience, and the cap on any wait. */
  get patience(): Patience {
    const t = this.o.timing;
    return { baseMs: t.gapTimeoutMs + this.o.copy.missingBlockCount * (t.blockWaitMsPerBlock ?? 100), capMs: t.parentBehindTimeoutMs };
  }

  /** A verified, newer heartbeat arrived from the parent. */
  onHeard(nowMs: number): void {
    if (this.state.kind === 'attached') this.state.lastHeardMs = nowMs;
  }

  /**
   * Whether something certified at `timestampMs` is recent enough to be news: at most
   * parentTimeoutMs + heartbeatSlackMs ago. Not the silence allowed, which a parent forwarding
   * fewer heartbeats stretches (to 120 s: the child was kept minutes behind; session-23 review).
   * A parent forwards what the ring certifies within network delay, whatever the heartbeat period.
   * Catching up on older versions is not news; the heartbeats an honest parent forwards meanwhile
   * are (a clause that also counted versions a recent heartbeat names was dropped: no case needed
   * it, since a heartbeat that recent is news itself).
   */
  isTimely(timestampMs: number, nowMs: number): boolean {
    const slackMs = this.o.timing.heartbeatSlackMs ?? defaultParentTiming.heartbeatSlackMs!;
    return nowMs - timestampMs <= this.o.timing.parentTimeoutMs + slackMs;
  }

  /** Asks the parent for the gap when we know (certified) of versions we lack. */
  onMaybeBehind(nowMs: number): ReplicaEffect[] {
    const copy = this.o.copy;
    if (copy.knownVersion < copy.nextVersion) {
      this.behindSinceMs = null;
      return [];
    }
    if (this.behindSinceMs === null) this.startClock(nowMs);
    const t = this.o.timing;
    if (this.state.kind !== 'attached' || nowMs - this.lastFetchMs < Math.max(t.fetchRetryMs, t.fetchReplyTimeoutMs ?? defaultParentTiming.fetchReplyTimeoutMs!)) return [];
    // Every version known is held, on its way (its blocks are fetched) or waiting behind it: a
    // fetch would only bring them (or a snapshot) again (session-22 second review; session 25 for
    // versions after the awaited one). The withholding clock still runs.
    const wanted = copy.wantedVersion;
    if (wanted > copy.knownVersion) return [];
    // Past early entries with no room for more: the answer would be dropped (it is asked for once
    // the versions before it are applied).
    if (wanted > copy.nextVersion && copy.pendingFull) return [];
    this.lastFetchMs = nowMs;
    return [{ kind: 'send', to: this.state.to, message: { type: 'fetch', aguid: this.o.aguid, fromVersion: wanted } }];
  }

  onTick(nowMs: number): ReplicaEffect[] {
    const s = this.state;
    const t = this.o.timing;
    switch (s.kind) {
      case 'detached':
        return nowMs >= s.retryAtMs ? this.tryAttach(nowMs) : [];
      case 'attaching':
        if (nowMs - s.sinceMs <= t.attachTimeoutMs) return [];
        // Only a located member is distrusted for all objects: a redirect can name anything, and
        // made-up names that never answer filled the shared list without bound.
        if (this.isCandidate(s.to)) this.distrust(s.to, t.retryBackoffMs, nowMs);
        this.backOff(s.to, nowMs);
        this.moveTo({ kind: 'detached', retryAtMs: nowMs });
        return this.tryAttach(nowMs);
      case 'attached': {
        // While blocks are awaited, heartbeats queue behind the block data on the wire: the parent
        // may be silent as long as it may bring no progress (third review: a 0.6 MiB/s link
        // carrying a 4.6 s answer was left as silent at 3.5 s, 13 times over).
        const patienceMs = this.gapPatienceMs;
        const silenceMs = this.o.copy.missingBlockCount > 0 ? Math.max(this.silenceTimeoutMs(), patienceMs) : this.silenceTimeoutMs();
        if (nowMs - s.lastHeardMs > silenceMs) return this.abandon('silent', t.distrustSilentMs, nowMs);
        if (this.behindSinceMs !== null) {
          const stalledMs = nowMs - this.behindSinceMs;
          const parentHasIt = this.parentNextVersion > this.o.copy.nextVersion;
          if (parentHasIt && stalledMs > patienceMs) return this.abandon('withholding', t.distrustSilentMs, nowMs);
          if (stalledMs > t.parentBehindTimeoutMs) return this.abandon('parent-behind', t.distrustSilentMs, nowMs);
        }
        const effects = this.onMaybeBehind(nowMs);
        if (nowMs - s.lastRenewMs >= t.renewMs) {
          s.lastRenewMs = nowMs;
          // From the first version it needs an update for (wantedVersion): a renewal gap-fills from there.
          effects.push({ kind: 'send', to: s.to, message: { type: 'attach', aguid: this.o.aguid, nextVersion: this.o.copy.wantedVersion } });
        }
        return effects;
      }
    }
  }

  /**
   * How long the parent may bring nothing verified and new: parentTimeoutMs, or longer when this
   * object's heartbeats come less often than parentTimeoutMs / silentHeartbeatPeriods (a ring
   * with more than 768 objects), up to parentSilenceMaxMs. Until two heartbeats have shown the
   * period, one held heartbeat earns parentSilenceUnknownMs (a fresh member of a large ring gets
   * the next one only a period later, and leaving honest roots for it churned them); none, only
   * parentTimeoutMs (an honest parent sends its heartbeat with the attach-ok).
   */
  private silenceTimeoutMs(): number {
    return Math.max(this.o.timing.parentTimeoutMs, this.heartbeatSilenceMs());
  }

  private heartbeatSilenceMs(): number {
    const t = this.o.timing;
    const periodMs = this.o.copy.heartbeatPeriodMs;
    if (periodMs !== null) return Math.min(silentHeartbeatPeriods * periodMs, t.parentSilenceMaxMs ?? defaultParentTiming.parentSilenceMaxMs!);
    return this.o.copy.heartbeat ? (t.parentSilenceUnknownMs ?? defaultParentTiming.parentSilenceUnknownMs!) : 0;
  }

  /** Leaves the parent (or attach target) for good, blaming nobody: the subscription is closed. */
  close(): ReplicaEffect[] {
    const s = this.state;
    if (s.kind === 'detached') return [];
    this.moveTo({ kind: 'detached', retryAtMs: Infinity });
    return [this.detachMessage(s.to)];
  }

  /** Leaves the current parent (or attach target), distrusts it for `distrustMs`, and looks for another. */
  abandon(reason: string, distrustMs: number, nowMs: number): ReplicaEffect[] {
    const s = this.state;
    if (s.kind === 'detached') return [];
    const effects: ReplicaEffect[] = [this.detachMessage(s.to)];
    this.distrust(s.to, distrustMs, nowMs);
    this.o.emit({ kind: 'detached', aguid: this.o.copy.key, parent: s.to, reason });
    this.moveTo({ kind: 'detached', retryAtMs: nowMs });
    this.redirects = [];
    this.behindSinceMs = null;
    return effects.concat(this.tryAttach(nowMs));
  }

  private tryAttach(nowMs: number): ReplicaEffect[] {
    const target = this.pickCandidate(nowMs);
    if (target === null) {
      this.moveTo({ kind: 'detached', retryAtMs: nowMs + this.o.timing.retryBackoffMs });
      return [];
    }
    this.moveTo({ kind: 'attaching', to: target, sinceMs: nowMs });
    return [{ kind: 'send', to: target, message: { type: 'attach', aguid: this.o.aguid, nextVersion: this.o.copy.nextVersion } }];
  }

  /**
   * Whether every located candidate refused us without a redirect (or did not answer) at least
   * `countMin` times in a row since we were last attached: the object is likely unknown to the
   * tree (a read of a made-up AGUID).
   */
  everyCandidateRefused(countMin: number): boolean {
    const ids = this.o.locator.candidates(this.o.aguid).filter((id) => id !== this.o.selfId);
    return ids.length > 0 && ids.every((id) => (this.refusals.get(id)?.count ?? 0) >= countMin);
  }

  /** Ids this link waits on (refused or unanswered attaches), for tests and metrics. */
  get backedOffCount(): number {
    return this.refusals.size;
  }

  private isCandidate(id: string): boolean {
    return this.o.locator.candidates(this.o.aguid).includes(id);
  }

  /** Doubles `id`'s wait for this object (a refusal without a redirect, or no answer). */
  private backOff(id: string, nowMs: number): void {
    const t = this.o.timing;
    const count = (this.refusals.get(id)?.count ?? 0) + 1;
    const waitMs = Math.min(t.retryBackoffMs * 2 ** Math.min(count - 1, 30), t.refusedBackoffMaxMs ?? defaultParentTiming.refusedBackoffMaxMs!);
    this.refusals.delete(id); // re-inserted last: the map stays in refusal order
    if (this.refusals.size >= refusalsMax) {
      // Full of redirect names: forget the oldest of those first (a located member's count decides
      // whether an unknown object is given up, so it goes last).
      const keys = [...this.refusals.keys()];
      this.refusals.delete(keys.find((k) => !this.isCandidate(k)) ?? keys[0]!);
    }
    this.refusals.set(id, { count, untilMs: nowMs + waitMs });
  }

  /** A random redirect first (spreads joiners over subtrees), else the nearest located member. */
  private pickCandidate(nowMs: number): string | null {
    const allowed = (id: string): boolean => id !== this.o.selfId && !this.isDistrusted(id, nowMs) && (this.refusals.get(id)?.untilMs ?? -Infinity) <= nowMs;
    const redirects = this.redirects.filter(allowed);
    this.redirects = [];
    if (redirects.length > 0) return redirects[this.o.random.int(redirects.length)]!;
    for (const id of this.o.locator.candidates(this.o.aguid)) if (allowed(id)) return id;
    return null;
  }

  /**
   * Every change of parent or attach target goes through here. Early entries (and a version
   * awaiting blocks) came from the node we leave: they were checked only up to their certificate,
   * so they must not outlive it, or the next (honest) parent would be blamed when one of them
   * fails at drain time.
   */
  private moveTo(next: LinkState): void {
    const before = this.state.kind === 'detached' ? null : this.state.to;
    this.state = next;
    if (before !== null && before !== (next.kind === 'detached' ? null : next.to)) this.o.copy.clearPending();
  }

  /** Keeps `id` from being anyone's parent here for `durationMs` (for all objects). */
  distrust(id: string, durationMs: number, nowMs: number): void {
    const list = this.o.distrustedUntilMs;
    const until = nowMs + durationMs;
    if ((list.get(id) ?? -Infinity) >= until) return;
    if (!list.has(id) && list.size >= distrustedMax) {
      for (const [other, otherUntil] of list) if (otherUntil <= nowMs) list.delete(other);
      // Still full: the entry that ends soonest goes.
      if (list.size >= distrustedMax) list.delete([...list].reduce((a, b) => (b[1] < a[1] ? b : a))[0]);
    }
    list.set(id, until);
  }

  /** Whether `id` is distrusted at `nowMs`; an expired entry is deleted on the way. */
  private isDistrusted(id: string, nowMs: number): boolean {
    const until = this.o.distrustedUntilMs.get(id);
    if (until === undefined) return false;
    if (until > nowMs) return true;
    this.o.distrustedUntilMs.delete(id);
    return false;
  }

  private detachMessage(to: string): ReplicaEffect {
    return { kind: 'send', to, message: { type: 'detach', aguid: this.o.aguid } };
  }
}
