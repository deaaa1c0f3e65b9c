/**
 * The route and locate requests a node started and has not seen answered: replies are matched by
 * request id and target (anything else is dropped), and unanswered ones are reported as failures
 * after requestTimeoutMs so the host is never left waiting.
 */
import type { RandomSource } from '../core/machine.ts';
import type { NodeRef, TapestryId } from './id.ts';
import type { TapestryOutput } from './messages.ts';
import type { Holder } from './object-location.ts';
import { noSignature } from './pointer-auth.ts';

interface PendingRequest {
  readonly kind: 'route' | 'locate';
  readonly targetId: TapestryId;
  readonly deadlineMs: number;
}

export class RequestTracker {
  private readonly pending = new Map<number, PendingRequest>();

  constructor(
    private readonly timeoutMs: number,
    private readonly pendingMax: number,
    private readonly random: RandomSource,
  ) {}

  open(kind: 'route' | 'locate', targetId: TapestryId, nowMs: number): number {
    // Unguessable (53 random bits, a new one for every request): with sequential ids any member
    // could answer the next request first ("not found") without being on its path.
    let requestId = randomRequestId(this.random);
    while (this.pending.has(requestId)) requestId = randomRequestId(this.random);
    // Bounded: the oldest request is forgotten first (its answer will be dropped).
    if (this.pending.size >= this.pendingMax) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(requestId, { kind, targetId, deadlineMs: nowMs + this.timeoutMs });
    return requestId;
  }

  /** The routeResult for a matching reply, or null (unknown or mismatched: drop it). */
  settleRoute(requestId: number, targetId: TapestryId, root: NodeRef, hops: number): TapestryOutput | null {
    if (!this.take(requestId, 'route', targetId)) return null;
    return { kind: 'routeResult', requestId, targetId, root, hops };
  }

  settleLocate(requestId: number, objectId: TapestryId, holder: Holder | null, answeredBy: NodeRef, hops: number): TapestryOutput | null {
    if (!this.take(requestId, 'locate', objectId)) return null;
    const server = holder?.server ?? null;
    const issuedAtMs = holder?.proof.issuedAtMs ?? 0;
    const signature = holder?.proof.signature ?? noSignature;
    return { kind: 'locateResult', requestId, objectId, server, issuedAtMs, signature, answeredBy, hops, answered: true };
  }

  /** Failure results for every request past its deadline. */
  expire(nowMs: number): TapestryOutput[] {
    const out: TapestryOutput[] = [];
    for (const [requestId, r] of this.pending) {
      if (r.deadlineMs > nowMs) continue;
      this.pending.delete(requestId);
      out.push(
        r.kind === 'route'
          ? { kind: 'routeResult', requestId, targetId: r.targetId, root: null, hops: 0 }
          : { kind: 'locateResult', requestId, objectId: r.targetId, server: null, issuedAtMs: 0, signature: noSignature, answeredBy: null, hops: 0, answered: false },
      );
    }
    return out;
  }

  private take(requestId: number, kind: 'route' | 'locate', targetId: TapestryId): boolean {
    const r = this.pending.get(requestId);
    if (!r || r.kind !== kind || r.targetId !== targetId) return false;
    this.pending.delete(requestId);
    return true;
  }
}

/** A uniform integer in [0, 2^53): 7 random bytes, the top 3 bits of the first dropped. */
export function randomRequestId(random: RandomSource): number {
  const b = random.bytes(7);
  let id = b[0]! & 0x1f;
  for (let i = 1; i < 7; i++) id = id * 256 + b[i]!;
  return id;
}

/**
 * The neighbour queries a node sent and has not seen answered, per peer. A `candidates` list is
 * taken only as the answer to one of them, and each answer uses one up: before, any member could
 * send every node an unasked list of every member, and each pinged all it had not measured in the
 * last 60 s (77,154 deliveries in a 256-node overlay for 254 messages, repeatable every minute).
 * Bounded both ways (peers, and queries per peer), so a peer that never answers holds no memory.
 */
export class RowQueries {
  private readonly outstanding = new Map<string, number>();

  constructor(
    private readonly peersMax: number,
    private readonly perPeerMax: number,
  ) {}

  sent(to: string): void {
    const count = this.outstanding.get(to) ?? 0;
    this.outstanding.delete(to);
    // The peer asked longest ago is forgotten first (its late answer will be dropped).
    if (this.outstanding.size >= this.peersMax) this.outstanding.delete(this.outstanding.keys().next().value!);
    this.outstanding.set(to, Math.min(count + 1, this.perPeerMax));
  }

  /** True (and one query fewer outstanding) if we asked `from` and it has not answered yet. */
  take(from: string): boolean {
    const count = this.outstanding.get(from);
    if (count === undefined) return false;
    if (count > 1) this.outstanding.set(from, count - 1);
    else this.outstanding.delete(from);
    return true;
  }
}
