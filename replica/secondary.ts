/**
 * A secondary replica (Pond, FAST 2003; DESIGN.md "Dissemination tree") as a sans-I/O core: for each
 * object it subscribes to, it finds a tree member through the locator, attaches as a child,
 * catches up by version number, verifies every pushed certified update by re-executing it
 * (replica/object-copy.ts), forwards to its own children, and serves verified reads.
 *
 * Parent failure: a parent that goes silent (no newer heartbeat, no push) for parentTimeoutMs,
 * or that leaves us behind a version we have certified proof of for gapTimeoutMs (withholding),
 * or that sends anything that fails verification (forging) is dropped and distrusted for a while,
 * and the member attaches elsewhere with its subtree and gap-fills from its new parent.
 *
 * Durable state: the subscription list only. The cache and log are rebuilt from the tree after
 * a restart (they are a cache; the ring and the archive hold the truth).
 */
import { bytesEqual, fromHex, ownedBytes, toHex } from '../core/bytes.ts';
import { checkArgument } from '../core/errors.ts';
import type { Machine, MachineContext } from '../core/machine.ts';
import type { Crypto } from '../core/crypto.ts';
import { BlockCache } from './block-cache.ts';
import { BlockPacer } from './block-pacer.ts';
import { ChildSet, defaultChildSetOptions, type ChildSetOptions } from './children.ts';
import type { ReplicaEffect, ReplicaEvent } from './events.ts';
import { treeLimits, type LogEntry, type TreeMessage } from './messages.ts';
import { ObjectCopy, type OfferResult } from './object-copy.ts';
import { entryBytesOf } from './object-log.ts';
import { ParentLink, defaultParentTiming, type ParentTiming } from './parent-link.ts';
import { serveRead } from './serve-read.ts';
import { heartbeatIsNewer, type ReplicaExecutor, type ReplicaTrust, type TreeLocator } from './types.ts';

export interface SecondaryConfig extends Partial<ChildSetOptions>, Partial<ParentTiming> {
  readonly crypto: Crypto;
  readonly trust: ReplicaTrust;
  readonly executor: ReplicaExecutor;
  readonly locator: TreeLocator;
  /** Block cache budget (bytes); current versions are pinned, older blocks evicted LRU. */
  readonly cacheBytesMax: number;
  /** Objects to follow from the start (also persisted: later subscriptions survive restarts). */
  readonly subscriptions?: readonly Uint8Array[];
  /** Join an object's tree the first time a client reads it here (default true). */
  readonly subscribeOnRead?: boolean;
  readonly pendingEntriesMax?: number;
  /** Bytes of early versions held per object while a predecessor is missing (default 32 MiB). */
  readonly pendingBytesMax?: number;
  /** Certified updates kept per object for gap fills (default 1024); children further behind get a snapshot. */
  readonly logEntriesMax?: number;
  /** Bytes of updates and certificates kept per object (default 64 MiB); the newest version is always kept. */
  readonly logBytesMax?: number;
  readonly subscriptionsMax?: number;
  /**
   * A subscription a read opened (not subscribe()) is closed after this long without a read
   * while it has no children (default 15 min): one read pinned the object's head, and its log,
   * for good, across restarts too (session-22 review).
   */
  readonly readSubscriptionIdleMs?: number;
  /** Head bytes read-subscriptions may pin together (default cacheBytesMax / 2); the least recently read go first. */
  readonly readSubscriptionBytesMax?: number;
  /**
   * After a read's subscription is closed for the byte budget, reads of that object open none for
   * this long (default 60 s), doubled at each further such close of it up to readSubscriptionIdleMs
   * (they are answered `unknown-object`, which a client takes from a secondary as "not here", and
   * read from the ring): reads going round more objects than the budget holds otherwise opened a
   * subscription, and fetched the whole head, at every read, only for the next sweep to close it
   * (session-22 second review; doubling: session-23 review, objects read every 100 s).
   */
  readonly readSubscriptionCooldownMs?: number;
}

