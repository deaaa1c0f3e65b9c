/**
 * Node insertion (JSAC 2004 §4.1; Hildrum et al., SPAA 2002). Three parts:
 *  1. The joiner routes a joinRequest toward its own id; every hop sends it the rows it shares with
 *     the joiner (enough for a consistent table below the root's prefix). The last hop is the
 *     joiner's surrogate root.
 *  2. The root starts an acknowledged multicast over every node sharing its prefix with the joiner
 *     (exactly the nodes that may have a hole the joiner fills): each learns the joiner, forwards to
 *     one node per longer prefix, and acks its parent once its subtree acked. The root then tells
 *     the joiner (joinDone).
 *  3. Nearest-neighbour search: from that prefix length down to level 0, the joiner asks its k
 *     closest nodes sharing >= l digits for their row l and level-l backpointers, measures every new
 *     candidate (ping), and keeps the closest per slot; contacted nodes measure it back and may
 *     adopt it, which is how existing tables gain nearby newcomers.
 */
import type { Effect } from '../core/machine.ts';
import type { TapestryConfig } from './config.ts';
import { digitAt, digitBase, idDigits, sharedPrefixLength } from './id.ts';
import type { NodeRef, TapestryId } from './id.ts';
import type { TapestryMessage, TapestryOutput } from './messages.ts';
import { listCountMax } from './messages.ts';
import type { RoutingTable } from './routing-table.ts';

export type Out = Effect<TapestryMessage, TapestryOutput>[];

/**
 * Join-path hops a joiner takes unasked rows from, per attempt: a path has about log16(N) hops (5
 * for a million nodes) plus a few surrogate hops and a pass through a joining gateway.
 */
export const joinPathRowsMax = 16;

/** What the join logic needs from its node. */
export interface JoinHost {
  readonly self: NodeRef;
  readonly table: RoutingTable;
  readonly config: TapestryConfig;
  send(out: Out, to: string, message: TapestryMessage): void;
  /** Pings `ref` unless known or measured recently (`alive`: even if marked failed); true if a ping went out. */
  learn(out: Out, ref: NodeRef, nowMs: number, alive?: boolean): boolean;
  /** In our table since `sinceMs` or before and answering beacons (neighbour-watch.ts). */
  settled(id: TapestryId, sinceMs: number): boolean;
  /** When we became a member (Infinity while joining). */
  readonly memberSinceMs: number;
}

type Phase = 'idle' | 'awaitingRoot' | 'nearest' | 'done';

/** The joiner's side: waits for the root, then runs the nearest-neighbour search level by level. */
export class Joiner {
  phase: Phase = 'idle';
  private level = 0;
  private deadlineMs = 0;
  private readonly queried = new Set<string>();
  private readonly measuring = new Set<TapestryId>();
  /**
   * The members we may join through, asked one at a time in turn: a join request that goes
   * unanswered is sent to the next, so one gateway that is gone for good (a replaced server)
   * cannot keep a node out.
   */
  private gateways: readonly string[] = [];
  private attempt = 0;
  /**
   * Join-path hops that sent us their rows during this attempt. The joiner cannot know the path in
   * advance (each hop picks the next), so rows nobody asked for are taken while joining, once per
   * sender and from at most joinPathRowsMax senders: an unasked list pinged by a joiner costs at
   * most that many lists' pings, once per join, where any member could once make every member
   * ping every other.
   */
  private readonly pathRows = new Set<string>();
  private doneAtMs = 0;

  constructor(private readonly host: JoinHost) {}

  /** The member asked last ('' before any is set). */
  get gateway(): string {
    return this.gateways.length === 0 ? '' : this.gateways[this.attempt % this.gateways.length]!;
  }

  /**
   * Where join requests that reach us while we join are passed on: always the first gateway, so
   * joiners that rotated to each other do not bounce requests between them.
   */
  get firstGateway(): string {
    return this.gateways[0] ?? '';
  }

  setGateways(gateways: readonly string[]): void {
    this.gateways = [...gateways];
    this.attempt = 0;
  }

  start(out: Out, nowMs: number): void {
    this.phase = 'awaitingRoot';
    this.pathRows.clear();
    this.deadlineMs = nowMs + this.host.config.joinStepTimeoutMs * 4;
    this.host.send(out, this.gateway, { kind: 'joinRequest', joiner: this.host.self, level: 0, hops: 0 });
  }

  onJoinDone(out: Out, prefixLength: number, nowMs: number): boolean {
    if (this.phase !== 'awaitingRoot') return false;
    this.phase = 'nearest';
    this.level = Math.min(prefixLength, idDigits - 1);
    return this.runStep(out, nowMs);
  }

  /**
   * Whether unasked rows from `from` are taken as a join-path hop's: during the join and for the
   * dedupe window after it (a request that went round a joining node is still passing the hops,
   * and each sends its rows again, newer; an overlay that starts all at once relies on them), from
   * at most joinPathRowsMax senders per attempt.
   */
  takePathRows(from: string, nowMs: number): boolean {
    if (this.phase === 'idle' || (this.phase === 'done' && nowMs - this.doneAtMs >= this.host.config.multicastTimeoutMs * 4)) return false;
    if (this.pathRows.has(from)) return true;
    if (this.pathRows.size >= joinPathRowsMax) return false;
    this.pathRows.add(from);
    return true;
  }

