/**
 * Decentralized object location (JSAC 2004 §3.3): publish leaves (object -> server) pointers at
 * every hop toward the object's root (and side copies at each hop's backups and at each hop's
 * nearest neighbours sharing the resolved prefix, which keeps locates short); locate walks the
 * same way and stops at the first pointer; soft state expires unless republished. Pointer age
 * travels with every copy (ageMs), so handing a pointer on after a topology change never makes a
 * failed server's pointer look fresh again.
 */
import type { TapestryConfig } from './config.ts';
import { hopsMax } from './codec.ts';
import type { NodeRef, TapestryId } from './id.ts';
import type { Out } from './join.ts';
import type { TapestryMessage, TapestryStats } from './messages.ts';
import { PointerStore } from './pointer-store.ts';
import type { ObjectPointer } from './pointer-store.ts';
import type { NextHop, RoutingTable } from './routing-table.ts';

type Publish = Extract<TapestryMessage, { kind: 'publish' }>;
type Locate = Extract<TapestryMessage, { kind: 'locate' }>;

export interface LocationHost {
  readonly self: NodeRef;
  readonly table: RoutingTable;
  readonly config: TapestryConfig;
  readonly stats: TapestryStats;
  send(out: Out, to: string, message: TapestryMessage): void;
  learn(out: Out, ref: NodeRef, nowMs: number): boolean;
  /** Measured round trip to `id`, Number.MAX_VALUE when unknown. */
  rttOf(id: TapestryId): number;
  /** Sends the locate answer to its origin (or reports it, when the origin is us). */
  answerLocate(out: Out, m: Locate, server: NodeRef | null): void;
}

export class ObjectLocation {
  readonly pointers: PointerStore;
  private readonly ownObjects = new Set<TapestryId>();
  private checkedVersion = 0;

  constructor(private readonly host: LocationHost) {
    this.pointers = new PointerStore(host.config.pointersMax);
  }

  published(): TapestryId[] {
    return [...this.ownObjects];
  }

  publishOwn(out: Out, objectId: TapestryId, nowMs: number): void {
    this.ownObjects.add(objectId);
    this.onPublish(out, this.message(objectId, this.host.self, 0, 0, false), nowMs);
  }

  unpublishOwn(out: Out, objectId: TapestryId, nowMs: number): void {
    this.ownObjects.delete(objectId);
    this.onPublish(out, this.message(objectId, this.host.self, 0, 0, true), nowMs);
  }

  republishAll(out: Out, nowMs: number): void {
    for (const objectId of this.ownObjects) this.onPublish(out, this.message(objectId, this.host.self, 0, 0, false), nowMs);
  }