export type { ReplicaEffect, ReplicaEvent } from './events.ts';

/** How many objects closed for the read-subscription byte budget are remembered (cooling down). */
const overBudgetKeptMax = 4096;

interface Subscription {
  readonly copy: ObjectCopy;
  readonly children: ChildSet;
  readonly parent: ParentLink;
  /** The fetch-blocks asked for blocks of entries that came as block references, sized to the link. */
  readonly blocks: BlockPacer;
  /** Written to the store: asked for by subscribe(), or a read's subscription that got a first version. */
  durable: boolean;
  /** Opened by a read, not by subscribe(): closed once idle (readSubscriptionIdleMs). */
  byRead: boolean;
  lastReadMs: number;
}

/**
 * A read's subscription that every candidate refused (without a redirect) this many times in a
 * row, before it got any version, is dropped: the object is not known to the tree.
 */
const unknownObjectRefusalsMax = 3;

const subscriptionPrefix = 'replica/sub/';
/** A subscription's stored value: asked for by subscribe(), or opened by a read (it expires). */
const subscribedMark = 1;
const readMark = 2;
/** How often idle read-subscriptions are looked for. */
const readSweepMs = 1_000;

export class SecondaryReplica implements Machine<TreeMessage, ReplicaEvent> {
  readonly nodeId: string;
  readonly cache: BlockCache;
  /** Dropped or refused inputs by reason, reads by status, block fetches served (for metrics and tests). */
  readonly counters = new Map<string, number>();
  private readonly subs = new Map<string, Subscription>();
  /** Objects whose read-subscription the byte budget closed: key -> until when reads open none, and that cooldown (bounded, oldest first out). */
  private readonly overBudget = new Map<string, { untilMs: number; cooldownMs: number }>();
  /** Node id → host time until which it is not used as a parent. Shared by all objects: a liar for one is a liar. */
  private readonly distrustedUntilMs = new Map<string, number>();
  private readonly childOptions: ChildSetOptions;
  private readonly timing: ParentTiming;
  private outbox: ReplicaEffect[] = [];
  private lastReadSweepMs = -Infinity;

  constructor(
    private readonly context: MachineContext,
    private readonly config: SecondaryConfig,
  ) {
    checkArgument(config?.trust && config.executor && config.locator && config.crypto, 'config', 'crypto, trust, executor and locator');
    this.nodeId = context.nodeId;
    this.childOptions = { ...defaultChildSetOptions, ...pickDefined(config, defaultChildSetOptions) };
    this.timing = { ...defaultParentTiming, ...pickDefined(config, defaultParentTiming) };
    this.cache = new BlockCache(config.crypto, config.cacheBytesMax);
    for (const key of context.store.keys(subscriptionPrefix)) {
      // Entries written before read-subscriptions were told apart read as subscribe()'s.
      const byRead = context.store.get(key)?.[0] === readMark;
      this.open(fromHex(key.slice(subscriptionPrefix.length)), true, byRead ? context.nowMs : null);
    }
    for (const aguid of config.subscriptions ?? []) this.subscribe(aguid);
  }

  /** Follows `aguid` from now on (durably). Idempotent. The member joins the tree at its next tick. */
  subscribe(aguid: Uint8Array): void {
    checkArgument(aguid instanceof Uint8Array && aguid.length === 32, 'aguid', 'a 32-byte AGUID');
    const key = toHex(aguid);
    const sub = this.subs.get(key);
    if (sub?.byRead) {
      sub.byRead = false;
      sub.durable = false; // written again, as subscribe()'s
    }
    if (sub) return this.makeDurable(sub);
    checkArgument(this.subs.size < (this.config.subscriptionsMax ?? 10_000), 'aguid', 'room under subscriptionsMax');
    this.makeDurable(this.open(aguid, false, null));
  }

