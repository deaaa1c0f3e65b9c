/**
 * Hosts sans-I/O protocol cores (core/machine.ts) on the real transport and lmdb store.
 *
 * Several cores share one process (a role's core and its Tapestry node): each is bound to a
 * one-byte channel that prefixes its frames. For every frame the host looks up the channel,
 * decodes with that protocol's bounded decoder (a frame that fails is dropped, logged and
 * counted: bad input never reaches a core), calls onMessage, and collects the effects.
 *
 * The durability contract: effects are held until the store has made durable every write staged
 * before them. While one flush (one fsync) runs, further steps keep executing and their effects
 * queue behind the next flush, so when busy one fsync releases many steps (group commit). Effects
 * are always released in the order the steps produced them.
 */
import type { Logger } from 'pino';
import { DecodeError } from '../core/errors.ts';
import type { Effect, Machine } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import { LogLimiter } from './log.ts';
import type { Transport } from './transport.ts';

/** Exit codes of a node that stops itself (docs/operations.md): state not durable, or effects not performed. */
export const storeFailedExitCode = 70;
export const effectsFailedExitCode = 71;

/** A KvStore whose staged writes can be made durable: the lmdb store, or a test double. */
export interface DurableKvStore extends KvStore {
  readonly dirty: boolean;
  flush(): Promise<void>;
}

export interface Binding<M, O> {
  /** Frame prefix byte; unique per host. */
  readonly channel: number;
  /** For logs and metrics ('ring', 'tapestry'). */
  readonly protocol: string;
  readonly machine: Machine<M, O>;
  readonly decode: (bytes: Uint8Array) => M;
  readonly encode: (message: M) => Uint8Array;
  /**
   * Optional: the same encoding with `reservedBytes` free bytes in front, which the host fills with
   * the channel byte. Saves copying every frame once more (for block-carrying replies, a second
   * copy and allocation of every byte a node serves).
   */
  readonly encodeFrame?: (message: M, reservedBytes: number) => Uint8Array;
  /** Frames of this protocol larger than this are dropped before decoding. */
  readonly frameBytesMax: number;
  /** onTick period. */
  readonly tickMs: number;
  /** Receives the core's output events once their step is durable. */
  readonly onOutput?: (event: O) => void;
  /**
   * The core keeps nothing in the store and its messages reveal nothing that is (e.g. Tapestry's
   * soft state): its effects leave at once instead of waiting behind other cores' fsyncs.
   */
  readonly volatile?: boolean;
}

export interface HostEvents {
  /** One step released after a flush: how many steps the flush covered and how long it took. */
  onFlush?(stepCount: number, flushMs: number): void;
  onDrop?(protocol: string, reason: string): void;
  onMessage?(protocol: string, from: string): void;
}

export interface HostCounters {
  steps: number;
  framesDropped: number;
  flushes: number;
  stepsPerFlushMax: number;
}

interface PendingStep {
  readonly binding: Binding<unknown, unknown>;
  readonly effects: Effect<unknown, unknown>[];
  /** Nothing was staged or being flushed when the step ended: its effects wait for no fsync. */
  readonly clean?: boolean;
}

export class MachineHost {
  private readonly bindings = new Map<number, Binding<unknown, unknown>>();
  private readonly timers: NodeJS.Timeout[] = [];
  private pending: PendingStep[] = [];
  private releasing = false;
  private releaseScheduled = false;
  private stopped = false;
  private lazyFlush: NodeJS.Timeout | null = null;
  readonly counters: HostCounters = { steps: 0, framesDropped: 0, flushes: 0, stepsPerFlushMax: 0 };
  /** Dropped frames are a peer's doing: logged a few per peer and reason, then summed up. */
  private readonly dropLog: LogLimiter;

  constructor(
    private readonly nodeId: string,
    private readonly transport: Transport,
    private readonly store: DurableKvStore,
    private readonly log: Logger,
    private readonly events: HostEvents = {},
    private readonly nowMs: () => number = Date.now,
    /** How long writes of steps that revealed nothing may stay staged before their own flush. */
    private readonly lazyFlushMs = 50,
  ) {
    this.dropLog = new LogLimiter(log);
    transport.onFrame((from, frame) => this.onFrame(from, frame));
  }

