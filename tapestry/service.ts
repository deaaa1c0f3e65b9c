/**
 * A Tapestry node as a server process hosts it: the overlay core (node.ts) plus two things the
 * overlay itself does not have.
 *  - Clients. A process that is not an overlay member (the SDK, the CLI, a test) sends `lookup`
 *    to any node and gets `lookupReply` with the nearest holder: the node runs the locate on the
 *    client's behalf. Clients are not members, so they may send nothing else: overlay messages
 *    from non-members (e.g. a forged publish or joinRequest) are dropped and counted.
 *  - Locates wanted by other cores of the same process (e.g. a secondary replica's tree locator),
 *    which run inside another core's step and so cannot emit effects here: `want()` queues the
 *    object and the next tick starts the locate; its `locateResult` goes to the host as usual.
 *    Likewise `announce()` queues a publish or unpublish (e.g. a secondary replica that attached
 *    to an object's dissemination tree announces that it holds the object).
 * Pure like the node: no I/O, the host feeds messages and ticks.
 */
import type { Effect, Machine } from '../core/machine.ts';
import { checkArgument } from '../core/errors.ts';
import { isTapestryId } from './id.ts';
import type { TapestryId } from './id.ts';
import type { TapestryMessage, TapestryOutput } from './messages.ts';
import type { TapestryNode } from './node.ts';
import { noSignature } from './pointer-auth.ts';

type Effects = Effect<TapestryMessage, TapestryOutput>[];

export interface TapestryServiceOptions {
  /** True for overlay members (the cluster's node names); anyone else is a client. */
  readonly isMember: (name: string) => boolean;
  /** Client lookups in flight at once; past it a lookup is answered at once with answered: false. */
  readonly clientLookupsMax?: number;
  /** Distinct objects queued by want() (and by announce()) between two ticks; past it they return false. */
  readonly wantedMax?: number;
}

export interface TapestryServiceStats {
  clientLookups: number;
  /** Refused because clientLookupsMax were in flight or the node had not joined yet. */
  clientLookupsRefused: number;
  /** Overlay messages from non-members, and lookup replies sent to a server. */
  dropped: number;
  localLocates: number;
}

interface ClientLookup {
  readonly client: string;
  readonly clientRequestId: number;
  readonly startedMs: number;
}

export class TapestryService implements Machine<TapestryMessage, TapestryOutput> {
  readonly stats: TapestryServiceStats = { clientLookups: 0, clientLookupsRefused: 0, dropped: 0, localLocates: 0 };
  private readonly clientLookups = new Map<number, ClientLookup>();
  private readonly wanted = new Set<TapestryId>();
  /** Publish (true) or unpublish (false) at the next tick; the last word per object wins. */
  private readonly announced = new Map<TapestryId, boolean>();
  private readonly clientLookupsMax: number;
  private readonly wantedMax: number;

  constructor(
    readonly node: TapestryNode,
    private readonly options: TapestryServiceOptions,
  ) {
    checkArgument(typeof options?.isMember === 'function', 'options.isMember', 'a function of a peer name');
    this.clientLookupsMax = options.clientLookupsMax ?? 1024;
    this.wantedMax = options.wantedMax ?? 4096;
    checkArgument(Number.isSafeInteger(this.clientLookupsMax) && this.clientLookupsMax > 0, 'options.clientLookupsMax', 'a positive integer');
    checkArgument(Number.isSafeInteger(this.wantedMax) && this.wantedMax > 0, 'options.wantedMax', 'a positive integer');
  }

  /** Client lookups waiting for the overlay's answer. */
  get clientLookupsPending(): number {
    return this.clientLookups.size;
  }

  onMessage(from: string, message: TapestryMessage, nowMs: number): Effects {
    if (message.kind === 'lookup') return this.onLookup(from, message.requestId, message.objectId, nowMs);
    if (message.kind === 'lookupReply' || !this.options.isMember(from)) {
      this.stats.dropped++;
      return [];
    }
    return this.relay(this.node.onMessage(from, message, nowMs));
  }

  onTick(nowMs: number): Effects {
    const effects = this.node.onTick(nowMs);
    // A node that left has unpublished everything and refuses new publishes.
    if (!this.node.hasLeft) for (const [objectId, held] of this.announced) effects.push(...(held ? this.node.publish(objectId, nowMs) : this.node.unpublish(objectId, nowMs)));
    this.announced.clear();
    if (this.node.isMember && this.wanted.size > 0) {
      for (const objectId of this.wanted) {
        this.stats.localLocates++;
        effects.push(...this.node.locate(objectId, nowMs).effects);
      }
      this.wanted.clear();
    }
    // The node reports every locate it started (answer or timeout); an entry older than twice the
    // timeout lost its request to the node's own bound and will never be answered.
    const staleBeforeMs = nowMs - 2 * this.node.config.requestTimeoutMs;
    for (const [requestId, lookup] of this.clientLookups) if (lookup.startedMs < staleBeforeMs) this.clientLookups.delete(requestId);
    return this.relay(effects);
  }

  /** Queues a locate of `objectId` for the next tick (deduplicated). False when the queue is full. */
  want(objectId: TapestryId): boolean {
    checkArgument(isTapestryId(objectId), 'objectId', '40 lowercase hex digits');
    if (this.wanted.has(objectId)) return true;
    if (this.wanted.size >= this.wantedMax) return false;
    this.wanted.add(objectId);
    return true;
  }

  /**
   * Queues a publish (held) or unpublish (not held) of `objectId` for the next tick, for callers
   * inside another core's step. False when the queue is full.
   */
  announce(objectId: TapestryId, held: boolean): boolean {
    checkArgument(isTapestryId(objectId), 'objectId', '40 lowercase hex digits');
    if (!this.announced.has(objectId) && this.announced.size >= this.wantedMax) return false;
    this.announced.set(objectId, held);
    return true;
  }

  private onLookup(client: string, clientRequestId: number, objectId: TapestryId, nowMs: number): Effects {
    if (this.clientLookups.size >= this.clientLookupsMax || !this.node.isMember) {
      this.stats.clientLookupsRefused++;
      const reply: TapestryMessage = { kind: 'lookupReply', requestId: clientRequestId, objectId, server: null, issuedAtMs: 0, signature: noSignature, hops: 0, answered: false };
      return [{ kind: 'send', to: client, message: reply }];
    }
    this.stats.clientLookups++;
    const { requestId, effects } = this.node.locate(objectId, nowMs);
    this.clientLookups.set(requestId, { client, clientRequestId, startedMs: nowMs });
    return this.relay(effects);
  }

  /** The results of client lookups become replies to those clients; everything else passes. */
  private relay(effects: Effects): Effects {
    if (this.clientLookups.size === 0) return effects;
    const out: Effects = [];
    for (const effect of effects) {
      const lookup = effect.kind === 'output' && effect.event.kind === 'locateResult' ? this.clientLookups.get(effect.event.requestId) : undefined;
      if (!lookup || effect.kind !== 'output' || effect.event.kind !== 'locateResult') {
        out.push(effect);
        continue;
      }
      const r = effect.event;
      this.clientLookups.delete(r.requestId);
      const reply: TapestryMessage = {
        kind: 'lookupReply', requestId: lookup.clientRequestId, objectId: r.objectId, server: r.server,
        issuedAtMs: r.issuedAtMs, signature: r.signature, hops: r.hops, answered: r.answered,
      };
      out.push({ kind: 'send', to: lookup.client, message: reply });
    }
    return out;
  }
}
