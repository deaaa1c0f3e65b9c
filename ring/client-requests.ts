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
  /** Requests waiting for their blocks looked at per batch, at most, per request the batch may take. */
  waitingVisitsPerTake: 4,
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

export class ClientRequests {
  /** Per client key (hex), its requests in increasing nonce order; clients in the order they were last served. */
  private readonly byClient = new Map<string, HeldRequest[]>();
  private count = 0;
  private readonly byOrigin = new Map<string, { count: number; bytes: number }>();

  get size(): number {
    return this.count;
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
    if (list.length === 0) this.byClient.delete(hex);
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
   * its lowest request dropped for a higher one; a lower one is refused. With `waiting` (the
   * primary's queue: is a held request not proposable yet, its blocks missing?), a full client's
   * highest waiting request makes room for any newcomer instead: requests that wait, perhaps for
   * ever (a block never uploaded), must not keep out one the backups time, nor push one out. For
   * the same reason a held request still waiting gives way to a proposable one with its nonce (the
   * client reused the nonce: either may execute): kept, it threw away a request every backup timed,
   * and any client could make every primary in turn look faulty (session-19 third review).
   */
  add(request: ClientRequest, sinceMs: number, origin: string, waiting?: (held: ClientRequest) => boolean): AddOutcome {
    const hex = toHex(request.clientKey);
    let list = this.byClient.get(hex);
    if (!list) this.byClient.set(hex, (list = []));
    const nonce = request.nonce;
    const same = list.findIndex((h) => h.request.nonce === nonce);
    if (same >= 0) {
      if (!waiting || !waiting(list[same]!.request) || waiting(request)) return 'held';
      this.release(list[same]!);
      list[same] = this.hold({ request, origin, sinceMs, relayed: false });
      return 'replaced';
    }
    const full = list.length >= requestsPerClientMax;
    if (full) {
      let out = -1;
      if (waiting) for (let i = list.length - 1; i >= 0 && out < 0; i--) if (waiting(list[i]!.request)) out = i;
      if (out < 0) {
        if (nonce < list[0]!.request.nonce) return 'refused';
        out = 0;
      }
      this.release(list.splice(out, 1)[0]!);
    }
    let at = list.length;
    while (at > 0 && list[at - 1]!.request.nonce > nonce) at--;
    list.splice(at, 0, this.hold({ request, origin, sinceMs, relayed: false }));
    return full ? 'replaced' : 'added';
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
    if (list.length === 0) this.byClient.delete(clientHex);
    else if (nowMs > list[0]!.sinceMs) {
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
   * primary after one request timeout: the twentieth session's second review). `classify` says of
   * each request, in nonce order, whether to drop it (done, or in flight), leave it ('wait': not
   * proposable yet) or take it. At most `waitingVisitsPerTake` × `max` clients left waiting are
   * visited (they move to the back, so the next call looks further): thousands of requests waiting
   * for blocks never uploaded cost the primary a look each at every tick (the third review: 26 ms
   * per 10 ms tick at 4,096). Costs O(max + clients visited), not O(requests held).
   */
  takeOnePerClient(max: number, classify: (request: ClientRequest) => 'drop' | 'wait' | 'take'): ClientRequest[] {
    const taken: ClientRequest[] = [];
    const served: [string, HeldRequest[]][] = [];
    const originsServed = new Set<string>();
    const later: [string, HeldRequest[]][] = [];
    let waitingVisits = 0;
    const waitingVisitsMax = heldLimits.waitingVisitsPerTake * max;
    const visit = (hex: string, list: HeldRequest[]): boolean => {
      let took = false;
      waitingVisits++;
      for (let i = 0; i < list.length; i++) {
        const verdict = classify(list[i]!.request);
        if (verdict === 'wait') continue;
        if (verdict === 'take') taken.push(list[i]!.request);
        this.release(list.splice(i--, 1)[0]!);
        if (verdict === 'take') {
          took = true;
          waitingVisits--;
          break;
        }
      }
      served.push([hex, list]);
      return took;
    };
    for (const [hex, list] of this.byClient) {
      if (taken.length >= max || waitingVisits >= waitingVisitsMax) break;
      const origin = list[0]!.origin;
      if (originsServed.has(origin)) {
        later.push([hex, list]);
        continue;
      }
      if (visit(hex, list)) originsServed.add(origin);
    }
    for (const [hex, list] of later) {
      if (taken.length >= max || waitingVisits >= waitingVisitsMax) break;
      visit(hex, list);
    }
    for (const [hex, list] of served) {
      this.byClient.delete(hex);
      if (list.length > 0) this.byClient.set(hex, list);
    }
    return taken;
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
    const o = this.byOrigin.get(h.origin)!;
    o.count--;
    o.bytes -= size;
    if (o.count === 0) this.byOrigin.delete(h.origin);
  }
}
