/**
 * Decentralized object location (JSAC 2004 §3.3): publish leaves (object -> server) pointers at
 * every hop toward the object's root (and side copies at each hop's backups and at each hop's
 * nearest neighbours sharing the resolved prefix, which keeps locates short); locate walks the
 * same way and stops at the first pointer; soft state expires unless republished. Every copy
 * carries the server's statement (pointer-auth.ts): when it was issued, so handing a pointer on
 * after a topology change never makes a failed server's pointer look fresh again, and, where
 * members sign, the server's signature, checked at every hop and by whoever gets a locate answer.
 */
import type { TapestryConfig } from './config.ts';
import { hopsMax } from './codec.ts';
import type { NodeRef, TapestryId } from './id.ts';
import type { Out } from './join.ts';
import type { PublishOp, TapestryMessage, TapestryStats } from './messages.ts';
import { noSignature, pointerStatement, statementCurrent, type PointerAuth } from './pointer-auth.ts';
import { PointerStore } from './pointer-store.ts';
import type { ObjectPointer, PointerProof } from './pointer-store.ts';
import type { NextHop, RoutingTable } from './routing-table.ts';

type Publish = Extract<TapestryMessage, { kind: 'publish' }>;
type Locate = Extract<TapestryMessage, { kind: 'locate' }>;

/** A holder a locate found: the server and its statement that it holds the object. */
export interface Holder {
  readonly server: NodeRef;
  readonly proof: PointerProof;
}

export interface LocationHost {
  readonly self: NodeRef;
  readonly table: RoutingTable;
  readonly config: TapestryConfig;
  readonly stats: TapestryStats;
  /** Signs our statements and checks others'; undefined where nodes run unsigned (the simulator). */
  readonly auth: PointerAuth | undefined;
  send(out: Out, to: string, message: TapestryMessage): void;
  learn(out: Out, ref: NodeRef, nowMs: number): boolean;
  /** Measured round trip to `id`, Number.MAX_VALUE when unknown. */
  rttOf(id: TapestryId): number;
  /** Sends the locate answer to its origin (or reports it, when the origin is us). */
  answerLocate(out: Out, m: Locate, holder: Holder | null): void;
}

/** Pointers maintain() re-checks per step at most (a step stays well under a millisecond). */
export const maintainBudget = 2_048;

export class ObjectLocation {
  readonly pointers: PointerStore;
  /** The objects we publish, each with our latest statement (a locate that reaches us answers with it). */
  private readonly ownObjects = new Map<TapestryId, PointerProof>();
  private checkedVersion = 0;
  /** The re-check of pointers after a table change, in progress (resumed at the next step). */
  private maintainPass: Iterator<ObjectPointer> | null = null;
  /** The table changed again during the pass: another full pass follows it. */
  private maintainAgain = false;
  /** Our statements' issue times strictly increase, so a publish right after an unpublish is later. */
  private lastIssuedMs = -Infinity;

  constructor(private readonly host: LocationHost) {
    this.pointers = new PointerStore(host.config.pointersMax, host.config.pointerShares);
  }

  published(): TapestryId[] {
    return [...this.ownObjects.keys()];
  }

  publishOwn(out: Out, objectId: TapestryId, nowMs: number): void {
    this.sendOwn(out, objectId, 'publish', nowMs);
  }

  unpublishOwn(out: Out, objectId: TapestryId, nowMs: number): void {
    this.sendOwn(out, objectId, 'unpublish', nowMs);
  }

  republishAll(out: Out, nowMs: number): void {
    for (const objectId of [...this.ownObjects.keys()]) this.sendOwn(out, objectId, 'publish', nowMs);
  }

  /** Signs a fresh statement about one of our objects and sends it along the path from here. */
  private sendOwn(out: Out, objectId: TapestryId, op: 'publish' | 'unpublish', nowMs: number): void {
    const { self, auth } = this.host;
    const issuedAtMs = nowMs > this.lastIssuedMs ? nowMs : this.lastIssuedMs + 0.001;
    this.lastIssuedMs = issuedAtMs;
    const signature = auth ? auth.sign(pointerStatement(objectId, self.id, issuedAtMs, op === 'unpublish')) : noSignature;
    if (op === 'publish') this.ownObjects.set(objectId, { issuedAtMs, signature });
    else this.ownObjects.delete(objectId);
    this.onPublish(out, self.name, this.message(objectId, self, 0, op, { issuedAtMs, signature }), nowMs);
  }

  /** True when `m` carries a statement its server signed (always, where nodes run unsigned). */
  private signed(m: Publish): boolean {
    const { auth } = this.host;
    return !auth || auth.verify(m.server.name, pointerStatement(m.objectId, m.server.id, m.issuedAtMs, m.op === 'unpublish'), m.signature);
  }