  private makeDurable(sub: Subscription): void {
    if (sub.durable) return;
    this.context.store.put(subscriptionPrefix + sub.copy.key, new Uint8Array([sub.byRead ? readMark : subscribedMark]));
    sub.durable = true;
  }

  /** Read-only views for checkers, tests and metrics. */
  copyOf(aguid: Uint8Array | string): ObjectCopy | undefined {
    return this.subs.get(typeof aguid === 'string' ? aguid : toHex(aguid))?.copy;
  }

  parentOf(aguid: Uint8Array | string): ParentLink | undefined {
    return this.subs.get(typeof aguid === 'string' ? aguid : toHex(aguid))?.parent;
  }

  /** Nodes on the distrust list (expired entries included until they are next looked at or pushed out). */
  get distrustedCount(): number {
    return this.distrustedUntilMs.size;
  }

  /** Whether `id` is kept from being anyone's parent here at `nowMs`. */
  isDistrusted(id: string, nowMs: number): boolean {
    return (this.distrustedUntilMs.get(id) ?? -Infinity) > nowMs;
  }

  childrenOf(aguid: Uint8Array | string): string[] {
    return this.subs.get(typeof aguid === 'string' ? aguid : toHex(aguid))?.children.ids() ?? [];
  }

  onMessage(from: string, message: TreeMessage, nowMs: number): ReplicaEffect[] {
    if (message.type === 'read') return this.onRead(from, message, nowMs);
    if (message.type === 'read-reply') return this.count('unexpected-read-reply');
    if (message.type === 'batch-certificate') return this.count('unexpected-batch-certificate');
    const sub = this.subs.get(toHex(message.aguid));
    if (!sub) {
      this.count('unknown-object');
      if (message.type !== 'attach') return [];
      return [{ kind: 'send', to: from, message: { type: 'attach-refused', aguid: message.aguid, redirect: [] } }];
    }
    switch (message.type) {
      case 'attach':
        return this.onChildAttach(sub, from, message.nextVersion, nowMs);
      case 'detach':
        sub.children.onDetach(from);
        return [];
      case 'fetch':
        return sub.children.onFetch(from, message.fromVersion, nowMs, sub.copy);
      case 'attach-ok':
        return this.flush(sub.parent.onAttachOk(from, message.path, message.nextVersion, nowMs));
      case 'attach-refused':
        return this.onAttachRefused(sub, from, message.redirect, nowMs);
      case 'push':
        return this.onPush(sub, from, message.entries, nowMs);
      case 'heartbeat':
        return this.onHeartbeat(sub, from, message.heartbeat, nowMs);
      case 'snapshot':
        return this.onSnapshot(sub, from, message, nowMs);
      case 'fetch-blocks':
        return this.onFetchBlocks(sub, from, message.bguids);
      case 'blocks':
        return this.onBlocks(sub, from, message.blocks, message.absent, nowMs);
    }
  }

  onTick(nowMs: number): ReplicaEffect[] {
    for (const sub of this.subs.values()) {
      sub.children.expire(nowMs);
      this.outbox.push(...sub.parent.onTick(nowMs));
      if (nowMs - sub.blocks.lastAskMs >= this.timing.fetchRetryMs) this.outbox.push(...this.askBlocks(sub, nowMs));
    }
    if (nowMs - this.lastReadSweepMs >= readSweepMs) {
      this.lastReadSweepMs = nowMs;
      this.outbox.push(...this.closeUnreadSubscriptions(nowMs));
    }
    return this.flush([]);
  }

  /** A child's request for data blocks of an entry we forwarded as block references. */
  private onFetchBlocks(sub: Subscription, from: string, bguids: readonly Uint8Array[]): ReplicaEffect[] {
    if (!sub.children.ids().includes(from)) return this.count('fetch-blocks-not-from-child');
    this.count('fetch-blocks-served');
    return [{ kind: 'send', to: from, message: blocksReply(this.cache, sub.copy.aguid, bguids) }];
  }

