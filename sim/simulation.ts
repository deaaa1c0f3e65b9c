/**
 * The deterministic simulator: many protocol cores (core/machine.ts) in one thread on virtual time,
 * joined by a seeded network that delays, loses, duplicates and reorders messages, with partitions,
 * crash/restart (durable KvStore kept, volatile state lost) and a hook for Byzantine behaviour.
 * One seed reproduces a run exactly: every random draw comes from PRNGs forked from it, and
 * `traceHash()` fingerprints the delivered events so two runs can be compared.
 */
import { assert } from '../core/assert.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import { MemoryKvStore } from '../core/store.ts';
import { EventQueue } from './event-queue.ts';
import { Prng } from './prng.ts';
import { TraceHash } from './trace-hash.ts';

export interface NetworkOptions {
  delayMsMin: number;
  delayMsMax: number;
  /** Probability that a message is dropped. */
  lossRate: number;
  /** Probability that a message is delivered twice (independent delays, so also reordered). */
  duplicateRate: number;
}

export const defaultNetwork: NetworkOptions = { delayMsMin: 1, delayMsMax: 10, lossRate: 0, duplicateRate: 0 };

export type MachineFactory<M, O> = (context: MachineContext) => Machine<M, O>;

/** Rewrites (or drops, or multiplies) the messages a Byzantine node sends. */
export type Interceptor<M> = (message: M, to: string, random: Prng) => M[];

export interface SimulationOptions<M> {
  seed: number;
  /** Virtual milliseconds between ticks of every up node. */
  tickMs?: number;
  network?: Partial<NetworkOptions>;
  /** Copies a message in flight so sender and receiver never share mutable objects. */
  cloneMessage?: (message: M) => M;
  /** Short text for the trace hash; defaults to JSON with byte arrays as hex. */
  describeMessage?: (message: M) => string;
}

interface SimNode<M, O> {
  readonly id: string;
  readonly factory: MachineFactory<M, O>;
  readonly store: MemoryKvStore;
  readonly random: Prng;
  machine: Machine<M, O> | null;
  /** Incarnation: messages and ticks scheduled for an older one are discarded. */
  epoch: number;
}

type SimEvent<M> =
  | { kind: 'deliver'; from: string; to: string; message: M }
  | { kind: 'tick'; node: string; epoch: number }
  | { kind: 'local'; node: string; epoch: number; label: string; run: (machine: Machine<M, unknown>, nowMs: number) => Effect<M, unknown>[] };

export type OutputListener<O> = (nodeId: string, event: O, nowMs: number) => void;

export interface SimulationStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  ticks: number;
}

