/**
 * Spreading a re-signed ring descriptor to every node and client (channel 5).
 *
 * After `cluster replace-node` the admin re-signs the descriptor with the new member list. A
 * process that reads the descriptor file follows it, but a process on another machine, or one
 * given the descriptor as an object, never sees that file. So every node and client runs this
 * small core: it tells the peers it is connected to the ring epoch of the descriptor it holds,
 * and whoever holds a later one sends it. The receiver takes it only if `isLaterRing` holds:
 * signed by the admin key it already trusts, for the same cluster, ring id, ring key and nodes,
 * with a later epoch. So a Byzantine peer can withhold a descriptor or send garbage (refused and
 * counted; checks are limited per peer and in all, and padding is neither kept nor passed on), but
 * it can neither forge a ring list nor bring back an older one; one correct peer that has the new
 * one is enough.
 *
 * Messages: `ring-epoch` (the epoch the sender holds) and `descriptor` (its JSON text). The rules:
 * - every `announceMs`, announce to each of `targets()` (a node: its connected fellow members; a
 *   client: the nodes it is connected to);
 * - on an announcement below ours, send ours to that peer (at most once per `pushIntervalMs`);
 * - on an announcement above ours, answer with ours, so the peer sends its descriptor;
 * - on taking a later descriptor, announce the new epoch to its sender, and send the descriptor at
 *   once to every target and to every connected peer (a client, say) that last announced an
 *   older epoch.
 * Admin tools and the file watchers hand this core what they learned (`offer`), so it spreads on.
 */