  /** Candidates from a node we queried count toward the current step. */
  onCandidates(out: Out, from: string, nodes: readonly NodeRef[], nowMs: number): boolean {
    for (const n of nodes) if (this.host.learn(out, n, nowMs) && this.phase === 'nearest') this.measuring.add(n.id);
    if (this.phase !== 'nearest' || !this.queried.delete(from)) return false;
    return this.maybeAdvance(out, nowMs);
  }

  onMeasured(out: Out, id: TapestryId, nowMs: number): boolean {
    if (this.phase !== 'nearest' || !this.measuring.delete(id)) return false;
    return this.maybeAdvance(out, nowMs);
  }

  /** True when the join finished in this call. */
  onTick(out: Out, nowMs: number): boolean {
    if (nowMs < this.deadlineMs) return false;
    if (this.phase === 'awaitingRoot') {
      // Nothing came back (request lost, or the gateway is down): ask the next gateway. Rows came
      // but the root's answer was lost: search from the deepest level we already reach.
      if (this.host.table.size === 0) {
        this.attempt++;
        this.start(out, nowMs);
        return false;
      }
      return this.onJoinDone(out, this.deepestLevel(), nowMs);
    }
    if (this.phase === 'nearest') return this.nextLevel(out, nowMs);
    return false;
  }

  private deepestLevel(): number {
    let deepest = 0;
    for (const n of this.host.table.neighbours()) deepest = Math.max(deepest, sharedPrefixLength(n.id, this.host.self.id));
    return deepest;
  }

  private maybeAdvance(out: Out, nowMs: number): boolean {
    if (this.queried.size > 0 || this.measuring.size > 0) return false;
    return this.nextLevel(out, nowMs);
  }

  private nextLevel(out: Out, nowMs: number): boolean {
    this.queried.clear();
    this.measuring.clear();
    if (this.level === 0) return this.finish(nowMs);
    this.level--;
    return this.runStep(out, nowMs);
  }

  /** Queries the k closest nodes sharing >= level digits; empty levels are skipped. */
  private runStep(out: Out, nowMs: number): boolean {
    for (;;) {
      const targets = this.host.table.closest(this.level, this.host.config.nearestCount);
      if (targets.length > 0) {
        this.deadlineMs = nowMs + this.host.config.joinStepTimeoutMs;
        for (const t of targets) {
          this.queried.add(t.name);
          this.host.send(out, t.name, { kind: 'neighbourQuery', level: this.level });
        }
        return false;
      }
      if (this.level === 0) return this.finish(nowMs);
      this.level--;
    }
  }

  private finish(nowMs: number): true {
    this.phase = 'done';
    this.doneAtMs = nowMs;
    return true;
  }
}

interface MulticastState {
  readonly joiner: NodeRef;
  /** null at the root, which answers the joiner instead of a parent. */
  readonly parent: string | null;
  readonly rootPrefixLength: number;
  readonly waiting: Set<string>;
  readonly deadlineMs: number;
}

/** A member's side of the acknowledged multicast (one state per joiner in flight). */
export class MulticastRelay {
  private readonly inFlight = new Map<TapestryId, MulticastState>();
  /** Joiners recently handled, so a duplicate delivery is acked instead of re-flooded. */
  private readonly recent = new Map<TapestryId, number>();

  constructor(private readonly host: JoinHost) {}

  get pending(): number {
    return this.inFlight.size;
  }

  /**
   * `parent` is the sender, or null when we are the joiner's root starting the multicast;
   * `rootPrefixLength` is the digits the root shares with the joiner (the root's `prefixLength`).
   */
  onMulticast(out: Out, parent: string | null, joiner: NodeRef, prefixLength: number, rootPrefixLength: number, nowMs: number): void {
    const seenAtMs = this.recent.get(joiner.id);
    const stale = parent !== null && !this.mayBeJoining(joiner, rootPrefixLength, nowMs);
    if (stale || this.inFlight.has(joiner.id) || (seenAtMs !== undefined && nowMs - seenAtMs < this.host.config.multicastTimeoutMs * 4)) {
      if (parent !== null) this.host.send(out, parent, { kind: 'multicastAck', joinerId: joiner.id });
      return;
    }
    this.recent.set(joiner.id, nowMs);
    if (this.recent.size > 1024) this.recent.delete(this.recent.keys().next().value!);
    // A joiner is running now, even if we marked it failed before it restarted.
    if (joiner.id !== this.host.self.id) this.host.learn(out, joiner, nowMs, true);
    const waiting = new Set<string>();
    const self = this.host.self.id;
    for (let level = prefixLength; level < idDigits; level++) {
      const own = digitAt(self, level);
      for (let d = 0; d < digitBase; d++) {
        if (d === own) continue;
        const child = this.host.table.slot(level, d).find((n) => n.id !== joiner.id);
        if (!child || waiting.has(child.name)) continue;
        waiting.add(child.name);
        this.host.send(out, child.name, { kind: 'multicast', sender: this.host.self, joiner, prefixLength: level + 1, rootPrefixLength });
      }
    }
    const state: MulticastState = {
      joiner,
      parent,
      rootPrefixLength,
      waiting,
      deadlineMs: nowMs + this.host.config.multicastTimeoutMs,
    };
    this.inFlight.set(joiner.id, state);
    if (waiting.size === 0) this.finish(out, state);
  }