  private onBlocks(sub: Subscription, from: string, blocks: readonly Uint8Array[], absent: readonly Uint8Array[], nowMs: number): ReplicaEffect[] {
    if (!sub.parent.isParentOrTarget(from)) return this.count('blocks-not-from-parent');
    let taken = { count: 0, bytes: 0 };
    const result = sub.copy.offerBlocks(blocks, absent, from, (count, bytes) => (taken = { count, bytes }));
    if (!result) return this.count('unrequested-blocks');
    const inFull = sub.blocks.answered(from, sub.parent.attachCount, taken.count, taken.bytes, nowMs);
    // Only blocks we asked for count as delivered: junk replies do not keep a parent.
    if (taken.count > 0) sub.parent.onBlocksArrived(nowMs, taken.count, taken.bytes, inFull);
    return this.afterOffer(sub, [result], nowMs);
  }

  /**
   * Asks the parent for the blocks the next version still lacks: one fetch-blocks at a time (the
   * next goes out when its reply arrives), sized by what the parent's answers have shown
   * (BlockPacer). One unanswered for blocksReplyTimeoutMs, and for twice what it should take, is
   * asked again once, for the same blocks (its answer may be lost with its connection), so a second
   * answer brings nothing: a re-ask for more blocks, while a slow parent still served the first,
   * brought one with a new block, taken as the answer to the next request (session-26 review).
   */
  private askBlocks(sub: Subscription, nowMs: number): ReplicaEffect[] {
    const wanted = sub.copy.blocksToFetch(treeLimits.fetchBlocksMax);
    if (!wanted || !sub.parent.isParentOrTarget(wanted.from)) return [];
    const attachment = sub.parent.attachCount;
    if (sub.blocks.waiting(wanted.from, attachment, nowMs, this.timing.blocksReplyTimeoutMs ?? defaultParentTiming.blocksReplyTimeoutMs!, sub.parent.gapPatienceMs)) return [];
    const version = sub.copy.awaitingStatement?.version ?? -1;
    const count = sub.blocks.outstandingCount(wanted.from, attachment) ?? sub.blocks.countToAsk(wanted.from, attachment, version, sub.copy.missingBlockCount, sub.parent.patience);
    const bguids = wanted.bguids.slice(0, count);
    sub.blocks.asked(wanted.from, attachment, bguids.length, nowMs);
    return [{ kind: 'send', to: wanted.from, message: { type: 'fetch-blocks', aguid: sub.copy.aguid, bguids } }];
  }

  private onChildAttach(sub: Subscription, from: string, nextVersion: number, nowMs: number): ReplicaEffect[] {
    const effects = sub.children.onAttach<ReplicaEvent>(from, nextVersion, nowMs, sub.parent.path, sub.parent.isAttached, sub.copy);
    const heartbeat = sub.copy.heartbeat;
    if (heartbeat && sub.children.ids().includes(from)) {
      effects.push({ kind: 'send', to: from, message: { type: 'heartbeat', aguid: sub.copy.aguid, heartbeat: heartbeat.bytes } });
    }
    return effects;
  }

  private onAttachRefused(sub: Subscription, from: string, redirect: readonly string[], nowMs: number): ReplicaEffect[] {
    const effects = sub.parent.onAttachRefused(from, redirect, nowMs);
    // A read of a made-up AGUID must not make us ask the roots for it for ever (and across restarts).
    if (sub.durable || sub.copy.head !== null || !sub.parent.everyCandidateRefused(unknownObjectRefusalsMax)) return this.flush(effects);
    this.subs.delete(sub.copy.key);
    this.count('unknown-object-dropped');
    return this.flush([]);
  }

