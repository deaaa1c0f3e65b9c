/**
 * The route and locate requests a node started and has not seen answered: replies are matched by
 * request id and target (anything else is dropped), and unanswered ones are reported as failures
 * after requestTimeoutMs so the host is never left waiting.
 */
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
  private requestIdNext = 1;

  constructor(
    private readonly timeoutMs: number,
    private readonly pendingMax: number,
  ) {}

  open(kind: 'route' | 'locate', targetId: TapestryId, nowMs: number): number {
    const requestId = this.requestIdNext++;
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
