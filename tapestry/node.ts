/**
 * One Tapestry node as a sans-I/O core (core/machine.ts): messages and ticks in, sends and output
 * events out. Implements decentralized object location and routing (Zhao et al., "Tapestry: A
 * Resilient Global-Scale Overlay for Service Deployment", IEEE JSAC 2004):
 *  - prefix routing with surrogate routing (§3.1, routing-table.ts),
 *  - publish / locate / unpublish with soft-state pointers (§3.3, pointer-store.ts),
 *  - join by acknowledged multicast + nearest-neighbour search (§4.1, join.ts),
 *  - graceful leave, beacon failure detection, repair from backups and row queries (§4.2),
 *  - re-publish of pointers whose next hop changed after a topology change (§4.2.2).
 * Peer input is never trusted: identity claims must match the authenticated sender name, routed
 * messages are hop-bounded, unexpected replies are dropped and counted.
 */
import type { Effect, Machine, RandomSource } from '../core/machine.ts';
import { checkArgument } from '../core/errors.ts';
import { tapestryConfig } from './config.ts';
import type { TapestryConfig } from './config.ts';
import { hopsMax } from './codec.ts';
import { isTapestryId, sharedPrefixLength } from './id.ts';
import type { NodeRef, TapestryId } from './id.ts';
import { Joiner, MulticastRelay, multicastFits, rowsFor } from './join.ts';
import type { JoinHost, Out } from './join.ts';
import { listCountMax } from './messages.ts';
import type { TapestryMessage, TapestryOutput, TapestryStats } from './messages.ts';
import { NeighbourWatch, type WatchHost } from './neighbour-watch.ts';
import { ObjectLocation } from './object-location.ts';
import type { Holder, LocationHost } from './object-location.ts';
import { holderProven, noSignature, type PointerAuth } from './pointer-auth.ts';
import type { PointerStore } from './pointer-store.ts';
import { RoutingTable } from './routing-table.ts';
import { RequestTracker, RowQueries } from './requests.ts';

export interface TapestryNodeOptions {
  /** Our id (tapestryIdOf(publicKey)) and the name peers use to send to us. */
  readonly self: NodeRef;
  readonly random: RandomSource;
  readonly nowMs: number;
  readonly config?: Partial<TapestryConfig>;
  /**
   * A member to join through on the first tick (hosts that build nodes from configuration, and
   * restarts: a rebuilt node joins again), or several, asked in turn until one answers. Without it
   * the node starts alone or waits for join().
   */
  readonly gateway?: string | readonly string[];
  /**
   * The id the node named `name` must have (tapestryIdOf of its public key), when the host knows
   * every member's key (the runtime: the ring descriptor). A message naming any node under another
   * id is dropped (the sender of a ping or pong included), so a member cannot pick its own id (to
   * make itself the root of chosen objects, or to surround one) nor hand out references to others
   * under chosen ids. Without it (the simulator) any id is taken.
   */
  readonly idOf?: (name: string) => TapestryId | undefined;
  /**
   * Signs this node's publish statements and checks members' (pointer-auth.ts), when the host
   * knows every member's key (the runtime). Then a pointer is stored, forwarded and answered with
   * only on its server's signature, and a locate answer without one is dropped. Without it (the
   * simulator) statements go unsigned.
   */
  readonly pointerAuth?: PointerAuth;
}

type Status = 'member' | 'joining' | 'left';

export class TapestryNode implements Machine<TapestryMessage, TapestryOutput>, JoinHost, LocationHost, WatchHost {
  readonly self: NodeRef;
  readonly config: TapestryConfig;
  readonly table: RoutingTable;
  readonly stats: TapestryStats = { messagesHandled: 0, dropped: 0, neighboursFailed: 0, pointersForwarded: 0, pointersRetracted: 0, pointersRefused: 0 };
  private status: Status = 'member';
  /** JoinHost: when we became a member (Infinity while joining). */
  memberSinceMs: number;
  private readonly random: RandomSource;
  private readonly joiner: Joiner;
  private readonly relay: MulticastRelay;
  private readonly location: ObjectLocation;
  private readonly watch: NeighbourWatch;
  private readonly requests: RequestTracker;
  /** Our unanswered neighbourQuery messages: the only `candidates` a member takes (RowQueries). */
  private readonly rowQueries = new RowQueries(1024, 8);
  private nextRepublishMs: number;
  private nextBeaconMs: number;
  private nextMaintenanceMs: number;
  /** Join through this gateway at the first tick (set by the gateway option). */
  private joinAtFirstTick: boolean;
  private readonly idOf: ((name: string) => TapestryId | undefined) | undefined;
  readonly auth: PointerAuth | undefined;

