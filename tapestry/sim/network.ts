/**
 * A purpose-built, event-driven simulator for thousands of Tapestry nodes: one binary heap of
 * message deliveries and ticks on virtual time, delays from a latency model, crash and graceful
 * leave. It runs the real node core (tapestry/node.ts) unchanged; with `wire` every message also
 * goes through encode/decode. Deterministic given the seed. It also keeps the bookkeeping the
 * measurements need: the one-way latency accumulated by each route/locate request along its
 * overlay path, and every output event.
 */
import { assert } from '../../core/assert.ts';
import type { Effect } from '../../core/machine.ts';
import { Prng } from '../../sim/prng.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../codec.ts';
import type { TapestryConfig } from '../config.ts';
import { digitAt, digitBase, idDigits, tapestryIdOf } from '../id.ts';
import type { NodeRef, TapestryId } from '../id.ts';
import type { TapestryMessage, TapestryOutput } from '../messages.ts';
import { TapestryNode } from '../node.ts';
import { EventHeap } from './event-heap.ts';
import type { TimedEvent } from './event-heap.ts';
import type { LatencyModel } from './latency.ts';

export interface SimNode {
  readonly index: number;
  readonly ref: NodeRef;
  readonly node: TapestryNode;
  alive: boolean;
}

interface SimEvent extends TimedEvent {
  to: number;
  from: string | null;
  message: TapestryMessage | null;
  /** A scheduled driver action (e.g. a join during churn) instead of a delivery. */
  action?: () => void;
}

export interface RequestRecord {
  readonly origin: string;
  readonly requestId: number;
  readonly issuedAtMs: number;
  /** Sum of one-way delays of the request's overlay hops (replies excluded). */
  pathMs: number;
  result: TapestryOutput | null;
  answeredAtMs: number;
}

export interface NetworkOptions {
  readonly seed: number;
  readonly latency: LatencyModel;
  readonly config?: Partial<TapestryConfig>;
  /** Tick period per node; 0 = no ticks (static measurements on a built overlay). */
  readonly tickMs?: number;
  /** Encode and decode every message (slower; proves the codec carries everything). */
  readonly wire?: boolean;
}

export class TapestryNetwork {
  nowMs = 0;
  messagesDelivered = 0;
  readonly nodes: SimNode[] = [];
  readonly outputs: { atMs: number; node: string; event: TapestryOutput }[] = [];
  private readonly byName = new Map<string, SimNode>();
  private readonly heap = new EventHeap<SimEvent>();
  private readonly requests = new Map<string, RequestRecord>();
  private readonly prng: Prng;
  private seq = 0;
  private tickMs: number;

  constructor(private readonly options: NetworkOptions) {
    this.prng = new Prng(options.seed).fork('network');
    this.tickMs = options.tickMs ?? 0;
  }

  /** Starts ticking every live node (after a tick-less build), phases spread over one period. */
  enableTicks(tickMs: number): void {
    assert(this.tickMs === 0 && tickMs > 0, 'ticks can be enabled once');
    this.tickMs = tickMs;
    for (const n of this.nodes) {
      if (!n.alive || n.node.hasLeft) continue;
      // No beacon could be heard during the build: without this, the first beacon round dropped
      // every build-time backpointer as silent (42% were gone 60 s later).
      n.node.table.heardFromAllBackpointers(this.nowMs);
      this.scheduleTick(n.index, this.nowMs + 1 + this.prng.int(tickMs));
    }
  }

  get hasTicks(): boolean {
    return this.tickMs > 0;
  }

  get(name: string): SimNode {
    const n = this.byName.get(name);
    assert(n !== undefined, `no simulated node named ${name}`);
    return n;
  }

  live(): SimNode[] {
    return this.nodes.filter((n) => n.alive && !n.node.hasLeft);
  }

  /** A new node with a random key (its id is the real tapestryIdOf). Not yet in the overlay. */
  addNode(): SimNode {
    const index = this.nodes.length;
    const name = `n${index}`;
    const id = tapestryIdOf(nodeCrypto, this.prng.bytes(32));
    const node = new TapestryNode({ self: { id, name }, random: this.prng.fork(name), nowMs: this.nowMs, config: this.options.config });
    const sim: SimNode = { index, ref: { id, name }, node, alive: true };
    this.nodes.push(sim);
    this.byName.set(name, sim);
    if (this.tickMs > 0) this.scheduleTick(index, this.nowMs + 1 + this.prng.int(this.tickMs));
    return sim;
  }

  /**
   * Measurement aid: switches publishing to nearest neighbours on every node of a built overlay,
   * so a baseline is measured on the same tables. Only the publish fan-out reads it (joins and
   * routing do not), which is why changing it after the build is equivalent to building with it.
   */
  setPublishToNearestCount(count: number): void {
    assert(Number.isSafeInteger(count) && count >= 0, 'a count of neighbours');
    for (const n of this.nodes) (n.node.config as { publishToNearestCount: number }).publishToNearestCount = count;
  }

  join(name: string, gateway: string): void {
    this.apply(this.get(name), this.get(name).node.join(gateway, this.nowMs));
  }

  /** Crash: the node stops and every message to it is lost. */
  crash(name: string): void {
    this.get(name).alive = false;
  }

  leave(name: string): void {
    const sim = this.get(name);
    this.apply(sim, sim.node.leave(this.nowMs));
  }

  publish(name: string, objectId: TapestryId): void {
    const sim = this.get(name);
    this.apply(sim, sim.node.publish(objectId, this.nowMs));
  }

  unpublish(name: string, objectId: TapestryId): void {
    const sim = this.get(name);
    this.apply(sim, sim.node.unpublish(objectId, this.nowMs));
  }

