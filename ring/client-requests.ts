/**
 * Client requests a replica holds, indexed by client: the backups' pending requests (watched by
 * the request timer) and the primary's queue of requests waiting for a batch. At most
 * requestsPerClientMax per client, so one client flooding consecutive nonces costs the others
 * nothing: before, every replica kept all of them, the primary rescanned its whole queue for each
 * batch (one request per client per batch, so quadratic in the flood) and the backups' fairness
 * timer suspected a correct primary for the flood's tail.
 */
import { toHex } from '../core/bytes.ts';
import type { ClientRequest } from './messages.ts';
import { WaitingIndex } from './waiting-index.ts';

/**
 * Requests held per client. An honest client (ring/client.ts) has one outstanding; it moves on to
 * the next nonce only when its caller gives an update up, and replicas execute a client's nonces
 * in increasing order, so of a client's requests the newest are the ones worth keeping.
 */
export const requestsPerClientMax = 4;

/**
 * Bounds across keys per client connection, checked before a request's signature (refusing
 * changes nothing): keys are free, so requestsPerClientMax alone let one connection sign each
 * request under a fresh key and make every replica verify and hold all of them (8,000 held, and
 * the backlog's age made the backups replace a correct primary: the twentieth session's review).
 * An origin is the client connection a request came in on; the ring session bench multiplexes
 * 256 clients on one, an SDK store has one request out at a time. What a replica holds is then
 * bounded by its client connections (the transport's clientsMax) times this, plus what the other
 * members relay, which they bounded the same way. Not a bound across connections: the second
 * review showed that one (8,192 in all) let a burst that waits for blocks never uploaded fill the
 * primary's queue for good, and that a bound per relaying member let backups hold requests the
 * primary would never take; either way correct primaries were replaced.
 */
export const heldLimits = {
  perOriginMax: 1024,
  perOriginBytesMax: 16 * 2 ** 20,
  /**
   * At the primary, a member's relays of requests it holds (proposable there) carry its clients'
   * requests, which it bounded per connection already: bounded at this many times as much, so an
   * honest backup's relays are not refused (the second review: a backup then timed requests the
   * primary never took) and a faulty member's flood still is (the third review).
   */
  relayScale: 64,
  /**
   * Requests waiting for their blocks a primary keeps, from all origins together; beyond these the
   * oldest goes (nobody times a waiting request, and the client's retransmission brings it back).
   * Origins are connection names, which are free, and waiting requests outlive connections: per
   * origin alone left the total unbounded, and thousands in front of an honest request delayed it
   * past the request timeout (the fourth review).
   */
  waitingMax: 4096,
  waitingBytesMax: 256 * 2 ** 20,
};

export interface HeldRequest {
  readonly request: ClientRequest;
  /** The connection it came in on (heldLimits). */
  readonly origin: string;
  /** When this replica started waiting for it (the timers' clock). */
  sinceMs: number;
  /** A backup: relayed to the primary again since sinceMs (ring/replica-view-change.ts onTick). */
  relayed: boolean;
}

/** 'replaced': added, and the client's lowest request dropped for it. */
export type AddOutcome = 'added' | 'replaced' | 'held' | 'refused';

/**
 * What the primary makes of a queued request it looks at again: done or in flight ('drop'),
 * proposable ('ready'), or the blocks it lacks (the caller has asked for them).
 */
export type Verdict = 'drop' | 'ready' | readonly Uint8Array[];
export type Recheck = (request: ClientRequest) => Verdict;

export class ClientRequests {
  /** Per client key (hex), its requests in increasing nonce order. */
  private readonly byClient = new Map<string, HeldRequest[]>();
  /**
   * The clients holding a request not waiting for blocks, in the order they were last served
   * (takeOnePerClient): a batch looks at none of the requests that wait.
   */
  private readonly ready = new Map<string, HeldRequest[]>();
  /** The primary's queue: its requests waiting for blocks (add with `missing`), by the blocks they lack. */
  private readonly waits = new WaitingIndex<HeldRequest>();
  private count = 0;
  private rechecks = 0;
  private readonly byOrigin = new Map<string, { count: number; bytes: number }>();