  constructor(options: TapestryNodeOptions) {
    checkArgument(isTapestryId(options.self.id), 'self.id', '40 lowercase hex digits');
    checkArgument(typeof options.self.name === 'string' && options.self.name.length > 0, 'self.name', 'a non-empty string');
    checkNow(options.nowMs);
    this.self = { id: options.self.id, name: options.self.name };
    this.config = tapestryConfig(options.config);
    this.random = options.random;
    const gateways = options.gateway === undefined ? undefined : gatewaysOf(options.gateway, options.self.name);
    this.joinAtFirstTick = gateways !== undefined;
    this.memberSinceMs = gateways === undefined ? options.nowMs : Infinity;
    checkArgument(options.idOf === undefined || typeof options.idOf === 'function', 'idOf', 'a function of a peer name');
    this.idOf = options.idOf;
    checkArgument(options.pointerAuth === undefined || (typeof options.pointerAuth.sign === 'function' && typeof options.pointerAuth.verify === 'function'), 'pointerAuth', 'sign and verify functions');
    // A statement covers the server's id and is checked under its name's key: the two must be bound.
    checkArgument(options.pointerAuth === undefined || options.idOf !== undefined, 'pointerAuth', 'given together with idOf');
    this.auth = options.pointerAuth;
    this.table = new RoutingTable(this.self, this.config.slotSize);
    this.location = new ObjectLocation(this);
    this.watch = new NeighbourWatch(this, this.location, this.random);
    this.requests = new RequestTracker(this.config.requestTimeoutMs, this.config.pendingRequestsMax, this.random);
    this.joiner = new Joiner(this);
    this.relay = new MulticastRelay(this);
    if (gateways !== undefined) {
      // Joining from the start: a join request reaching us before our first tick is passed on to
      // the gateway instead of being answered from an empty table (which would make islands).
      this.status = 'joining';
      this.joiner.setGateways(gateways);
    }
    // Spread periodic work so a whole network does not beacon in lockstep.
    const jitter = (interval: number): number => options.nowMs + (interval > 0 ? this.random.int(interval) : 0);
    this.nextRepublishMs = jitter(this.config.republishIntervalMs);
    this.nextBeaconMs = jitter(this.config.beaconIntervalMs);
    this.nextMaintenanceMs = jitter(this.config.maintenanceIntervalMs);
  }

  /** The object pointers this node stores (read-only use: inspection and tests). */
  get pointers(): PointerStore {
    return this.location.pointers;
  }

  get isMember(): boolean {
    return this.status === 'member';
  }

  get hasLeft(): boolean {
    return this.status === 'left';
  }

  // ---- host API -------------------------------------------------------------------------------

  /**
   * Joins an existing overlay through `gateway` (any member's name), or through the first of
   * several that answers (each asked in turn after a silent join step). Emits `joined` when done.
   */
  join(gateway: string | readonly string[], nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    checkNow(nowMs);
    const gateways = gatewaysOf(gateway, this.self.name);
    // Peers may already have pinged us (a cluster starting at once), so the table need not be empty.
    checkArgument(this.status === 'member', 'join', 'a node that is not joining or gone (call join once)');
    const out: Out = [];
    this.status = 'joining';
    this.memberSinceMs = Infinity;
    this.joiner.setGateways(gateways);
    this.joiner.start(out, nowMs);
    return out;
  }

  /** Routes toward the root of `targetId`; a `routeResult` with the same requestId follows. */
  route(targetId: TapestryId, nowMs: number): { requestId: number; effects: Effect<TapestryMessage, TapestryOutput>[] } {
    checkArgument(isTapestryId(targetId), 'targetId', '40 lowercase hex digits');
    this.checkCall(nowMs);
    const requestId = this.requests.open('route', targetId, nowMs);
    const out: Out = [];
    this.onRoute(out, { kind: 'route', requestId, origin: this.self, targetId, level: 0, hops: 0 });
    return { requestId, effects: this.finishStep(out, nowMs) };
  }