  onPublish(out: Out, from: string, m: Publish, nowMs: number): void {
    const { host } = this;
    const { pointerTtlMs } = host.config;
    if (m.hops >= hopsMax || !statementCurrent(host.config, m.issuedAtMs, nowMs)) return void host.stats.dropped++;
    if (from !== host.self.name && !this.signed(m)) return void host.stats.dropped++;
    const next = m.sideCopy ? null : host.table.nextHop(m.objectId, m.level);
    if (m.op === 'publish') {
      // Issued before its server withdrew it: a late or replayed copy must not plant it again.
      if (this.pointers.withdrawnSince(m.objectId, m.server.id, m.issuedAtMs)) return void host.stats.dropped++;
      const proof = { issuedAtMs: m.issuedAtMs, signature: m.signature };
      const pointer = this.pointers.put(m.objectId, m.server, proof, m.issuedAtMs + pointerTtlMs, m.level, m.sideCopy, from);
      if (pointer) {
        // Measure the server once, so a locate choosing among several holders picks the nearest.
        host.learn(out, m.server, nowMs);
        if (!pointer.sideCopy) pointer.forwardedTo = next ? next.hop.id : null;
      } else {
        // Full here, and the server at its quota: the publish still goes on toward the root, so
        // the object stays locatable (a path hop without the pointer only makes locates go on).
        host.stats.pointersRefused++;
        if (m.sideCopy) return;
      }
    } else {
      const known = this.pointers.get(m.objectId, m.server.id);
      // A pointer issued after what is withdrawn was republished since: the server is back, so
      // neither this pointer nor the ones beyond it are touched.
      if (known && known.proof.issuedAtMs > m.issuedAtMs) return;
      if (m.op === 'retract') {
        // A retraction is another member's word, not the server's: it only demotes the pointer (a
        // locate passes it by while a live holder is known, and the root still answers with it
        // if there is none), taken only from the hop that first handed us this statement and
        // only for a pointer we hold, so it never reaches a hop that did not get the pointer
        // from its sender. A member could as well have withheld the pointer.
        if (!known) return;
        if (known.givenBy !== from) return void host.stats.dropped++;
        if (!m.sideCopy || known.sideCopy) known.retracted = true;
      } else {
        this.pointers.withdraw(m.objectId, m.server.id, m.issuedAtMs, m.issuedAtMs + pointerTtlMs);
        // A side copy's withdrawal must not delete the pointer of a node that is also on the path.
        if (!m.sideCopy || known?.sideCopy) this.pointers.remove(m.objectId, m.server.id);
      }
    }
    if (!m.sideCopy) this.forward(out, m, next);
  }

  /**
   * Passes a publish (or a retraction) on from this node, `m` being the message as it stands here:
   * to the next hop, with side copies at that hop's backups (publishToBackups) and at our own
   * closest neighbours sharing the prefix resolved so far (publishing to nearest neighbours, §3.3).
   * Every locate that reaches this prefix level does so at a node sharing that prefix, so a copy
   * at the nodes nearest to the publish path stops a nearby client's locate a hop or two earlier.
   * Retractions take the same fan-out, so they reach every side copy the publish left.
   */
  private forward(out: Out, m: Publish, next: NextHop | null): void {
    const { host } = this;
    const onward = { ...m, hops: m.hops + 1 };
    let nearestLeft = host.config.publishToNearestCount;
    if (nearestLeft > 0) {
      for (const n of host.table.closest(m.level, nearestLeft + host.config.slotSize + 1)) {
        // The next hop and (with publishToBackups) its slot get the pointer anyway.
        if (next && (n === next.hop || (host.config.publishToBackups && next.slot.includes(n)))) continue;
        if (n.id === m.server.id) continue;
        host.send(out, n.name, { ...onward, sideCopy: true });
        if (--nearestLeft === 0) break;
      }
    }
    if (!next) return;
    host.send(out, next.hop.name, { ...onward, level: next.level });
    if (!host.config.publishToBackups) return;
    for (const backup of next.slot) {
      if (backup !== next.hop) host.send(out, backup.name, { ...onward, level: next.level, sideCopy: true });
    }
  }

  onLocate(out: Out, m: Locate, nowMs: number): void {
    if (m.hops >= hopsMax) return void this.host.stats.dropped++;
    let holder = this.nearestHolder(m.objectId, nowMs, true);
    const next = holder ? null : this.host.table.nextHop(m.objectId, m.level);
    if (next) {
      this.host.send(out, next.hop.name, { ...m, level: next.level, hops: m.hops + 1 });
      return;
    }
    // At the root, a pointer its server stopped refreshing is still better than nothing.
    holder ??= this.nearestHolder(m.objectId, nowMs, false);
    this.host.answerLocate(out, m, holder);
  }