  private onPush(sub: Subscription, from: string, entries: readonly LogEntry[], nowMs: number): ReplicaEffect[] {
    if (!sub.parent.isParentOrTarget(from)) {
      // A former parent that missed our detach keeps pushing; tell it again.
      this.count('push-not-from-parent');
      return [{ kind: 'send', to: from, message: { type: 'detach', aguid: sub.copy.aguid } }];
    }
    const results: OfferResult[] = [];
    for (const entry of entries.slice(0, treeLimits.entriesPerPushMax)) {
      const result = sub.copy.offer(entry, from);
      results.push(result);
      if (result.kind === 'bad') break;
    }
    return this.afterOffer(sub, results, nowMs);
  }

  private onSnapshot(sub: Subscription, from: string, snapshot: Extract<TreeMessage, { type: 'snapshot' }>, nowMs: number): ReplicaEffect[] {
    if (!sub.parent.isParentOrTarget(from)) return this.count('snapshot-not-from-parent');
    const result = sub.copy.installSnapshot(snapshot, from);
    if (result.kind === 'duplicate' || result.kind === 'future') return this.count('old-snapshot');
    if (result.kind === 'awaiting-blocks') this.count('snapshot-by-reference');
    // Only an installed snapshot is progress (children behind it get one at their next renewal).
    // One still waiting for its leaves is not: a parent that re-sent it and never answered the
    // fetches was kept for ever; fetched leaves count as they arrive (ParentLink.onBlocksArrived).
    if (result.kind === 'accepted') sub.parent.onProgress(nowMs);
    return this.afterOffer(sub, [result], nowMs);
  }

  /**
   * Forwards what was accepted (in order), then: rejects a liar; or asks at once for the blocks
   * of a version that came as block references (each blocks reply is answered with the next
   * request, so a large update streams in); or asks for the gap.
   */
  private afterOffer(sub: Subscription, results: readonly OfferResult[], nowMs: number): ReplicaEffect[] {
    const forwarded: LogEntry[] = [];
    for (const r of results) if (r.kind === 'accepted' || r.kind === 'awaiting-blocks') forwarded.push(...r.entries);
    if (forwarded.length > 0) sub.parent.onProgress(nowMs, forwarded.reduce((n, e) => n + entryBytesOf(e), 0));
    this.outbox.push(...sub.children.forwardEntries<ReplicaEvent>(forwarded));
    const bad = results.find((r) => r.kind === 'bad');
    if (bad?.kind === 'bad') return this.flush(this.reject(sub, bad.from, bad.reason, nowMs));
    if (results.some((r) => r.kind === 'awaiting-blocks')) return this.flush(this.askBlocks(sub, nowMs));
    return this.flush(sub.parent.onMaybeBehind(nowMs));
  }

  private onHeartbeat(sub: Subscription, from: string, received: Uint8Array, nowMs: number): ReplicaEffect[] {
    if (!sub.parent.isParentOrTarget(from)) return this.count('heartbeat-not-from-parent');
    const current = sub.copy.heartbeat;
    if (current && bytesEqual(current.bytes, received)) return [];
    // Kept, with a statement that is a view into it: not a view into the frame.
    const bytes = ownedBytes(received);
    const statement = this.config.trust.verifyHeartbeat(bytes);
    if (!statement || toHex(statement.aguid) !== sub.copy.key) return this.flush(this.reject(sub, from, 'heartbeat', nowMs));
    if (current && !heartbeatIsNewer(current.statement, statement)) return this.count('old-heartbeat');
    sub.copy.takeHeartbeat(bytes, statement);
    if (sub.parent.isTimely(statement.timestampMs, nowMs)) sub.parent.onHeard(nowMs);
    else this.count('late-heartbeat');
    const effects = sub.children.forwardHeartbeat<ReplicaEvent>(bytes);
    return this.flush(effects.concat(sub.parent.onMaybeBehind(nowMs)));
  }