  /** Finds the nearest server holding `objectId`; a `locateResult` with the same requestId follows. */
  locate(objectId: TapestryId, nowMs: number): { requestId: number; effects: Effect<TapestryMessage, TapestryOutput>[] } {
    checkArgument(isTapestryId(objectId), 'objectId', '40 lowercase hex digits');
    this.checkCall(nowMs);
    const requestId = this.requests.open('locate', objectId, nowMs);
    const out: Out = [];
    this.location.onLocate(out, { kind: 'locate', requestId, origin: this.self, objectId, level: 0, hops: 0 }, nowMs);
    return { requestId, effects: this.finishStep(out, nowMs) };
  }

  /** Announces that we store `objectId`; republished every republishIntervalMs until unpublished. */
  publish(objectId: TapestryId, nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    checkArgument(isTapestryId(objectId), 'objectId', '40 lowercase hex digits');
    this.checkCall(nowMs);
    const out: Out = [];
    this.location.publishOwn(out, objectId, nowMs);
    return this.finishStep(out, nowMs);
  }

  unpublish(objectId: TapestryId, nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    checkArgument(isTapestryId(objectId), 'objectId', '40 lowercase hex digits');
    this.checkCall(nowMs);
    const out: Out = [];
    this.location.unpublishOwn(out, objectId, nowMs);
    return this.finishStep(out, nowMs);
  }

  /**
   * Graceful leave: unpublishes our objects, hands every pointer we hold to the node that becomes
   * its next hop without us, and tells neighbours and backpointers (with replacement candidates).
   * The node ignores everything afterwards.
   */
  leave(nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    checkNow(nowMs);
    const out: Out = [];
    if (this.status === 'left') return out;
    this.location.handOff(out, nowMs);
    const told = new Map<TapestryId, string>();
    for (const n of this.table.neighbours()) told.set(n.id, n.name);
    for (const b of this.table.allBackpointers()) told.set(b.id, b.name);
    for (const [id, name] of told) {
      const level = sharedPrefixLength(id, this.self.id);
      const replacements = this.table.row(level).filter((n) => n.id !== id).slice(0, 48).map(ref);
      this.send(out, name, { kind: 'leaving', sender: this.self, replacements });
    }
    this.status = 'left';
    return out;
  }

  /**
   * The host's list of nodes to measure (a test's or a tool's full membership): each one not known
   * or measured lately is pinged and placed by its round trip. Peers can no longer do this with an
   * unasked `candidates` list.
   */
  introduce(nodes: readonly NodeRef[], nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    checkArgument(Array.isArray(nodes) && nodes.every((n) => isTapestryId(n.id) && typeof n.name === 'string' && n.name.length > 0), 'nodes', 'node references');
    this.checkCall(nowMs);
    const out: Out = [];
    for (const n of nodes) this.learn(out, n, nowMs);
    return this.finishStep(out, nowMs);
  }

  /**
   * A request or publish needs a node that has not left (it ignores every message afterwards, so
   * a locate was never reported and a publish still went out) and a usable clock reading.
   */
  private checkCall(nowMs: number): void {
    checkNow(nowMs);
    checkArgument(this.status !== 'left', 'node', 'a node that has not left (leave() is final)');
  }

  /** The objects we publish. */
  publishedObjects(): TapestryId[] {
    return this.location.published();
  }

  // ---- Machine --------------------------------------------------------------------------------

  onMessage(from: string, message: TapestryMessage, nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    const out: Out = [];
    if (this.status === 'left') return out;
    this.stats.messagesHandled++;
    this.dispatch(out, from, message, nowMs);
    return this.finishStep(out, nowMs);
  }

  onTick(nowMs: number): Effect<TapestryMessage, TapestryOutput>[] {
    const out: Out = [];
    if (this.status === 'left') return out;
    if (this.joinAtFirstTick) {
      this.joinAtFirstTick = false;
      this.joiner.start(out, nowMs);
    }
    if (this.status === 'joining' && this.joiner.onTick(out, nowMs)) this.onJoined(out, nowMs);
    this.relay.onTick(out, nowMs);
    this.pointers.expire(nowMs);
    for (const event of this.requests.expire(nowMs)) out.push({ kind: 'output', event });
    this.watch.expirePings(out, nowMs);
    if (nowMs >= this.nextRepublishMs) {
      this.nextRepublishMs = nowMs + this.config.republishIntervalMs;
      this.location.republishAll(out, nowMs);
    }
    if (this.config.beaconIntervalMs > 0 && nowMs >= this.nextBeaconMs) {
      this.nextBeaconMs = nowMs + this.config.beaconIntervalMs;
      this.watch.beacon(out, nowMs);
    }
    if (this.config.maintenanceIntervalMs > 0 && nowMs >= this.nextMaintenanceMs) {
      this.nextMaintenanceMs = nowMs + this.config.maintenanceIntervalMs;
      this.watch.maintain(out);
    }
    return this.finishStep(out, nowMs);
  }

