/**
 * The shape of every protocol core (PBFT replica, Tapestry node, dissemination member, repairer):
 * a synchronous, deterministic state machine. Messages and ticks go in; effects come out. No
 * sockets, timers, clocks or randomness inside: the host (sim/ or runtime/) owns those.
 *
 * Durability contract (as in etcd-io/raft): a core writes its durable state synchronously to the
 * KvStore it was given. The host makes every write of a step durable before it performs any
 * `send` of that step, so a message never reveals state a crash could lose. After a crash the
 * host builds the core again from the same KvStore; volatile fields are gone.
 */
import type { KvStore } from './store.ts';

/** What a core asks its host to do. Effects of one step are performed in order. */
export type Effect<M, O = unknown> =
  | { kind: 'send'; to: string; message: M }
  /** Something the outside world may want: a reply to deliver, a commit for checkers and metrics. */
  | { kind: 'output'; event: O };

export interface Machine<M, O = unknown> {
  /**
   * One message from peer `from`. The host has authenticated `from` (the runtime's handshake, the
   * simulator's network), but the content may be Byzantine: a core never throws on it, it drops
   * and counts. `nowMs` is the host's clock (virtual in simulation).
   */
  onMessage(from: string, message: M, nowMs: number): Effect<M, O>[];
  /** Called every `tickMs` of host time; timeouts are computed from `nowMs`. */
  onTick(nowMs: number): Effect<M, O>[];
}

/** What a host hands a core when it (re)builds it. */
export interface MachineContext {
  /** This node's name in the configuration (e.g. 'ring-0'). */
  readonly nodeId: string;
  /** Durable key-value storage; survives crashes. */
  readonly store: KvStore;
  /** Deterministic randomness (seeded in simulation, crypto-random in the runtime). */
  readonly random: RandomSource;
  /** Host time when the core is built. */
  readonly nowMs: number;
}

export interface RandomSource {
  /** Uniform integer in [0, bound). */
  int(bound: number): number;
  /** Uniform float in [0, 1). */
  float(): number;
  bytes(count: number): Uint8Array;
}