  add<M, O>(binding: Binding<M, O>): void {
    if (this.bindings.has(binding.channel)) throw new Error(`channel ${binding.channel} is already bound`);
    this.bindings.set(binding.channel, binding as unknown as Binding<unknown, unknown>);
  }

  /** Starts the tick timers. Frames are handled from construction on. */
  start(): void {
    for (const binding of this.bindings.values()) {
      const timer = setInterval(() => this.step(binding, () => binding.machine.onTick(this.nowMs())), binding.tickMs);
      this.timers.push(timer);
    }
  }

  /** Stops ticking and waits for held effects to be released (or dropped, if the store failed). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    if (this.lazyFlush) clearTimeout(this.lazyFlush);
    this.lazyFlush = null;
    this.dropLog.flush();
    for (let i = 0; i < 1000 && this.releasing; i++) await new Promise((r) => setTimeout(r, 5));
  }

  /** Runs a host-initiated step on a core (e.g. a Tapestry join), under the same durability rule. */
  execute(channel: number, run: (nowMs: number) => Effect<unknown, unknown>[]): void {
    const binding = this.bindings.get(channel);
    if (!binding) throw new Error(`no core on channel ${channel}`);
    this.step(binding, () => run(this.nowMs()));
  }

  /** Feeds a message to a core as if it came from `from` (local callers such as an admin API). */
  inject<M>(channel: number, from: string, message: M): void {
    const binding = this.bindings.get(channel);
    if (!binding) throw new Error(`no core on channel ${channel}`);
    this.step(binding, () => binding.machine.onMessage(from, message, this.nowMs()));
  }

  private onFrame(from: string, frame: Uint8Array): void {
    if (this.stopped) return;
    const channel = frame[0];
    const binding = channel === undefined ? undefined : this.bindings.get(channel);
    if (!binding) return this.drop('unknown', from, channel === undefined ? 'empty frame' : `unknown channel ${channel}`);
    const body = frame.subarray(1);
    if (body.length > binding.frameBytesMax) {
      return this.drop(binding.protocol, from, `oversized: ${body.length} bytes exceeds ${binding.frameBytesMax}`);
    }
    let message: unknown;
    try {
      message = binding.decode(body);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return this.drop(binding.protocol, from, `malformed: ${error.message}`);
    }
    this.events.onMessage?.(binding.protocol, from);
    this.step(binding, () => binding.machine.onMessage(from, message, this.nowMs()));
  }

  private drop(protocol: string, from: string, reason: string): void {
    this.counters.framesDropped += 1;
    this.events.onDrop?.(protocol, reason);
    // The reason's kind ('unknown', 'oversized', 'malformed', 'empty'), not its text: one key per kind.
    this.dropLog.warn(`${from} ${protocol} ${reason.split(/[ :]/)[0]}`, { protocol, from, reason }, 'frame dropped');
  }

  private step(binding: Binding<unknown, unknown>, run: () => Effect<unknown, unknown>[]): void {
    if (this.stopped) return;
    // A core that throws has broken an invariant (assertion): crash loudly, the supervisor restarts us.
    const effects = run();
    this.counters.steps += 1;
    if (binding.volatile) {
      if (effects.length > 0) this.perform({ binding, effects }, new Map());
      return;
    }
    if (effects.length === 0) {
      // Nothing to reveal, so nothing waits on these writes: the next release makes them durable
      // with its own (flushes are in order, so durable state is always a prefix of the steps), or
      // a lazy flush does. A crash before then is a crash one step earlier with this step's
      // incoming message lost, which every protocol here tolerates. Flushing here instead cost a
      // ring backup an fsync per received prepare and commit, each blocking the message after it.
      if (this.store.dirty && !this.releasing) this.scheduleLazyFlush();
      return;
    }
    this.pending.push({ binding, effects, clean: !this.store.dirty });
    if (!this.releasing && !this.releaseScheduled) {
      // Let the frames already read from the sockets run first: their steps share this flush.
      this.releaseScheduled = true;
      setImmediate(() => {
        this.releaseScheduled = false;
        if (!this.releasing) void this.release();
      });
    }
  }