  get size(): number {
    return this.count;
  }

  /** Held requests not waiting for blocks: the ones a batch may take. */
  get readySize(): number {
    return this.count - this.waits.size;
  }

  get waitingSize(): number {
    return this.waits.size;
  }

  get waitingBytes(): number {
    return this.waits.bytes;
  }

  /** BGUIDs some waiting request is indexed under (tests: a request let go leaves none behind). */
  get blocksIndexed(): number {
    return this.waits.blocksIndexed;
  }

  /**
   * Requests looked at again so far: rechecks (a batch, a block's arrival, a re-ask) and index
   * entries a block's arrival or a due re-ask touched. Tests count the primary's work with it.
   */
  get looks(): number {
    return this.rechecks + this.waits.looks;
  }

  has(request: ClientRequest): boolean {
    return this.byClient.get(toHex(request.clientKey))?.some((h) => h.request.nonce === request.nonce) ?? false;
  }

  /** Lets `request` go (the held one with its client and nonce); whether one was held. */
  remove(request: ClientRequest): boolean {
    const hex = toHex(request.clientKey);
    const list = this.byClient.get(hex);
    const at = list?.findIndex((h) => h.request.nonce === request.nonce) ?? -1;
    if (!list || at < 0) return false;
    this.release(list.splice(at, 1)[0]!);
    this.refresh(hex, list);
    return true;
  }

  /** Whether a request of `bytes` operation bytes from `origin` fits heldLimits (`scale` times them). */
  admits(origin: string, bytes: number, scale = 1): boolean {
    const o = this.byOrigin.get(origin) ?? { count: 0, bytes: 0 };
    return o.count < heldLimits.perOriginMax * scale && o.bytes + bytes <= heldLimits.perOriginBytesMax * scale;
  }

  /**
   * Would `add` refuse a request with this nonce? (Checked before its signature: a full client's
   * requests below everything held cost no verification.)
   */
  refuses(clientHex: string, nonce: number): boolean {
    const list = this.byClient.get(clientHex);
    return list !== undefined && list.length >= requestsPerClientMax && nonce < list[0]!.request.nonce;
  }

  /**
   * Holds `request` unless one with its nonce is held ('held'). A client already at the limit has
   * its lowest request dropped for a higher one; a lower one is refused. With `missing` (the
   * primary's queue: the blocks the request lacks, none if it is proposable), a request that lacks
   * blocks waits for them (blockArrived, reaskDue), and a full client's highest waiting request
   * makes room for any newcomer instead: requests that wait, perhaps for ever (a block never
   * uploaded), must not keep out one the backups time, nor push one out. For the same reason a
   * held request still waiting gives way to a proposable one with its nonce (the client reused the
   * nonce: either may execute): kept, it threw away a request every backup timed, and any client
   * could make every primary in turn look faulty (session-19 third review). A waiting request
   * arriving again is no longer the oldest (shedWaiting).
   */
  add(request: ClientRequest, sinceMs: number, origin: string, missing?: readonly Uint8Array[]): AddOutcome {
    const hex = toHex(request.clientKey);
    let list = this.byClient.get(hex);
    if (!list) this.byClient.set(hex, (list = []));
    const nonce = request.nonce;
    const lacks = missing !== undefined && missing.length > 0;
    const same = list.findIndex((h) => h.request.nonce === nonce);
    if (same >= 0) {
      const held = list[same]!;
      if (missing === undefined || !this.waits.has(held) || lacks) {
        if (lacks) this.waits.touch(held);
        return 'held';
      }
      this.release(held);
      list[same] = this.hold({ request, origin, sinceMs, relayed: false });
      this.refresh(hex, list);
      return 'replaced';
    }
    const full = list.length >= requestsPerClientMax;
    if (full) {
      let out = -1;
      if (missing !== undefined) for (let i = list.length - 1; i >= 0 && out < 0; i--) if (this.waits.has(list[i]!)) out = i;
      if (out < 0) {
        if (nonce < list[0]!.request.nonce) return 'refused';
        out = 0;
      }
      this.release(list.splice(out, 1)[0]!);
    }
    let at = list.length;
    while (at > 0 && list[at - 1]!.request.nonce > nonce) at--;
    const held = this.hold({ request, origin, sinceMs, relayed: false });
    list.splice(at, 0, held);
    if (lacks) this.waits.add(held, request.operation.length, missing, sinceMs);
    this.refresh(hex, list);
    return full ? 'replaced' : 'added';
  }