  /** `from` sent a lie: leave it if it is our parent (or attach target); only it is blamed either way. */
  private reject(sub: Subscription, from: string, reason: string, nowMs: number): ReplicaEffect[] {
    this.count(`rejected:${reason.split(':')[0]}`);
    this.outbox.push({ kind: 'output', event: { kind: 'rejected', aguid: sub.copy.key, from, reason } });
    // A sender that says it lacks a block it forwarded has not proven a liar (it may have evicted
    // the block): it cannot feed us now, but it was kept out for 10 minutes like a forger.
    const distrustMs = reason === 'blocks-absent' ? this.timing.distrustSilentMs : this.timing.distrustLiarMs;
    if (sub.parent.isParentOrTarget(from)) return sub.parent.abandon(`lied: ${reason}`, distrustMs, nowMs);
    sub.parent.distrust(from, distrustMs, nowMs);
    return [];
  }

  private onRead(from: string, message: Extract<TreeMessage, { type: 'read' }>, nowMs: number): ReplicaEffect[] {
    const key = toHex(message.aguid);
    const sub = this.subs.get(key);
    if (sub) sub.lastReadMs = nowMs;
    // Written to the store only once a first version arrives (see open).
    const cooling = (this.overBudget.get(key)?.untilMs ?? -Infinity) > nowMs;
    if (!sub && !cooling && (this.config.subscribeOnRead ?? true) && this.subs.size < (this.config.subscriptionsMax ?? 10_000)) {
      this.open(message.aguid, false, nowMs);
    }
    const reply = serveRead(sub?.copy ?? null, this.config.executor, this.cache, message, nowMs);
    this.count(`read:${reply.status}`);
    return [{ kind: 'send', to: from, message: reply }];
  }

  /**
   * Closes read-subscriptions unread for readSubscriptionIdleMs (those without children), then,
   * while read-subscriptions pin more than readSubscriptionBytesMax, the least recently read (the
   * most recent always stays).
   */
  private closeUnreadSubscriptions(nowMs: number): ReplicaEffect[] {
    const idleMs = this.config.readSubscriptionIdleMs ?? 15 * 60_000;
    const effects: ReplicaEffect[] = [];
    const open: Subscription[] = [];
    for (const sub of this.subs.values()) {
      if (!sub.byRead) continue;
      if (nowMs - sub.lastReadMs > idleMs && sub.children.size === 0) effects.push(...this.close(sub, 'read-subscription-idle'));
      else open.push(sub);
    }
    const bytesMax = this.config.readSubscriptionBytesMax ?? Math.floor(this.config.cacheBytesMax / 2);
    let pinned = open.reduce((n, sub) => n + sub.copy.pinnedBytes, 0);
    if (pinned <= bytesMax) return effects;
    open.sort((a, b) => a.lastReadMs - b.lastReadMs);
    for (const sub of open.slice(0, -1)) {
      if (pinned <= bytesMax) break;
      pinned -= sub.copy.pinnedBytes;
      effects.push(...this.close(sub, 'read-subscription-over-budget'));
      const before = this.overBudget.get(sub.copy.key);
      // Doubled while it is closed again within one cooldown of the last one ending; else from the start.
      const baseMs = this.config.readSubscriptionCooldownMs ?? 60_000;
      const again = before !== undefined && nowMs - before.untilMs <= before.cooldownMs;
      const cooldownMs = again ? Math.min(2 * before.cooldownMs, Math.max(idleMs, before.cooldownMs)) : baseMs;
      this.overBudget.delete(sub.copy.key);
      this.overBudget.set(sub.copy.key, { untilMs: nowMs + cooldownMs, cooldownMs });
      for (const [key] of this.overBudget) {
        if (this.overBudget.size <= overBudgetKeptMax) break;
        this.overBudget.delete(key);
      }
    }
    return effects;
  }