  /** Makes effect-less writes durable within lazyFlushMs unless a release does it first. */
  private scheduleLazyFlush(): void {
    if (this.lazyFlush || this.stopped) return;
    this.lazyFlush = setTimeout(() => {
      this.lazyFlush = null;
      if (this.stopped || !this.store.dirty) return;
      // An empty step: the release flushes before performing it, and it performs nothing.
      this.pending.push({ binding: this.bindings.values().next().value!, effects: [] });
      if (!this.releasing) void this.release();
    }, this.lazyFlushMs);
  }

  private async release(): Promise<void> {
    this.releasing = true;
    try {
      for (let round = 0; this.pending.length > 0; round++) {
        const steps = this.pending;
        this.pending = [];
        // A step that ended with nothing staged depends on no write that is not durable yet, even
        // if steps after it (say a late commit staging a replica's held execution writes) staged
        // some before this release ran. Writes are staged in step order, so such steps form a
        // prefix of the queue: their effects leave now, the rest after the flush.
        const frames = new Map<unknown, Uint8Array>();
        let cleanCount = 0;
        while (cleanCount < steps.length && steps[cleanCount]!.clean) this.perform(steps[cleanCount++]!, frames);
        const waiting = steps.slice(cleanCount);
        if (waiting.length === 0) continue;
        if (this.store.dirty) {
          const startedMs = performance.now();
          try {
            await this.store.flush();
          } catch (error) {
            // The store could not make state durable: nothing of it may be revealed. Stop the node.
            return this.exitFatal(error, 'store flush failed; exiting', storeFailedExitCode);
          }
          this.counters.flushes += 1;
          this.counters.stepsPerFlushMax = Math.max(this.counters.stepsPerFlushMax, waiting.length);
          this.events.onFlush?.(waiting.length, performance.now() - startedMs);
        }
        // A broadcast is one message object sent to several peers: encode it once per release.
        for (const step of waiting) this.perform(step, frames);
      }
      if (this.store.dirty) this.scheduleLazyFlush();
    } catch (error) {
      // An output callback or an encoder threw after its step's writes were durable (say a key
      // share file could not be written: ENOSPC). Later steps' effects would be lost silently, so
      // the node stops, under its own words: it is not the store that failed.
      this.exitFatal(error, "a step's effects could not be performed; exiting", effectsFailedExitCode);
    } finally {
      this.releasing = false;
    }
  }

  private exitFatal(error: unknown, message: string, code: number): void {
    try {
      this.log.fatal({ err: error }, message);
    } catch {
      // The log is on the full disk too: the exit code is what is left to say it.
    } finally {
      process.exit(code);
    }
  }

  private perform({ binding, effects }: PendingStep, frames: Map<unknown, Uint8Array>): void {
    for (const effect of effects) {
      if (effect.kind === 'output') {
        binding.onOutput?.(effect.event);
        continue;
      }
      if (effect.to === this.nodeId) {
        // A core addressing itself (e.g. the primary's own prepare): loop back without the network.
        const message = effect.message;
        setImmediate(() => this.step(binding, () => binding.machine.onMessage(this.nodeId, message, this.nowMs())));
        continue;
      }
      let frame = frames.get(effect.message);
      if (!frame) {
        if (binding.encodeFrame) {
          frame = binding.encodeFrame(effect.message, 1);
        } else {
          const body = binding.encode(effect.message);
          frame = new Uint8Array(body.length + 1);
          frame.set(body, 1);
        }
        frame[0] = binding.channel;
        frames.set(effect.message, frame);
      }
      this.transport.send(effect.to, frame);
    }
  }
}