  /**
   * Among live pointers, the server we measure as closest (ourselves first); unknown ones last.
   * `freshOnly` skips pointers not refreshed for 1.25 republish intervals (by their server's
   * clock: one running late only makes locates go further) and retracted ones: their server has
   * probably failed, and a fresher pointer is likely further along the path. Without it (at the
   * root) a pointer nobody retracted comes before a retracted one.
   */
  private nearestHolder(objectId: TapestryId, nowMs: number, freshOnly: boolean): Holder | null {
    const own = this.ownObjects.get(objectId);
    if (own) return { server: this.host.self, proof: own };
    let best: ObjectPointer | null = null;
    let bestRttMs = Infinity;
    const freshSinceMs = nowMs - 1.25 * this.host.config.republishIntervalMs;
    for (const p of this.pointers.holders(objectId)) {
      if (p.expiresAtMs <= nowMs || (freshOnly && (p.retracted || p.proof.issuedAtMs < freshSinceMs))) continue;
      const rtt = this.host.rttOf(p.server.id);
      const better = best === null || Number(p.retracted) < Number(best.retracted) ||
        (p.retracted === best.retracted && (rtt < bestRttMs || (rtt === bestRttMs && p.server.id < best.server.id)));
      if (better) {
        best = p;
        bestRttMs = rtt;
      }
    }
    return best && { server: best.server, proof: best.proof };
  }

  /**
   * After a table change: pointers whose next hop changed are pushed along the new path (§4.2.2).
   * At most maintainBudget pointers per step, resumed at the next: one step used to re-check every
   * pointer (~22 ms for each new neighbour of a node holding 100,000). A change during a pass lets
   * it finish and runs one more, so every pointer is checked after the last change.
   */
  maintain(out: Out, nowMs: number): void {
    const { table } = this.host;
    if (table.version !== this.checkedVersion) {
      this.checkedVersion = table.version;
      if (this.maintainPass === null) this.maintainPass = this.pointers.all();
      else this.maintainAgain = true;
    }
    for (let checked = 0; this.maintainPass !== null && checked < maintainBudget; checked++) {
      const next = this.maintainPass.next();
      if (next.done) {
        this.maintainPass = this.maintainAgain ? this.pointers.all() : null;
        this.maintainAgain = false;
        continue;
      }
      this.recheck(out, next.value, nowMs);
    }
  }

  private recheck(out: Out, p: ObjectPointer, nowMs: number): void {
    if (p.expiresAtMs <= nowMs || p.sideCopy) return;
    const next = this.host.table.nextHop(p.objectId, p.level);
    const nextId = next ? next.hop.id : null;
    if (nextId === p.forwardedTo) return;
    p.forwardedTo = nextId;
    if (!next) return;
    this.host.stats.pointersForwarded++;
    this.host.send(out, next.hop.name, this.message(p.objectId, p.server, next.level, 'publish', p.proof));
  }

  /**
   * A server failed: drop its pointers here and retract them along the path toward the root, so
   * locates stop being sent to it long before the soft state would expire. A pointer issued after
   * `silentSinceMs` is kept: the server published since, so it was restarted (or was only cut off
   * from us). (T is the server's clock: one running late when it restarts may have its first
   * new pointers retracted, which only demotes them until its next republish.)
   */
  retractServer(out: Out, server: NodeRef, nowMs: number, silentSinceMs: number): void {
    for (const p of this.pointers.ofServer(server.id)) {
      if (p.proof.issuedAtMs > silentSinceMs) continue;
      this.pointers.remove(p.objectId, server.id);
      this.host.stats.pointersRetracted++;
      if (p.sideCopy) continue;
      this.forward(out, this.message(p.objectId, p.server, p.level, 'retract', p.proof), this.host.table.nextHop(p.objectId, p.level));
    }
  }

  /** Graceful leave: unpublish our objects, hand every pointer to its next hop without us. */
  handOff(out: Out, nowMs: number): void {
    for (const objectId of [...this.ownObjects.keys()]) this.unpublishOwn(out, objectId, nowMs);
    for (const p of this.pointers.all()) {
      if (p.sideCopy || p.expiresAtMs <= nowMs) continue;
      const next = this.host.table.nextHop(p.objectId, 0, true);
      if (next) this.host.send(out, next.hop.name, this.message(p.objectId, p.server, next.level, 'publish', p.proof));
    }
  }

  private message(objectId: TapestryId, server: NodeRef, level: number, op: PublishOp, proof: PointerProof): Publish {
    return { kind: 'publish', objectId, server, level, hops: 0, op, issuedAtMs: proof.issuedAtMs, signature: proof.signature, sideCopy: false };
  }
}