  /**
   * Lets the oldest requests waiting for blocks (by last arrival) go beyond heldLimits.waitingMax /
   * waitingBytesMax; how many went.
   */
  shedWaiting(): number {
    let shed = 0;
    while (this.waits.size > heldLimits.waitingMax || this.waits.bytes > heldLimits.waitingBytesMax) {
      this.remove(this.waits.oldest()!.request);
      shed++;
    }
    return shed;
  }

  /**
   * Block `bguidHex` is here: each waiting request it was the last known missing block of is
   * looked at again (`recheck`); how many became proposable. Costs the number of requests waiting
   * for it: nothing for a block nobody waits for or one already here.
   */
  blockArrived(bguidHex: string, nowMs: number, recheck: Recheck): number {
    let woke = 0;
    for (const held of this.waits.arrived(bguidHex)) if (this.lookAgain(held, nowMs, recheck, false)) woke++;
    return woke;
  }

  /**
   * Looks again at the waiting requests whose re-ask is due (WaitingIndex.due: 1, 2, 4, ...
   * status periods of `periodMs` apart, capped); `recheck` asks for what they still lack. How many
   * became proposable (a block that came by another way than an upload or a fetch).
   */
  reaskDue(nowMs: number, periodMs: number, recheck: Recheck): number {
    let woke = 0;
    for (const held of this.waits.due(nowMs, periodMs)) if (this.lookAgain(held, nowMs, recheck, true)) woke++;
    return woke;
  }

  /**
   * Drops the client's requests up to `nonce` (executed, or passed by a higher nonce); the number
   * dropped. The client's next request starts waiting now: timers run on a client's lowest
   * request only, since a client's requests execute one after another.
   */
  settle(clientHex: string, nonce: number, nowMs: number): number {
    const list = this.byClient.get(clientHex);
    if (!list) return 0;
    let n = 0;
    while (n < list.length && list[n]!.request.nonce <= nonce) n++;
    if (n === 0) return 0;
    for (const h of list.splice(0, n)) this.release(h);
    this.refresh(clientHex, list);
    if (list.length > 0 && nowMs > list[0]!.sinceMs) {
      list[0]!.sinceMs = nowMs;
      list[0]!.relayed = false;
    }
    return n;
  }

  /** Each client's lowest held request, with the client's key (hex). */
  *lowest(): IterableIterator<[string, HeldRequest]> {
    for (const [hex, list] of this.byClient) yield [hex, list[0]!];
  }

  *all(): IterableIterator<HeldRequest> {
    for (const list of this.byClient.values()) yield* list;
  }

  clear(): void {
    this.byClient.clear();
    this.ready.clear();
    this.waits.clear();
    this.byOrigin.clear();
    this.count = 0;
  }

