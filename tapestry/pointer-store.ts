/**
 * Object location pointers (JSAC 2004 §3.3): (object -> server) entries left by publish messages at
 * every hop toward the object's root. Soft state: each expires unless a republish refreshes it.
 * A pointer remembers the level it continues at and the hop it was forwarded to, so that when the
 * routing table changes the node can push it along the new path (re-publish after topology change).
 */
import type { NodeRef, TapestryId } from './id.ts';

/** A server's signed statement that it holds an object, as of issuedAtMs (pointer-auth.ts). */
export interface PointerProof {
  readonly issuedAtMs: number;
  /** Empty where nodes run unsigned (the simulator). */
  readonly signature: Uint8Array;
}

export interface ObjectPointer {
  readonly objectId: TapestryId;
  readonly server: NodeRef;
  /** The newest statement seen; the pointer expires pointerTtlMs after it was issued. */
  proof: PointerProof;
  expiresAtMs: number;
  /**
   * The member that first handed us this statement: the only one whose retraction we take
   * (object-location.ts). A later copy of the same statement (anyone can replay it) never moves it.
   */
  givenBy: string;
  /** A hop reported its server failed: skipped while a live pointer is known (object-location.ts). */
  retracted: boolean;
  /** Level the publish resumed at on this node (where routing continues from here). */
  level: number;
  /** The hop we forwarded to, or null when we were the root. */
  forwardedTo: TapestryId | null;
  /** A copy left at a backup of the publish path: never forwarded. */
  sideCopy: boolean;
}

/**
 * A bounded store's entries grouped by server, oldest first, for eviction when full. Every server
 * is guaranteed a quota (pointersMax / pointerShares): a newcomer whose server holds less than
 * its quota evicts an entry of the server holding the most, if that one is over its quota; a
 * server at or over its quota is refused, never evicts. Before, a full store evened the largest
 * server out against the newcomer's, so one faulty member sending side copies of its own
 * statements cut an honest heavy server down to an equal share of the room (170 of its pointers
 * per node to 100 with a cap of 200), and the honest server's republish was refused for good.
 * Now the faulty member gets its quota plus whatever was free, and takes nothing from servers
 * beyond theirs. Finding the largest scans the servers, only when full.
 */
class ServerShares {
  private readonly byServer = new Map<TapestryId, Set<TapestryId>>();

  count(serverId: TapestryId): number {
    return this.byServer.get(serverId)?.size ?? 0;
  }

  add(serverId: TapestryId, objectId: TapestryId): void {
    let objects = this.byServer.get(serverId);
    if (!objects) this.byServer.set(serverId, (objects = new Set()));
    objects.add(objectId);
  }

  delete(serverId: TapestryId, objectId: TapestryId): void {
    const objects = this.byServer.get(serverId);
    if (!objects) return;
    objects.delete(objectId);
    if (objects.size === 0) this.byServer.delete(serverId);
  }

  /**
   * The server to evict from for one more of `serverId`'s: the largest, when `serverId` is under
   * `quota` and the largest is over it; else null (refuse, or replace one of its own).
   */
  victim(serverId: TapestryId, quota: number): TapestryId | null {
    if (this.count(serverId) >= quota) return null;
    let largest: [TapestryId, Set<TapestryId>] | null = null;
    for (const entry of this.byServer) if (!largest || entry[1].size > largest[1].size) largest = entry;
    return largest && largest[1].size > quota ? largest[0] : null;
  }

  /** The object ids of `serverId`'s entries, oldest first. */
  objectsOf(serverId: TapestryId): TapestryId[] {
    return [...(this.byServer.get(serverId) ?? [])];
  }

  /** `serverId`'s oldest entry, if it has any. */
  oldest(serverId: TapestryId): TapestryId | null {
    const objects = this.byServer.get(serverId);
    return objects ? objects.values().next().value! : null;
  }
}

/** Width of an expiry bucket: expiry is exact, only the order of checks is bucketed. */
const expiryBucketMs = 1_000;

/**
 * Items by the time they are due, in buckets of expiryBucketMs: a tick looks only at the buckets
 * that came due, not at every item (a node holding 100,000 pointers used to copy them all on
 * every 100 ms tick: 14-47 ms). An item whose expiry moved later is put back when its old bucket
 * comes due, so each is looked at about once per refresh.
 */
class ExpiryBuckets<T> {
  private readonly buckets = new Map<number, Set<T>>();
  private readonly bucketOf = new Map<T, number>();
  /** Items looked at by takeDue since the start (inspection and tests: the work done). */
  examined = 0;