export class Simulation<M, O = unknown> {
  readonly random: Prng;
  nowMs = 0;
  readonly stats: SimulationStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, ticks: 0 };
  private readonly tickMs: number;
  private network: NetworkOptions;
  private readonly networkRandom: Prng;
  private readonly nodes = new Map<string, SimNode<M, O>>();
  private readonly queue = new EventQueue<SimEvent<M>>();
  private readonly interceptors = new Map<string, Interceptor<M>>();
  private groupOf: Map<string, number> | null = null;
  private readonly outputListeners: OutputListener<O>[] = [];
  private readonly checkers: (() => void)[] = [];
  private readonly trace = new TraceHash();

  constructor(private readonly options: SimulationOptions<M>) {
    this.random = new Prng(options.seed);
    this.networkRandom = this.random.fork('network');
    this.tickMs = options.tickMs ?? 10;
    assert(this.tickMs > 0, 'tickMs must be positive');
    this.network = { ...defaultNetwork, ...options.network };
  }

  /** Adds a node and builds its core now; it ticks every tickMs from the next tick on. */
  addNode(id: string, factory: MachineFactory<M, O>): void {
    assert(!this.nodes.has(id), `node ${id} added twice`);
    const node: SimNode<M, O> = {
      id,
      factory,
      store: new MemoryKvStore(),
      random: this.random.fork(`node:${id}`),
      machine: null,
      epoch: 0,
    };
    this.nodes.set(id, node);
    this.boot(node);
  }

  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  isUp(id: string): boolean {
    return this.node(id).machine !== null;
  }

  /** The node's core, for checkers that inspect state (read only, by convention). */
  machine(id: string): Machine<M, O> | null {
    return this.node(id).machine;
  }

  /** The node's durable store: what survives a crash. */
  store(id: string): MemoryKvStore {
    return this.node(id).store;
  }

  /** Loses the node's volatile state; messages to it are dropped until it restarts. */
  crash(id: string): void {
    const node = this.node(id);
    node.machine = null;
    node.epoch++;
  }

  /** Rebuilds the node's core from its durable store. */
  restart(id: string): void {
    const node = this.node(id);
    assert(node.machine === null, `restart of ${id}, which is up`);
    this.boot(node);
  }

  /** Nodes in different groups cannot exchange messages; nodes not listed share one extra group. */
  partition(groups: string[][]): void {
    this.groupOf = new Map();
    groups.forEach((group, i) => group.forEach((id) => this.groupOf!.set(id, i + 1)));
  }

  heal(): void {
    this.groupOf = null;
  }

  setNetwork(network: Partial<NetworkOptions>): void {
    this.network = { ...this.network, ...network };
  }

  /** Byzantine hook: every message `id` sends passes through `interceptor` (null removes it). */
  setInterceptor(id: string, interceptor: Interceptor<M> | null): void {
    if (interceptor) this.interceptors.set(id, interceptor);
    else this.interceptors.delete(id);
  }

  /**
   * A step the node's host starts `delayMs` from now (say, work it ran off the core's thread coming
   * back): `run` gets the core and returns its effects. Dropped if the node crashes first.
   */
  later(id: string, delayMs: number, label: string, run: (machine: Machine<M, O>, nowMs: number) => Effect<M, O>[]): void {
    const node = this.node(id);
    assert(node.machine !== null, `later() on ${id}, which is down`);
    this.queue.push(this.nowMs + delayMs, { kind: 'local', node: id, epoch: node.epoch, label, run: run as never });
  }

  /** A message from outside the modelled nodes (or a forged one, for tests), sent over the network. */
  send(from: string, to: string, message: M): void {
    this.transmit(from, to, message);
  }

  onOutput(listener: OutputListener<O>): void {
    this.outputListeners.push(listener);
  }

  /** `checker` runs after every event; it should throw (assert) when an invariant is broken. */
  onStep(checker: () => void): void {
    this.checkers.push(checker);
  }

  /** Processes the next event; false when nothing is scheduled. */
  step(): boolean {
    const next = this.queue.pop();
    if (!next) return false;
    assert(next.atMs >= this.nowMs, 'time never goes backwards');
    this.nowMs = next.atMs;
    const event = next.item;
    if (event.kind === 'tick') this.onTickEvent(event.node, event.epoch);
    else if (event.kind === 'local') this.onLocalEvent(event);
    else this.onDeliverEvent(event.from, event.to, event.message);
    for (const check of this.checkers) check();
    return true;
  }

  /** Runs until virtual time has advanced by `durationMs`. */
  runFor(durationMs: number): void {
    const endMs = this.nowMs + durationMs;
    while ((this.queue.peek()?.atMs ?? Infinity) <= endMs) this.step();
    this.nowMs = endMs;
  }

  /** Runs until `condition()` holds (true) or `timeMsMax` of virtual time passes (false). */
  runUntil(condition: () => boolean, timeMsMax: number): boolean {
    const endMs = this.nowMs + timeMsMax;
    while (!condition()) {
      if ((this.queue.peek()?.atMs ?? Infinity) > endMs) {
        this.nowMs = endMs;
        return condition();
      }
      this.step();
    }
    return true;
  }

  /** Hex fingerprint of every event delivered so far. */
  traceHash(): string {
    return this.trace.hex();
  }

  private node(id: string): SimNode<M, O> {
    const node = this.nodes.get(id);
    assert(node, `unknown node ${id}`);
    return node;
  }

  private boot(node: SimNode<M, O>): void {
    node.machine = node.factory({ nodeId: node.id, store: node.store, random: node.random, nowMs: this.nowMs });
    // Stagger first ticks so nodes do not all time out in the same instant.
    this.queue.push(this.nowMs + 1 + node.random.int(this.tickMs), { kind: 'tick', node: node.id, epoch: node.epoch });
  }

  private onTickEvent(id: string, epoch: number): void {
    const node = this.node(id);
    if (!node.machine || node.epoch !== epoch) return;
    this.stats.ticks++;
    this.trace.add(`t ${this.nowMs} ${id}`);
    this.queue.push(this.nowMs + this.tickMs, { kind: 'tick', node: id, epoch });
    this.perform(node, node.machine.onTick(this.nowMs));
  }

  private onLocalEvent(event: Extract<SimEvent<M>, { kind: 'local' }>): void {
    const node = this.node(event.node);
    if (!node.machine || node.epoch !== event.epoch) return;
    this.trace.add(`l ${this.nowMs} ${event.node} ${event.label}`);
    this.perform(node, event.run(node.machine, this.nowMs) as Effect<M, O>[]);
  }

  private onDeliverEvent(from: string, to: string, message: M): void {
    const node = this.nodes.get(to);
    if (!node?.machine) {
      this.stats.dropped++;
      return;
    }
    this.stats.delivered++;
    this.trace.add(`d ${this.nowMs} ${from}>${to} ${this.describe(message)}`);
    this.perform(node, node.machine.onMessage(from, message, this.nowMs));
  }

  /** Writes to the store are already applied (durable) when the effects come back: the barrier is free here. */
  private perform(node: SimNode<M, O>, effects: Effect<M, O>[]): void {
    for (const effect of effects) {
      if (effect.kind === 'send') {
        const interceptor = this.interceptors.get(node.id);
        const messages = interceptor ? interceptor(effect.message, effect.to, node.random) : [effect.message];
        for (const m of messages) this.transmit(node.id, effect.to, m);
      } else {
        for (const listener of this.outputListeners) listener(node.id, effect.event, this.nowMs);
      }
    }
  }

  private transmit(from: string, to: string, message: M): void {
    this.stats.sent++;
    if (this.groupOf && (this.groupOf.get(from) ?? 0) !== (this.groupOf.get(to) ?? 0)) {
      this.stats.dropped++;
      return;
    }
    const r = this.networkRandom;
    if (from !== to && r.chance(this.network.lossRate)) {
      this.stats.dropped++;
      return;
    }
    const copies = from !== to && r.chance(this.network.duplicateRate) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      const { delayMsMin, delayMsMax } = this.network;
      const delayMs = delayMsMin + r.float() * (delayMsMax - delayMsMin);
      const copy = this.options.cloneMessage ? this.options.cloneMessage(message) : message;
      this.queue.push(this.nowMs + delayMs, { kind: 'deliver', from, to, message: copy });
    }
  }

  private describe(message: M): string {
    if (this.options.describeMessage) return this.options.describeMessage(message);
    return JSON.stringify(message, (_k, v: unknown) =>
      v instanceof Uint8Array ? Buffer.prototype.toString.call(v, 'hex').slice(0, 16) : v,
    );
  }
}