  /**
   * Takes at most one request per client, at most `max` in all, visiting clients from the one
   * served longest ago; a client served moves to the back. First one client per origin (the
   * connection its lowest request came in on), then the rest: a sybil's thousands of keys on a
   * few connections take a few places in each batch, not all of them, so a request from any other
   * connection is proposed in the next batch rather than after the whole flood (the backups do
   * not hold a flood sent to the primary alone, see none of it as progress, and replaced a correct
   * primary after one request timeout: the twentieth session's second review). `recheck` says of
   * each request not waiting for blocks, in nonce order, whether to drop it (done, or in flight),
   * take it, or leave it to wait for the blocks it lacks after all (a stored block found corrupt
   * and discarded). Requests waiting for blocks are not looked at, nor are clients holding only
   * such ones: a block's arrival or a re-ask brings them back (blockArrived, reaskDue). Before,
   * thousands waiting for blocks never uploaded cost a look each at every tick (the third review:
   * 26 ms per 10 ms tick at 4,096; then 4 × `max` a call). Costs O(max + clients visited), where
   * each client visited gives a request or loses its place (all it had dropped or waiting).
   */
  takeOnePerClient(max: number, nowMs: number, recheck: Recheck): ClientRequest[] {
    const taken: ClientRequest[] = [];
    const served: [string, HeldRequest[]][] = [];
    const originsServed = new Set<string>();
    const later: [string, HeldRequest[]][] = [];
    const visit = (hex: string, list: HeldRequest[]): boolean => {
      let took = false;
      for (let i = 0; i < list.length && !took; i++) {
        const held = list[i]!;
        if (this.waits.has(held)) continue;
        this.rechecks++;
        const verdict = recheck(held.request);
        if (verdict !== 'drop' && verdict !== 'ready' && verdict.length > 0) {
          this.waits.add(held, held.request.operation.length, verdict, nowMs);
          continue;
        }
        if (verdict !== 'drop') {
          taken.push(held.request);
          took = true;
        }
        this.release(list.splice(i--, 1)[0]!);
      }
      served.push([hex, list]);
      return took;
    };
    for (const [hex, list] of this.ready) {
      if (taken.length >= max) break;
      const origin = list[0]!.origin;
      if (originsServed.has(origin)) {
        later.push([hex, list]);
        continue;
      }
      if (visit(hex, list)) originsServed.add(origin);
    }
    for (const [hex, list] of later) {
      if (taken.length >= max) break;
      visit(hex, list);
    }
    for (const [hex, list] of served) {
      this.ready.delete(hex);
      this.refresh(hex, list);
    }
    return taken;
  }

  /** A waiting request looked at again (its blocks came, or its re-ask is due): whether it is proposable now. */
  private lookAgain(held: HeldRequest, nowMs: number, recheck: Recheck, backOff: boolean): boolean {
    this.rechecks++;
    const verdict = recheck(held.request);
    if (verdict === 'drop') {
      this.remove(held.request);
      return false;
    }
    if (verdict !== 'ready' && verdict.length > 0) {
      this.waits.rewait(held, verdict, nowMs, backOff);
      return false;
    }
    this.waits.delete(held);
    const hex = toHex(held.request.clientKey);
    this.refresh(hex, this.byClient.get(hex)!);
    return true;
  }

  /** After a client's list changed: forgotten once empty; among the ready clients (at the back, if new there) iff it holds a request not waiting. */
  private refresh(hex: string, list: HeldRequest[]): void {
    if (list.length === 0) {
      this.byClient.delete(hex);
      this.ready.delete(hex);
    } else if (list.some((h) => !this.waits.has(h))) {
      if (!this.ready.has(hex)) this.ready.set(hex, list);
    } else this.ready.delete(hex);
  }

  private hold(h: HeldRequest): HeldRequest {
    const size = h.request.operation.length;
    this.count++;
    const o = this.byOrigin.get(h.origin);
    if (o) {
      o.count++;
      o.bytes += size;
    } else this.byOrigin.set(h.origin, { count: 1, bytes: size });
    return h;
  }

  private release(h: HeldRequest): void {
    const size = h.request.operation.length;
    this.count--;
    this.waits.delete(h);
    const o = this.byOrigin.get(h.origin)!;
    o.count--;
    o.bytes -= size;
    if (o.count === 0) this.byOrigin.delete(h.origin);
  }
}