  /**
   * Whether a relayed multicast can belong to a join of `joiner` now. multicastFits still lets a
   * member start a subtree below its own position, and one such multicast into each of the 15
   * other first-digit groups made 243 of 256 nodes relay, ack and ping a member it named (~1,140
   * deliveries, repeatable per name). Two things our own table knows refute that:
   *  - the joiner is a neighbour we have held since before any join of it now in progress could
   *    have started (the dedupe window) and it answers our beacons: it runs and is no newcomer
   *    (a node restarted under its old id is one we already hold, so nothing is lost);
   *  - the root shares rootPrefixLength digits with the joiner because no member shares more: a
   *    settled neighbour in our slot (rootPrefixLength, joiner's next digit) is a member that does,
   *    and so are we if we share more and have been a member since before the window. Only settled
   *    members count: a concurrent joiner may already sit there, and its multicast must not cut
   *    off another's.
   * Such a multicast is only acked (the parent is not left waiting): no relay, no ping.
   */
  private mayBeJoining(joiner: NodeRef, rootPrefixLength: number, nowMs: number): boolean {
    const sinceMs = nowMs - this.host.config.multicastTimeoutMs * 4;
    if (this.host.settled(joiner.id, sinceMs)) return false;
    if (sharedPrefixLength(this.host.self.id, joiner.id) > rootPrefixLength) return this.host.memberSinceMs > sinceMs;
    if (rootPrefixLength >= idDigits) return true;
    const slot = this.host.table.slot(rootPrefixLength, digitAt(joiner.id, rootPrefixLength));
    return !slot.some((n) => n.id !== joiner.id && this.host.settled(n.id, sinceMs));
  }

  onAck(out: Out, from: string, joinerId: TapestryId): void {
    const state = this.inFlight.get(joinerId);
    if (!state || !state.waiting.delete(from)) return;
    if (state.waiting.size === 0) this.finish(out, state);
  }

  /** Acks anyway for subtrees that did not answer in time (a member failed mid-join). */
  onTick(out: Out, nowMs: number): void {
    for (const state of [...this.inFlight.values()]) if (nowMs >= state.deadlineMs) this.finish(out, state);
  }

  private finish(out: Out, state: MulticastState): void {
    this.inFlight.delete(state.joiner.id);
    if (state.parent !== null) {
      this.host.send(out, state.parent, { kind: 'multicastAck', joinerId: state.joiner.id });
    } else if (state.joiner.id !== this.host.self.id) {
      this.host.send(out, state.joiner.name, { kind: 'joinDone', prefixLength: state.rootPrefixLength });
    }
  }
}

/**
 * Whether a multicast from `senderId` fits the tree of a real join. A parent forwards to the node
 * of its slot (l, d) with prefixLength l + 1, so a child shares exactly prefixLength − 1 digits with
 * its parent; the tree goes only deeper than its root (prefixLength − 1 ≥ the root's prefix); and
 * every node in it shares the root's prefix with the joiner. Anything else is forged: a member could
 * otherwise send one multicast with prefixLength 0 and make every node relay, ack and ping the
 * joiner it named. A member can still start a subtree below its own position (prefixLength = the
 * digits it shares with the receiver + 1), about N / 16^prefixLength nodes; one into each other
 * first-digit group covered the overlay, so the relay also checks the claim against its own table
 * (MulticastRelay.mayBeJoining).
 */
export function multicastFits(selfId: TapestryId, senderId: TapestryId, joinerId: TapestryId, prefixLength: number, rootPrefixLength: number): boolean {
  return prefixLength >= 1 && sharedPrefixLength(senderId, selfId) === prefixLength - 1 && rootPrefixLength <= prefixLength - 1 &&
    sharedPrefixLength(selfId, joinerId) >= rootPrefixLength;
}

/** The rows a join-path hop hands the joiner: every level it shares with the joiner, plus itself. */
export function rowsFor(table: RoutingTable, joiner: NodeRef): NodeRef[] {
  const shared = Math.min(sharedPrefixLength(table.self.id, joiner.id), idDigits - 1);
  const out: NodeRef[] = [table.self];
  // Deepest rows first: they are the ones consistency depends on if the list is cut at the cap.
  for (let level = shared; level >= 0 && out.length < listCountMax; level--) {
    for (const n of table.row(level)) {
      if (n.id !== joiner.id) out.push({ id: n.id, name: n.name });
    }
  }
  return out.slice(0, listCountMax);
}