  /** Stops following an object: leaves its parent, sends its children elsewhere, unpins its head, forgets it. */
  private close(sub: Subscription, reason: string): ReplicaEffect[] {
    const effects = sub.parent.close();
    for (const child of sub.children.ids()) effects.push({ kind: 'send', to: child, message: { type: 'attach-refused', aguid: sub.copy.aguid, redirect: [] } });
    sub.copy.release();
    if (sub.durable) this.context.store.delete(subscriptionPrefix + sub.copy.key);
    this.subs.delete(sub.copy.key);
    this.count(reason);
    return effects;
  }

  /** `readAtMs`: opened by a read then (null: by subscribe()). */
  private open(aguid: Uint8Array, durable: boolean, readAtMs: number | null): Subscription {
    const key = toHex(aguid);
    const limits = {
      pendingEntriesMax: this.config.pendingEntriesMax ?? 256,
      pendingBytesMax: this.config.pendingBytesMax ?? 32 * 1024 * 1024,
      logEntriesMax: this.config.logEntriesMax ?? 1024,
      logBytesMax: this.config.logBytesMax ?? 64 * 1024 * 1024,
    };
    const copy = new ObjectCopy(aguid, this.config.trust, this.config.executor, this.cache, limits, (a) => {
      this.makeDurable(sub);
      this.outbox.push({ kind: 'output', event: { kind: 'accepted', aguid: key, version: a.version, vguid: toHex(a.vguid) } });
    });
    const blocks = new BlockPacer();
    const parent = new ParentLink({
      selfId: this.nodeId,
      aguid,
      copy,
      locator: this.config.locator,
      random: this.context.random,
      timing: this.timing,
      distrustedUntilMs: this.distrustedUntilMs,
      isTreeMember: this.childOptions.isTreeMember,
      pushLimits: { entriesMax: this.childOptions.entriesPerPushMax, bytesMax: this.childOptions.pushBytesMax },
      expectedBlocksAnswerMs: (id) => blocks.expectedAnswerMs(id),
      emit: (event) => this.outbox.push({ kind: 'output', event }),
    });
    const children = new ChildSet(this.nodeId, aguid, this.childOptions, this.context.random);
    const sub: Subscription = { copy, children, parent, blocks, durable, byRead: readAtMs !== null, lastReadMs: readAtMs ?? -Infinity };
    this.subs.set(key, sub);
    return sub;
  }

  private count(reason: string): ReplicaEffect[] {
    this.counters.set(reason, (this.counters.get(reason) ?? 0) + 1);
    return [];
  }

  /** Outputs raised during a step (accepted versions, re-parents) go out before its sends. */
  private flush(effects: ReplicaEffect[]): ReplicaEffect[] {
    if (this.outbox.length === 0) return effects;
    const out = this.outbox.concat(effects);
    this.outbox = [];
    return out;
  }
}

/** The data blocks asked for that `cache` holds, up to the reply bound; the rest of those it lacks are named absent. */
export function blocksReply(cache: { get(bguid: Uint8Array, kind: 'data'): Uint8Array | undefined }, aguid: Uint8Array, bguids: readonly Uint8Array[]): TreeMessage {
  const blocks: Uint8Array[] = [];
  const absent: Uint8Array[] = [];
  let bytes = 0;
  for (const bguid of bguids) {
    const block = cache.get(bguid, 'data');
    if (!block) {
      absent.push(bguid);
      continue;
    }
    // Blocks left out for size are neither sent nor absent: the child asks for them again. Stop
    // at the first that does not fit: reading (and hash-checking) the rest for nothing made a
    // large object's transfer quadratic (every reply re-read every block still wanted).
    if (blocks.length > 0 && bytes + block.length > treeLimits.blocksReplyBytesMax) break;
    blocks.push(block);
    bytes += block.length;
  }
  return { type: 'blocks', aguid, blocks, absent };
}

function pickDefined<T extends object>(source: object, template: T): Partial<T> {
  const out: Partial<T> = {};
  for (const key of Object.keys(template) as (keyof T)[]) {
    const value = (source as Partial<T>)[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