  private dispatch(out: Out, from: string, m: TapestryMessage, nowMs: number): void {
    // With members' ids known, a message naming any node under another id is dropped whole: no
    // relayed reference (a candidate, a publish's server, a route's origin) carries a chosen id.
    if (this.idOf !== undefined && !nodeRefsOf(m).every((r) => this.idOf!(r.name) === r.id)) return this.drop();
    switch (m.kind) {
      case 'ping':
        if (!this.claimOk(from, m.sender)) return;
        this.send(out, from, { kind: 'pong', sender: this.self, sentAtMs: m.sentAtMs });
        this.watch.heard(m.sender.id);
        // A beacon says the sender holds us: before, only `backpointer add` (sent once, when it
        // adopted us) made it our backpointer, so a node restarted under its old id, holding no
        // backpointers, got them back almost nowhere (36 of 598, 120 s later), and its later
        // graceful leave left it in the tables of those it did not know to tell.
        if (m.holding) this.table.addBackpointer(m.sender, nowMs);
        else this.table.heardFromBackpointer(m.sender.id, nowMs);
        this.learn(out, m.sender, nowMs, true);
        return;
      case 'pong':
        return this.onPong(out, from, m.sender, m.sentAtMs, nowMs);
      case 'backpointer':
        if (!this.claimOk(from, m.sender)) return;
        if (m.add) this.table.addBackpointer(m.sender, nowMs);
        else this.table.removeBackpointer(m.sender.id);
        return;
      case 'route':
        return this.onRoute(out, m);
      case 'routeReply':
        // Only the root answers for itself: a member naming another root (or itself, from off the
        // path) would otherwise settle the request with its word.
        if (m.root.name !== from) return this.drop();
        return this.onRouteReply(out, m.requestId, m.targetId, m.root, m.hops);
      case 'publish':
        return this.location.onPublish(out, from, m, nowMs);
      case 'locate':
        return this.location.onLocate(out, m, nowMs);
      case 'locateReply': {
        // The node that stopped the locate answers in its own name: a "not found" blamed on an
        // honest member by another is dropped (and the real answer still settles the request).
        if (m.answeredBy.name !== from) return this.drop();
        const holder = m.server && { server: m.server, proof: { issuedAtMs: m.issuedAtMs, signature: m.signature } };
        // The answerer's word that the server holds the object counts only as the server's own.
        if (m.server && !holderProven(this.auth, this.config, m.objectId, m.server, m.issuedAtMs, m.signature, nowMs)) return this.drop();
        return this.onLocateReply(out, m.requestId, m.objectId, holder, m.answeredBy, m.hops);
      }
      case 'joinRequest':
        return this.onJoinRequest(out, m.joiner, m.level, m.hops, nowMs);
      case 'candidates':
        // Only the answer to a query of ours (one per query), or around our join a join-path hop's
        // rows (Joiner.takePathRows): a list nobody asked for made a member ping every node on it.
        if (!this.rowQueries.take(from) && !this.joiner.takePathRows(from, nowMs)) return this.drop();
        if (this.status === 'joining') {
          if (this.joiner.onCandidates(out, from, m.nodes, nowMs)) this.onJoined(out, nowMs);
        } else {
          for (const n of m.nodes) this.learn(out, n, nowMs);
        }
        return;
      case 'multicast':
        if (!this.claimOk(from, m.sender)) return;
        // Only from where a parent on a real join's tree would stand: one forged multicast once
        // made every member relay, ack and ping the named joiner (O(N) messages).
        if (!multicastFits(this.self.id, m.sender.id, m.joiner.id, m.prefixLength, m.rootPrefixLength)) return this.drop();
        return this.relay.onMulticast(out, from, m.joiner, m.prefixLength, m.rootPrefixLength, nowMs);
      case 'multicastAck':
        return this.relay.onAck(out, from, m.joinerId);
      case 'joinDone':
        if (this.status !== 'joining') return this.drop();
        if (this.joiner.onJoinDone(out, m.prefixLength, nowMs)) this.onJoined(out, nowMs);
        return;
      case 'neighbourQuery': {
        const nodes: NodeRef[] = [this.self, ...this.table.row(m.level).map(ref), ...this.table.backpointersAt(m.level)];
        this.send(out, from, { kind: 'candidates', nodes: nodes.slice(0, listCountMax) });
        return;
      }
      case 'leaving':
        if (!this.claimOk(from, m.sender)) return;
        this.table.removeBackpointer(m.sender.id);
        this.watch.forget(out, m.sender, false, nowMs);
        for (const n of m.replacements) this.learn(out, n, nowMs);
        return;
      case 'lookup':
      case 'lookupReply':
        // Client traffic is the service wrapper's (service.ts); a bare node has no clients.
        return this.drop();
    }
  }