  schedule(item: T, atMs: number): void {
    this.unschedule(item);
    const bucket = Math.floor(atMs / expiryBucketMs);
    let items = this.buckets.get(bucket);
    if (!items) this.buckets.set(bucket, (items = new Set()));
    items.add(item);
    this.bucketOf.set(item, bucket);
  }

  unschedule(item: T): void {
    const bucket = this.bucketOf.get(item);
    if (bucket === undefined) return;
    this.bucketOf.delete(item);
    const items = this.buckets.get(bucket)!;
    items.delete(item);
    if (items.size === 0) this.buckets.delete(bucket);
  }

  /** Unschedules and returns the items of every bucket that began at or before `nowMs`. */
  takeDue(nowMs: number): T[] {
    const nowBucket = Math.floor(nowMs / expiryBucketMs);
    const out: T[] = [];
    // The buckets span about a pointer TTL (~90), so scanning their keys is cheap.
    for (const [bucket, items] of this.buckets) {
      if (bucket > nowBucket) continue;
      for (const item of items) {
        this.bucketOf.delete(item);
        out.push(item);
      }
      this.buckets.delete(bucket);
    }
    this.examined += out.length;
    return out;
  }
}

/** Default pointerShares (config.ts): each server is guaranteed 1/16 of a full store. */
export const pointerSharesDefault = 16;

export class PointerStore {
  private readonly byObject = new Map<TapestryId, Map<TapestryId, ObjectPointer>>();
  private count = 0;
  private readonly shares = new ServerShares();
  /** The side copies among them: a server over its quota loses these first (cheapest to lose). */
  private readonly sideShares = new ServerShares();
  /** Pointers each server keeps however full the store is (ServerShares). */
  readonly serverQuota: number;
  /** New pointers refused because the store was full and their server at its quota. */
  refused = 0;
  private readonly expiries = new ExpiryBuckets<ObjectPointer>();
  /**
   * Withdrawals (object:server -> the unpublish's issue time and expiry): a publish issued before
   * its server's unpublish is refused until it would have expired anyway, so a replayed or late
   * copy cannot plant the pointer again. Bounded like the pointers, with the same fair eviction:
   * a member filling it with its own unpublishes forgets only its own, not honest withdrawals.
   */
  private readonly withdrawn = new Map<string, { issuedAtMs: number; expiresAtMs: number }>();
  private readonly withdrawnShares = new ServerShares();
  private readonly withdrawnExpiries = new ExpiryBuckets<string>();

  constructor(
    readonly pointersMax: number,
    pointerShares = pointerSharesDefault,
  ) {
    this.serverQuota = Math.max(1, Math.floor(pointersMax / pointerShares));
  }

  get size(): number {
    return this.count;
  }

  /** Pointers and withdrawals expire() has looked at since the start (inspection and tests). */
  get expiryChecks(): number {
    return this.expiries.examined + this.withdrawnExpiries.examined;
  }

  /** How many pointers naming `serverId` the store holds. */
  serverCount(serverId: TapestryId): number {
    return this.shares.count(serverId);
  }

  /**
   * Adds or refreshes (a newer statement replaces an older one); returns the pointer, or null when
   * the store is full (dropped, counted by the caller).
   */
  put(objectId: TapestryId, server: NodeRef, proof: PointerProof, expiresAtMs: number, level: number, sideCopy: boolean, givenBy: string): ObjectPointer | null {
    let servers = this.byObject.get(objectId);
    const known = servers?.get(server.id);
    if (known) {
      if (proof.issuedAtMs > known.proof.issuedAtMs) {
        known.proof = proof;
        known.expiresAtMs = Math.max(known.expiresAtMs, expiresAtMs);
        known.givenBy = givenBy;
        known.retracted = false;
      }
      // A node on the real path keeps forwarding even if it also got a side copy.
      if (!sideCopy) {
        known.level = level;
        if (known.sideCopy) this.sideShares.delete(server.id, objectId);
        known.sideCopy = false;
      }
      return known;
    }
    if (this.count >= this.pointersMax) {
      const victim = this.shares.victim(server.id, this.serverQuota);
      if (victim === null) {
        this.refused++;
        return null;
      }
      this.remove(this.sideShares.oldest(victim) ?? this.shares.oldest(victim)!, victim);
      servers = this.byObject.get(objectId);
    }
    if (!servers) this.byObject.set(objectId, (servers = new Map()));
    const pointer: ObjectPointer = { objectId, server, proof, expiresAtMs, givenBy, retracted: false, level, forwardedTo: null, sideCopy };
    servers.set(server.id, pointer);
    this.shares.add(server.id, objectId);
    if (sideCopy) this.sideShares.add(server.id, objectId);
    this.expiries.schedule(pointer, expiresAtMs);
    this.count++;
    return pointer;
  }