import type { Crypto } from '../core/crypto.ts';
import { asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { DecodeError } from '../core/errors.ts';
import type { Effect, Machine } from '../core/machine.ts';
import { isLaterRing, parseDescriptor, ringEpochOf, type RingDescriptor } from './cluster-keys.ts';
import type { Binding } from './machine-host.ts';
import { channels } from './roles.ts';

export type GossipMessage = { type: 'ring-epoch'; epoch: number } | { type: 'descriptor'; json: string };

export type GossipOutput =
  /** A later descriptor was taken (from a peer, or offered locally with from = 'local'). */
  | { kind: 'adopted'; descriptor: RingDescriptor; from: string }
  /** A descriptor that is not this ring admin's word, or malformed: dropped, nothing changed. */
  | { kind: 'refused'; from: string; reason: string };

/** A descriptor names every node (~300 bytes each) and f+1 commitments: 256 KiB covers ~800 nodes. */
export const gossipFrameBytesMax = 256 * 1024;

export interface DescriptorGossipOptions {
  readonly crypto: Crypto;
  /** The descriptor this process trusts now (its admin key is pinned for good). */
  readonly descriptor: RingDescriptor;
  /** Peers to announce to (a node: its connected members; a client: the nodes it is connected to). */
  readonly targets: () => readonly string[];
  /** Every peer connected now (clients included): a taken descriptor goes to those that lack it (default: targets). */
  readonly connected?: () => readonly string[];
  /** Re-announce period per peer (default 10 s): catches peers that were down or missed a push. */
  readonly announceMs?: number;
  /** Least time between two sends of the descriptor to one peer, or two checks of one from a peer (default 1 s). */
  readonly pushIntervalMs?: number;
  /** Peers whose announced epoch is remembered (clients come and go); the oldest is forgotten first. */
  readonly peersMax?: number;
  /**
   * Budgets over all peers that are not members, per second: descriptors checked (a signature
   * check each) and descriptors sent in answer to an older announcement. Names cost a client
   * nothing (a fresh key), so per-peer limits alone do not bound the work. Defaults 10 and 50.
   */
  readonly checksPerSecondMax?: number;
  readonly answersPerSecondMax?: number;
  /**
   * Peers the budgets do not apply to (default: every peer): a node's fellow members, a finite
   * set each limited per peer, so a flood of junk under fresh client names cannot starve the
   * genuine descriptor a member sends. Clients talk only to nodes and leave it unset.
   */
  readonly isMember?: (peer: string) => boolean;
}

/** A count per one-second window. */
class Budget {
  private windowMs = -Infinity;
  private used = 0;

  constructor(private readonly perSecond: number) {}

  take(nowMs: number): boolean {
    // A clock stepped back starts a new window too (or the budget would stay spent until it caught up).
    if (nowMs - this.windowMs >= 1000 || nowMs < this.windowMs) {
      this.windowMs = nowMs;
      this.used = 0;
    }
    if (this.used >= this.perSecond) return false;
    this.used++;
    return true;
  }
}

const tags = { ringEpoch: 1, descriptor: 2 } as const;

export function encodeGossipMessage(m: GossipMessage): Uint8Array {
  return m.type === 'ring-epoch' ? encode([tags.ringEpoch, m.epoch]) : encode([tags.descriptor, m.json]);
}

export function decodeGossipMessage(bytes: Uint8Array): GossipMessage {
  const t = asTuple(decode(bytes, gossipFrameBytesMax, 'gossip message'), 'gossip message', 2);
  if (t[0] === tags.ringEpoch) return { type: 'ring-epoch', epoch: asUint(t[1], 'epoch') };
  if (t[0] === tags.descriptor) return { type: 'descriptor', json: asString(t[1], 'descriptor', gossipFrameBytesMax) };
  throw new DecodeError(`gossip message: unknown tag ${String(t[0])}`);
}

export class DescriptorGossip implements Machine<GossipMessage, GossipOutput> {
  private current: RingDescriptor;
  private json: string;
  /** One message object per descriptor held: the host encodes it once however many peers it goes to. */
  private message: GossipMessage;
  private readonly checks: Budget;
  private readonly answers: Budget;
  /** Epoch each peer last announced (insertion order = age). */
  private readonly heard = new Map<string, number>();
  private readonly announcedMs = new Map<string, number>();
  private readonly pushedMs = new Map<string, number>();
  private readonly checkedMs = new Map<string, number>();
  private readonly announceMs: number;
  private readonly pushIntervalMs: number;
  private readonly peersMax: number;
  readonly counters = { adopted: 0, refused: 0, pushed: 0, announced: 0, rateLimited: 0 };

  constructor(private readonly options: DescriptorGossipOptions) {
    this.current = options.descriptor;
    this.json = JSON.stringify(options.descriptor);
    this.message = { type: 'descriptor', json: this.json };
    this.checks = new Budget(options.checksPerSecondMax ?? 10);
    this.answers = new Budget(options.answersPerSecondMax ?? 50);
    this.announceMs = options.announceMs ?? 10_000;
    this.pushIntervalMs = options.pushIntervalMs ?? 1_000;
    this.peersMax = options.peersMax ?? 4096;
  }

  get descriptor(): RingDescriptor {
    return this.current;
  }

  get epoch(): number {
    return ringEpochOf(this.current);
  }

  /** The epoch `peer` last announced, if it did. */
  epochOf(peer: string): number | undefined {
    return this.heard.get(peer);
  }

  onMessage(from: string, message: GossipMessage, nowMs: number): Effect<GossipMessage, GossipOutput>[] {
    if (message.type === 'ring-epoch') {
      this.remember(from, message.epoch);
      if (message.epoch < this.epoch) return this.push(from, nowMs);
      if (message.epoch > this.epoch && this.due(this.announcedMs, from, nowMs, this.pushIntervalMs)) return [this.announce(from, nowMs)];
      return [];
    }
    if (!this.due(this.checkedMs, from, nowMs, this.pushIntervalMs) || (!this.member(from) && !this.checks.take(nowMs))) {
      this.counters.rateLimited++;
      return [];
    }
    this.stamp(this.checkedMs, from, nowMs);
    // A later ring lists the same nodes, so its text is about as long as ours: far longer is padding.
    const lengthMax = 2 * this.json.length + 4096;
    if (message.json.length > lengthMax) return this.refuse(from, `descriptor from ${from}: ${message.json.length} characters, more than ${lengthMax}`);
    let next: RingDescriptor;
    try {
      next = parseDescriptor(message.json, `descriptor from ${from}`);
    } catch (error) {
      return this.refuse(from, (error as Error).message);
    }
    // No news is not worth a signature check.
    if (ringEpochOf(next) <= this.epoch) {
      this.remember(from, ringEpochOf(next));
      return [];
    }
    return this.take(next, from, nowMs);
  }

  /** A descriptor learned outside this core (a file re-read, an admin tool): taken under the same rule, then spread. */
  offer(next: RingDescriptor, nowMs: number): Effect<GossipMessage, GossipOutput>[] {
    return this.take(next, 'local', nowMs);
  }

  onTick(nowMs: number): Effect<GossipMessage, GossipOutput>[] {
    const out: Effect<GossipMessage, GossipOutput>[] = [];
    for (const peer of this.options.targets()) if (this.due(this.announcedMs, peer, nowMs, this.announceMs)) out.push(this.announce(peer, nowMs));
    return out;
  }

  private take(next: RingDescriptor, from: string, nowMs: number): Effect<GossipMessage, GossipOutput>[] {
    let later: boolean;
    try {
      later = isLaterRing(this.current, next, this.options.crypto);
    } catch (error) {
      return this.refuse(from, (error as Error).message);
    }
    if (!later) {
      // The sender holds at least this epoch now; nothing to push back unless ours is later.
      if (from !== 'local') this.remember(from, ringEpochOf(next));
      return [];
    }
    this.current = next;
    this.json = JSON.stringify(next);
    this.message = { type: 'descriptor', json: this.json };
    this.counters.adopted++;
    if (from !== 'local') this.remember(from, this.epoch);
    const out: Effect<GossipMessage, GossipOutput>[] = [{ kind: 'output', event: { kind: 'adopted', descriptor: next, from } }];
    // The sender learns it arrived (an admin tool waits for that).
    if (from !== 'local') out.push(this.announce(from, nowMs));
    // Only to peers connected now: a send to a member that is not would redial it (one a client let go, say).
    const connected = new Set((this.options.connected ?? this.options.targets)());
    const peers = new Set(this.options.targets());
    for (const [peer, epoch] of this.heard) if (epoch < this.epoch && connected.has(peer)) peers.add(peer);
    for (const peer of peers) if (peer !== from && (this.heard.get(peer) ?? -1) < this.epoch) out.push(...this.push(peer, nowMs, true));
    return out;
  }

  private push(to: string, nowMs: number, force = false): Effect<GossipMessage, GossipOutput>[] {
    if (!force && (!this.due(this.pushedMs, to, nowMs, this.pushIntervalMs) || (!this.member(to) && !this.answers.take(nowMs)))) {
      this.counters.rateLimited++;
      return [];
    }
    this.stamp(this.pushedMs, to, nowMs);
    this.counters.pushed++;
    return [{ kind: 'send', to, message: this.message }];
  }

  private announce(to: string, nowMs: number): Effect<GossipMessage, GossipOutput> {
    this.stamp(this.announcedMs, to, nowMs);
    this.counters.announced++;
    return { kind: 'send', to, message: { type: 'ring-epoch', epoch: this.epoch } };
  }

  private member(peer: string): boolean {
    return this.options.isMember?.(peer) ?? true;
  }

  private refuse(from: string, reason: string): Effect<GossipMessage, GossipOutput>[] {
    this.counters.refused++;
    return [{ kind: 'output', event: { kind: 'refused', from, reason } }];
  }

  private remember(peer: string, epoch: number): void {
    this.stamp(this.heard, peer, epoch);
  }

  /** Sets `peer`'s entry as the newest; the oldest entries go beyond `peersMax` (every map is bounded). */
  private stamp(map: Map<string, number>, peer: string, value: number): void {
    map.delete(peer);
    map.set(peer, value);
    while (map.size > this.peersMax) map.delete(map.keys().next().value as string);
  }

  private due(map: Map<string, number>, peer: string, nowMs: number, intervalMs: number): boolean {
    const last = map.get(peer);
    return last === undefined || nowMs - last >= intervalMs || nowMs < last;
  }
}

/**
 * The core on a host (channel 5): volatile (what it sends reveals nothing of the store), ticking
 * every second; `onOutput` hears what it took and what it refused.
 */
export function gossipBinding(machine: DescriptorGossip, onOutput: (event: GossipOutput) => void): Binding<GossipMessage, GossipOutput> {
  return {
    channel: channels.descriptor, protocol: 'descriptor', machine, volatile: true,
    decode: decodeGossipMessage, encode: encodeGossipMessage, frameBytesMax: gossipFrameBytesMax, tickMs: 1000, onOutput,
  };
}