  onPublish(out: Out, m: Publish, nowMs: number): void {
    const { host } = this;
    if (m.hops >= hopsMax || m.ageMs >= host.config.pointerTtlMs) return void host.stats.dropped++;
    const next = m.sideCopy ? null : host.table.nextHop(m.objectId, m.level);
    if (m.unpublish) {
      const known = this.pointers.get(m.objectId, m.server.id);
      // A retraction carries the age of the pointer it retracts. One refreshed well after that
      // (copies along a path differ only by transit time) was republished by the server since:
      // it is back, so neither this pointer nor the ones beyond it are retracted.
      if (known && !known.sideCopy && m.ageMs > 0 && this.ageOf(known, nowMs) + host.config.beaconIntervalMs < m.ageMs) return;
      // A side copy's unpublish must not delete the pointer of a node that is also on the path.
      if (!m.sideCopy || known?.sideCopy) this.pointers.remove(m.objectId, m.server.id);
    } else {
      const expiresAtMs = nowMs + host.config.pointerTtlMs - m.ageMs;
      const pointer = this.pointers.put(m.objectId, m.server, m.level, expiresAtMs, m.sideCopy);
      if (!pointer) return void host.stats.dropped++;
      // Measure the server once, so a locate choosing among several holders picks the nearest.
      host.learn(out, m.server, nowMs);
      if (!pointer.sideCopy) pointer.forwardedTo = next ? next.hop.id : null;
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
    let server = this.nearestHolder(m.objectId, nowMs, true);
    const next = server ? null : this.host.table.nextHop(m.objectId, m.level);
    if (next) {
      this.host.send(out, next.hop.name, { ...m, level: next.level, hops: m.hops + 1 });
      return;
    }
    // At the root, a pointer its server stopped refreshing is still better than nothing.
    server ??= this.nearestHolder(m.objectId, nowMs, false);
    this.host.answerLocate(out, m, server);
  }

  /**
   * Among live pointers, the server we measure as closest (ourselves first); unknown ones last.
   * `freshOnly` skips pointers not refreshed for 1.25 republish intervals: their server has
   * probably failed, and a fresher pointer is likely further along the path.
   */
  private nearestHolder(objectId: TapestryId, nowMs: number, freshOnly: boolean): NodeRef | null {
    if (this.ownObjects.has(objectId)) return this.host.self;
    let best: NodeRef | null = null;
    let bestRttMs = Infinity;
    const freshAfterMs = nowMs + this.host.config.pointerTtlMs - 1.25 * this.host.config.republishIntervalMs;
    for (const p of this.pointers.holders(objectId)) {
      if (p.expiresAtMs <= nowMs || (freshOnly && p.expiresAtMs < freshAfterMs)) continue;
      const rtt = this.host.rttOf(p.server.id);
      if (best === null || rtt < bestRttMs || (rtt === bestRttMs && p.server.id < best.id)) {
        best = p.server;
        bestRttMs = rtt;
      }
    }
    return best;
  }

  /** After a table change: pointers whose next hop changed are pushed along the new path (§4.2.2). */
  maintain(out: Out, nowMs: number): void {
    const { table } = this.host;
    if (table.version === this.checkedVersion) return;
    this.checkedVersion = table.version;
    for (const p of this.pointers.all()) {
      if (p.expiresAtMs <= nowMs || p.sideCopy) continue;
      const next = table.nextHop(p.objectId, p.level);
      const nextId = next ? next.hop.id : null;
      if (nextId === p.forwardedTo) continue;
      p.forwardedTo = nextId;
      if (!next) continue;
      this.host.stats.pointersForwarded++;
      this.host.send(out, next.hop.name, this.message(p.objectId, p.server, next.level, this.ageOf(p, nowMs), false));
    }
  }

  /**
   * A server failed: drop its pointers here and retract them along the path toward the root, so
   * locates stop being sent to it long before the soft state would expire. A pointer refreshed
   * after `silentSinceMs` is kept: the server published since, so it was restarted (or was only
   * cut off from us).
   */
  retractServer(out: Out, server: NodeRef, nowMs: number, silentSinceMs: number): void {
    for (const p of [...this.pointers.all()]) {
      if (p.server.id !== server.id || this.ageOf(p, nowMs) < nowMs - silentSinceMs) continue;
      this.pointers.remove(p.objectId, server.id);
      this.host.stats.pointersRetracted++;
      if (p.sideCopy) continue;
      // Not older than zero: ageMs 0 is an owner's unpublish, which removes any pointer.
      const retraction = this.message(p.objectId, p.server, p.level, Math.max(1, this.ageOf(p, nowMs)), true);
      this.forward(out, retraction, this.host.table.nextHop(p.objectId, p.level));
    }
  }

  /** Graceful leave: unpublish our objects, hand every pointer to its next hop without us. */
  handOff(out: Out, nowMs: number): void {
    for (const objectId of [...this.ownObjects]) this.unpublishOwn(out, objectId, nowMs);
    for (const p of this.pointers.all()) {
      if (p.sideCopy || p.expiresAtMs <= nowMs) continue;
      const next = this.host.table.nextHop(p.objectId, 0, true);
      if (next) this.host.send(out, next.hop.name, this.message(p.objectId, p.server, next.level, this.ageOf(p, nowMs), false));
    }
  }

  private ageOf(p: ObjectPointer, nowMs: number): number {
    return Math.max(0, Math.round(this.host.config.pointerTtlMs - (p.expiresAtMs - nowMs)));
  }

  private message(objectId: TapestryId, server: NodeRef, level: number, ageMs: number, unpublish: boolean): Publish {
    return { kind: 'publish', objectId, server, level, hops: 0, ageMs, unpublish, sideCopy: false };
  }
}