  // ---- neighbours (tapestry/neighbour-watch.ts) ------------------------------------------------

  /**
   * JoinHost and LocationHost: pings `candidate` unless it is us, a neighbour, already pinged or
   * measured recently (`alive`: it runs now, whatever an earlier failure mark says).
   */
  learn(out: Out, candidate: NodeRef, nowMs: number, alive = false): boolean {
    return this.watch.learn(out, candidate, nowMs, alive);
  }

  /** JoinHost: a neighbour held since `sinceMs` or before that answers its beacons. */
  settled(id: TapestryId, sinceMs: number): boolean {
    return this.watch.settled(id, sinceMs);
  }

  private onPong(out: Out, from: string, sender: NodeRef, sentAtMs: number, nowMs: number): void {
    if (!this.claimOk(from, sender)) return;
    if (!this.watch.onPong(out, sender, sentAtMs, nowMs)) this.drop();
  }

  /** WatchHost: a pong arrived; the join in progress may be waiting for that measurement. */
  onMeasured(out: Out, id: TapestryId, nowMs: number): void {
    if (this.status === 'joining' && this.joiner.onMeasured(out, id, nowMs)) this.onJoined(out, nowMs);
  }

  // ---- routing, publish, locate ---------------------------------------------------------------

  private onRoute(out: Out, m: Extract<TapestryMessage, { kind: 'route' }>): void {
    if (m.hops >= hopsMax) return this.drop();
    const next = this.table.nextHop(m.targetId, m.level);
    if (next) {
      this.send(out, next.hop.name, { ...m, level: next.level, hops: m.hops + 1 });
      return;
    }
    const reply = { kind: 'routeReply', requestId: m.requestId, targetId: m.targetId, root: this.self, hops: m.hops } as const;
    if (m.origin.id === this.self.id) this.onRouteReply(out, reply.requestId, reply.targetId, reply.root, reply.hops);
    else this.send(out, m.origin.name, reply);
  }

  private onRouteReply(out: Out, requestId: number, targetId: TapestryId, root: NodeRef, hops: number): void {
    const event = this.requests.settleRoute(requestId, targetId, root, hops);
    if (event) out.push({ kind: 'output', event });
    else this.drop();
  }

  /** LocationHost: 0 for ourselves, the table's or a recent measurement, else Number.MAX_VALUE. */
  rttOf(id: TapestryId): number {
    return this.watch.rttOf(id);
  }

  /** LocationHost: the locate stopped here (pointer found, or root without one). */
  answerLocate(out: Out, m: Extract<TapestryMessage, { kind: 'locate' }>, holder: Holder | null): void {
    if (m.origin.id === this.self.id) return this.onLocateReply(out, m.requestId, m.objectId, holder, this.self, m.hops);
    this.send(out, m.origin.name, {
      kind: 'locateReply', requestId: m.requestId, objectId: m.objectId, server: holder?.server ?? null,
      issuedAtMs: holder?.proof.issuedAtMs ?? 0, signature: holder?.proof.signature ?? noSignature, answeredBy: this.self, hops: m.hops,
    });
  }

  private onLocateReply(out: Out, requestId: number, objectId: TapestryId, holder: Holder | null, answeredBy: NodeRef, hops: number): void {
    const event = this.requests.settleLocate(requestId, objectId, holder, answeredBy, hops);
    if (event) out.push({ kind: 'output', event });
    else this.drop();
  }

  // ---- join -------------------------------------------------------------------------------------