  route(origin: string, targetId: TapestryId): RequestRecord {
    const sim = this.get(origin);
    const { requestId, effects } = sim.node.route(targetId, this.nowMs);
    return this.track(sim, requestId, effects);
  }

  locate(origin: string, objectId: TapestryId): RequestRecord {
    const sim = this.get(origin);
    const { requestId, effects } = sim.node.locate(objectId, this.nowMs);
    return this.track(sim, requestId, effects);
  }

  /** Processes events until none remain before `untilMs` (or the queue drains). */
  runUntil(untilMs: number): void {
    for (;;) {
      const top = this.heap.peek();
      if (!top || top.atMs > untilMs) break;
      this.heap.pop();
      this.nowMs = top.atMs;
      this.deliver(top);
    }
    if (this.tickMs > 0 || this.heap.size > 0) this.nowMs = Math.max(this.nowMs, untilMs);
  }

  /** Without ticks: runs until no message is in flight. Returns false if eventsMax was hit. */
  runUntilIdle(eventsMax = 50_000_000): boolean {
    assert(this.tickMs === 0, 'runUntilIdle needs a network without ticks (ticks never go idle)');
    for (let i = 0; i < eventsMax; i++) {
      const top = this.heap.pop();
      if (!top) return true;
      this.nowMs = top.atMs;
      this.deliver(top);
    }
    return false;
  }

  latencyMs(a: string, b: string): number {
    return this.options.latency.latencyMs(this.get(a).index, this.get(b).index);
  }

  /**
   * Ground truth: the root surrogate routing must reach for `targetId` given the live membership
   * (the unique root of §3.1.1): narrow the candidates digit by digit, taking the wanted digit or
   * the next one up (mod 16) that some live node has.
   */
  trueRoot(targetId: TapestryId, members: readonly SimNode[] = this.live()): SimNode {
    let candidates = members;
    for (let level = 0; level < idDigits && candidates.length > 1; level++) {
      const wanted = digitAt(targetId, level);
      for (let k = 0; k < digitBase; k++) {
        const d = (wanted + k) % digitBase;
        const sub = candidates.filter((c) => digitAt(c.ref.id, level) === d);
        if (sub.length > 0) {
          candidates = sub;
          break;
        }
      }
    }
    assert(candidates.length === 1, 'ids are unique, so exactly one root remains');
    return candidates[0]!;
  }

  /** Follows the real next-hop function table by table (no messages): the root reached and hops. */
  walk(origin: string, targetId: TapestryId, hopsMax = 64): { root: string; hops: number } | null {
    let at = this.get(origin);
    let level = 0;
    for (let hops = 0; hops <= hopsMax; hops++) {
      const next = at.node.table.nextHop(targetId, level);
      if (!next) return { root: at.ref.name, hops };
      at = this.get(next.hop.name);
      if (!at.alive || at.node.hasLeft) return null;
      level = next.level;
    }
    return null;
  }

  private track(sim: SimNode, requestId: number, effects: Effect<TapestryMessage, TapestryOutput>[]): RequestRecord {
    const record: RequestRecord = { origin: sim.ref.name, requestId, issuedAtMs: this.nowMs, pathMs: 0, result: null, answeredAtMs: -1 };
    this.requests.set(`${sim.ref.name}#${requestId}`, record);
    this.apply(sim, effects);
    return record;
  }

  /** Runs `action` at virtual time `atMs` (in order with deliveries). */
  at(atMs: number, action: () => void): void {
    assert(atMs >= this.nowMs, 'cannot schedule in the past');
    this.heap.push({ atMs, seq: this.seq++, to: -1, from: null, message: null, action });
  }

  private scheduleTick(index: number, atMs: number): void {
    this.heap.push({ atMs, seq: this.seq++, to: index, from: null, message: null });
  }

  private deliver(event: SimEvent): void {
    if (event.action) return event.action();
    const sim = this.nodes[event.to]!;
    if (!sim.alive || sim.node.hasLeft) return;
    if (event.message === null) {
      this.scheduleTick(event.to, event.atMs + this.tickMs);
      this.apply(sim, sim.node.onTick(this.nowMs));
      return;
    }
    this.messagesDelivered++;
    const m = event.message;
    if (m.kind === 'route' || m.kind === 'locate') {
      const record = this.requests.get(`${m.origin.name}#${m.requestId}`);
      if (record) record.pathMs += this.options.latency.latencyMs(this.get(event.from!).index, event.to);
    }
    this.apply(sim, sim.node.onMessage(event.from!, m, this.nowMs));
  }

  private apply(sim: SimNode, effects: Effect<TapestryMessage, TapestryOutput>[]): void {
    for (const e of effects) {
      if (e.kind === 'output') {
        this.outputs.push({ atMs: this.nowMs, node: sim.ref.name, event: e.event });
        this.recordResult(sim, e.event);
        continue;
      }
      const to = this.byName.get(e.to);
      if (!to) continue;
      const message = this.options.wire ? decodeTapestryMessage(encodeTapestryMessage(e.message)) : e.message;
      const delay = this.options.latency.latencyMs(sim.index, to.index);
      this.heap.push({ atMs: this.nowMs + delay, seq: this.seq++, to: to.index, from: sim.ref.name, message });
    }
  }

  private recordResult(sim: SimNode, event: TapestryOutput): void {
    if (event.kind !== 'routeResult' && event.kind !== 'locateResult') return;
    const key = `${sim.ref.name}#${event.requestId}`;
    const record = this.requests.get(key);
    if (!record) return;
    record.result = event;
    record.answeredAtMs = this.nowMs;
    this.requests.delete(key);
  }

  /** Drops finished bookkeeping (long runs). */
  outputsClear(): void {
    this.outputs.length = 0;
  }
}