  /** Records the server's withdrawal of `objectId` as of `issuedAtMs`, kept until `expiresAtMs`. */
  withdraw(objectId: TapestryId, serverId: TapestryId, issuedAtMs: number, expiresAtMs: number): void {
    const key = `${objectId}:${serverId}`;
    const known = this.withdrawn.get(key);
    if (known && known.issuedAtMs >= issuedAtMs) return;
    if (known) this.forgetWithdrawal(objectId, serverId);
    if (this.withdrawn.size >= this.pointersMax) {
      // A server at its share replaces its own oldest withdrawal (the first to expire anyway):
      // refusing its newest would leave that pointer open to a replay.
      const victim = this.withdrawnShares.victim(serverId, this.serverQuota) ?? serverId;
      const objectIdOut = this.withdrawnShares.oldest(victim);
      if (objectIdOut === null) return;
      this.forgetWithdrawal(objectIdOut, victim);
    }
    this.withdrawn.set(key, { issuedAtMs, expiresAtMs });
    this.withdrawnShares.add(serverId, objectId);
    this.withdrawnExpiries.schedule(key, expiresAtMs);
  }

  private forgetWithdrawal(objectId: TapestryId, serverId: TapestryId): void {
    const key = `${objectId}:${serverId}`;
    this.withdrawn.delete(key);
    this.withdrawnShares.delete(serverId, objectId);
    this.withdrawnExpiries.unschedule(key);
  }

  /** True when the server withdrew `objectId` at or after `issuedAtMs`. */
  withdrawnSince(objectId: TapestryId, serverId: TapestryId, issuedAtMs: number): boolean {
    const w = this.withdrawn.get(`${objectId}:${serverId}`);
    return w !== undefined && w.issuedAtMs >= issuedAtMs;
  }

  get(objectId: TapestryId, serverId: TapestryId): ObjectPointer | undefined {
    return this.byObject.get(objectId)?.get(serverId);
  }

  remove(objectId: TapestryId, serverId: TapestryId): ObjectPointer | null {
    const servers = this.byObject.get(objectId);
    const known = servers?.get(serverId);
    if (!servers || !known) return null;
    servers.delete(serverId);
    if (servers.size === 0) this.byObject.delete(objectId);
    this.shares.delete(serverId, objectId);
    if (known.sideCopy) this.sideShares.delete(serverId, objectId);
    this.expiries.unschedule(known);
    this.count--;
    return known;
  }

  /** The pointers naming `serverId`, oldest first. */
  ofServer(serverId: TapestryId): ObjectPointer[] {
    return this.shares.objectsOf(serverId).map((objectId) => this.get(objectId, serverId)!);
  }

  holders(objectId: TapestryId): ObjectPointer[] {
    const servers = this.byObject.get(objectId);
    return servers ? [...servers.values()] : [];
  }

  *all(): IterableIterator<ObjectPointer> {
    for (const servers of this.byObject.values()) yield* servers.values();
  }

  /** Drops pointers (and withdrawals) whose soft state ran out; returns how many pointers. */
  expire(nowMs: number): number {
    for (const key of this.withdrawnExpiries.takeDue(nowMs)) {
      const w = this.withdrawn.get(key)!;
      if (w.expiresAtMs > nowMs) {
        this.withdrawnExpiries.schedule(key, w.expiresAtMs);
        continue;
      }
      const [objectId, serverId] = key.split(':') as [TapestryId, TapestryId];
      this.forgetWithdrawal(objectId, serverId);
    }
    let dropped = 0;
    for (const p of this.expiries.takeDue(nowMs)) {
      if (p.expiresAtMs > nowMs) {
        this.expiries.schedule(p, p.expiresAtMs);
        continue;
      }
      this.remove(p.objectId, p.server.id);
      dropped++;
    }
    return dropped;
  }

  /** Drops every pointer naming `serverId` (it failed or left). */
  removeServer(serverId: TapestryId): number {
    const pointers = this.ofServer(serverId);
    for (const p of pointers) this.remove(p.objectId, serverId);
    return pointers.length;
  }
}