  private onJoinRequest(out: Out, joiner: NodeRef, level: number, hops: number, nowMs: number): void {
    if (hops >= hopsMax || joiner.id === this.self.id) return this.drop();
    if (this.status === 'joining') {
      // Our own table is not complete yet: pass the request to the member we are joining through,
      // or simultaneous joiners could build islands that never learn of each other.
      this.send(out, this.joiner.firstGateway, { kind: 'joinRequest', joiner, level: 0, hops: hops + 1 });
      return;
    }
    this.send(out, joiner.name, { kind: 'candidates', nodes: rowsFor(this.table, joiner) });
    // The joiner's root is the root of its id among the other members, so its own entry (a member
    // named as joiner, or a restarted node still in tables) is passed over. A relayed request's
    // level and joiner are the sender's word: before starting the multicast we check from level 0
    // that we really are that root in our own view. Otherwise any member could name any other
    // (or forge level 39) and make the receiver the root at prefix 0: a multicast over the whole
    // overlay (1,107 messages in a 256-node overlay) for one message.
    const next = this.table.nextHop(joiner.id, level, false, joiner.id) ?? (level > 0 ? this.table.nextHop(joiner.id, 0, false, joiner.id) : null);
    if (next) {
      this.send(out, next.hop.name, { kind: 'joinRequest', joiner, level: next.level, hops: hops + 1 });
      return;
    }
    const prefixLength = sharedPrefixLength(joiner.id, this.self.id);
    this.relay.onMulticast(out, null, joiner, prefixLength, prefixLength, nowMs);
  }

  private onJoined(out: Out, nowMs: number): void {
    this.status = 'member';
    this.memberSinceMs = nowMs;
    out.push({ kind: 'output', event: { kind: 'joined', neighbourCount: this.table.size } });
    this.location.republishAll(out, nowMs);
  }

  // ---- plumbing ---------------------------------------------------------------------------------

  send(out: Out, to: string, message: TapestryMessage): void {
    // Every query (join search, repair, anti-entropy) goes out here, so every answer is expected.
    if (message.kind === 'neighbourQuery') this.rowQueries.sent(to);
    out.push({ kind: 'send', to, message });
  }

  /** After every step: pointers whose next hop changed are pushed along the new path. */
  private finishStep(out: Out, nowMs: number): Out {
    this.location.maintain(out, nowMs);
    return out;
  }

  /**
   * The claimed sender is the authenticated peer and not us (its id, when the host knows ids:
   * dispatch), and not a second name for an id our table holds: a node joining under a member's
   * id used to be taken for it (its pong refreshed the member's entry) and its graceful leave
   * took the member out of every table that held it.
   */
  private claimOk(from: string, claimed: NodeRef): boolean {
    const known = this.table.get(claimed.id);
    if (claimed.name === from && claimed.id !== this.self.id && (known === undefined || known.name === from)) return true;
    this.drop();
    return false;
  }

  private drop(): void {
    this.stats.dropped++;
  }
}

/**
 * The host's clock reading: a statement signed at NaN was stamped -Infinity (pointer issue times
 * never go back), and every peer's decoder refused the node's answers until its next republish.
 */
function checkNow(nowMs: number): void {
  checkArgument(Number.isFinite(nowMs) && nowMs >= 0, 'nowMs', 'a finite, non-negative number of milliseconds');
}

/** Every node reference a message carries. */
function nodeRefsOf(m: TapestryMessage): NodeRef[] {
  switch (m.kind) {
    case 'ping':
    case 'pong':
    case 'backpointer':
      return [m.sender];
    case 'route':
      return [m.origin];
    case 'routeReply':
      return [m.root];
    case 'publish':
      return [m.server];
    case 'locate':
      return [m.origin];
    case 'locateReply':
      return m.server ? [m.server, m.answeredBy] : [m.answeredBy];
    case 'joinRequest':
      return [m.joiner];
    case 'multicast':
      return [m.sender, m.joiner];
    case 'candidates':
      return m.nodes;
    case 'leaving':
      return [m.sender, ...m.replacements];
    case 'lookupReply':
      return m.server ? [m.server] : [];
    case 'multicastAck':
    case 'joinDone':
    case 'neighbourQuery':
    case 'lookup':
      return [];
  }
}

function ref(n: NodeRef): NodeRef {
  return { id: n.id, name: n.name };
}

/** One gateway name or a non-empty list of them, none of them this node's own name. */
function gatewaysOf(gateway: string | readonly string[], selfName: string): readonly string[] {
  const gateways = typeof gateway === 'string' ? [gateway] : gateway;
  checkArgument(
    Array.isArray(gateways) && gateways.length > 0 && gateways.every((g) => typeof g === 'string' && g.length > 0 && g !== selfName),
    'gateway',
    'another node name, or a non-empty list of them',
  );
  return gateways;
}
