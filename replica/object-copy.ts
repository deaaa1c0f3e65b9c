/**
 * A secondary replica's verified copy of one object: the head, the certified log and the pinned
 * blocks. `offer` is the only way in, and it is where a pushed certified update is checked
 * (Pond, FAST 2003: a secondary checks each pushed update against the ring's certificate by re-executing it):
 *   1. the certificate verifies under the ring key and certifies a commit of this object;
 *   2. the update's digest is the one the certificate names;
 *   3. re-executing the update on our head, at the ring's timestamp, gives exactly the
 *      certified (aguid, version, VGUID).
 * Anything else is a lie by whoever sent it. Versions arriving early wait (bounded) for their
 * predecessors, so reordering costs time, never a gap.
 */
import { bytesEqual, ownedBytes, toHex } from '../core/bytes.ts';
import type { BlockCache } from './block-cache.ts';
import { ownedEntry, type LogEntry } from './messages.ts';
import { ObjectLog, boundedEntries, entryBytesOf, type GapSource, type Snapshot } from './object-log.ts';
import type { BlockRef, CommitStatement, HeartbeatStatement, Head, ReplicaExecutor, ReplicaTrust } from './types.ts';

export type OfferResult =
  | { readonly kind: 'accepted'; readonly entries: LogEntry[] }
  /** The next version's update names data blocks we lack: fetch them from `from` (entries accepted before it, if any, go down now). */
  | { readonly kind: 'awaiting-blocks'; readonly entries: LogEntry[]; readonly from: string }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'future' }
  | { readonly kind: 'bad'; readonly reason: string; readonly from: string };

interface Pending {
  readonly entry: LogEntry;
  readonly statement: CommitStatement;
  readonly from: string;
  /** The entry's blocks with their BGUIDs, when already hashed. */
  readonly hashed?: readonly Hashed[];
  /** Its missing blocks were fetched already (or declared absent): execute with what there is. */
  readonly fetched?: boolean;
}

interface Hashed {
  readonly bguid: Uint8Array;
  readonly bytes: Uint8Array;
}

/**
 * A version waiting for data blocks fetched by BGUID: the next version's entry (checked up to its
 * digest) whose referenced blocks came as references, or a snapshot (certificate checked) whose
 * data blocks did (`snapshot` set; `entry` is then its certificate with no update).
 */
interface Awaiting extends Pending {
  readonly snapshot: Snapshot | null;
  /** BGUID hex → block received so far (held here, not in the cache, so nothing evicts them first). */
  readonly received: Map<string, Hashed>;
  /** BGUID hex → BGUID still to fetch. */
  readonly missing: Map<string, Uint8Array>;
  /** Asked for but the sender said it does not hold them. */
  absentCount: number;
  /** Times a snapshot's leaves were asked for again because the cache evicted some it counted as present. */
  refetches?: number;
}

/** Heartbeat gaps remembered per object (a parent must forward this many sparse ones in a row to widen its slack). */
const heartbeatGapsKept = 16;

/** Refetches a snapshot may need before an incomplete one counts against its sender. */
const snapshotRefetchesMax = 3;

export interface AcceptedVersion {
  readonly version: number;
  readonly vguid: Uint8Array;
}

/**
 * One version this copy holds. Referenced blocks are kept by BGUID (their bytes live in the block
 * cache); `update` is null for a version installed from a snapshot (it cannot be replayed to a
 * child: that child gets a snapshot too).
 */
export interface CopyRecord {
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly certificate: Uint8Array;
  readonly update: Uint8Array | null;
  readonly references: readonly Uint8Array[];
}

export interface ObjectCopyLimits {
  /** Early versions held while their predecessors are missing. */
  readonly pendingEntriesMax: number;
  /** Bytes of early versions held (one entry is always allowed, so a large update can still wait). */
  readonly pendingBytesMax: number;
  /** Certified updates kept for gap fills; older children get a snapshot. */
  readonly logEntriesMax: number;
  /** Bytes of updates and certificates kept in the log (the newest record is always kept). */
  readonly logBytesMax: number;
}

export class ObjectCopy implements GapSource {
  readonly key: string;
  head: Head | null = null;
  readonly log = new ObjectLog<CopyRecord>();
  /** Snapshots installed (catch-ups that skipped replay). */
  snapshotsInstalled = 0;
  /** Bytes of updates and certificates in the log. */
  logBytes = 0;
  heartbeat: { readonly bytes: Uint8Array; readonly statement: HeartbeatStatement } | null = null;
  /** Bytes of the head's blocks (pinned in the cache while this copy is open). */
  pinnedBytes = 0;
  /** Ring-time gaps between successive heartbeats taken (newest last, at most heartbeatGapsKept). */
  private readonly heartbeatGapsMs: number[] = [];
  private pinned: ReadonlySet<string> = new Set();
  private readonly pending = new Map<number, Pending>();
  private pendingBytes = 0;
  private awaiting: Awaiting | null = null;
  /** When the ring certified the head this copy took (null: none taken since it was loaded). */
  headCertifiedMs: number | null = null;

  constructor(
    readonly aguid: Uint8Array,
    private readonly trust: ReplicaTrust,
    private readonly executor: ReplicaExecutor,
    private readonly cache: BlockCache,
    private readonly limits: ObjectCopyLimits,
    private readonly onAccepted: (accepted: AcceptedVersion) => void,
  ) {
    this.key = toHex(aguid);
  }

  /** Takes a verified heartbeat newer than the one held (the caller checked both). */
  takeHeartbeat(bytes: Uint8Array, statement: HeartbeatStatement): void {
    const previous = this.heartbeat?.statement.timestampMs;
    if (previous !== undefined && statement.timestampMs > previous) {
      this.heartbeatGapsMs.push(statement.timestampMs - previous);
      if (this.heartbeatGapsMs.length > heartbeatGapsKept) this.heartbeatGapsMs.shift();
    }
    this.heartbeat = { bytes, statement };
  }

  /**
   * How often the ring heartbeats this object, as seen here (null until two heartbeats were taken):
   * the smallest recent gap between their certified times. The ring heartbeats 256 objects per
   * period, so with many objects each one's heartbeat comes only every ceil(objects / 256)
   * periods. The smallest gap, because a parent can forward fewer heartbeats than the ring
   * made (stretching the gaps it is judged by) but not more.
   */
  get heartbeatPeriodMs(): number | null {
    return this.heartbeatGapsMs.length === 0 ? null : Math.min(...this.heartbeatGapsMs);
  }

  /** The first version this copy lacks. */
  get nextVersion(): number {
    return this.head ? this.head.version + 1 : this.executor.firstVersion;
  }

  /** The newest version anyone has shown us certified proof of (heartbeat or early entry). */
  get knownVersion(): number {
    let known = this.head?.version ?? -1;
    if (this.heartbeat) known = Math.max(known, this.heartbeat.statement.version);
    for (const version of this.pending.keys()) known = Math.max(known, version);
    if (this.awaiting) known = Math.max(known, this.awaiting.statement.version);
    return known;
  }

  /**
   * The first version this copy needs an update for: past the head, the version awaiting its
   * blocks (its update or snapshot is held; the blocks are fetched apart) and the early entries
   * held after it. What a fetch or renewal asks the parent for: asking from `nextVersion` made an
   * honest parent send a large version's update again at every fetch and renewal while its blocks
   * came, and on a slow link the block replies queued behind the copies (session 25).
   */
  get wantedVersion(): number {
    // A snapshot awaiting its blocks stands for every version up to its own.
    let wanted = Math.max(this.nextVersion, (this.awaiting?.statement.version ?? -1) + 1);
    while (this.pending.has(wanted)) wanted++;
    return wanted;
  }

  /** Whether early entries have no more room: what a fetch past them brings would be dropped. */
  get pendingFull(): boolean {
    return this.pending.size >= this.limits.pendingEntriesMax || this.pendingBytes >= this.limits.pendingBytesMax;
  }

  /** The version waiting for its blocks (a snapshot's or a large update's): its number and certified time. */
  get awaitingStatement(): { readonly version: number; readonly timestampMs: number } | null {
    return this.awaiting?.statement ?? null;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Drops early entries (after re-parenting: the new parent resends what we need). */
  clearPending(): void {
    this.pending.clear();
    this.pendingBytes = 0;
    this.dropAwaiting();
    this.cache.evict();
  }

  /**
   * Gives up the version awaiting blocks. Blocks already fetched (each hash-checked) stay in the
   * cache: after re-parenting, the next parent is asked only for the rest, so a large transfer
   * progresses across parent changes.
   */
  private dropAwaiting(): void {
    const a = this.awaiting;
    if (!a) return;
    for (const r of [...(a.hashed ?? []), ...a.received.values()]) this.cache.putHashed(r.bguid, 'data', r.bytes);
    if (a.snapshot) this.forgetTree(a.snapshot);
    this.awaiting = null;
  }

  /**
   * Removes an unfinished snapshot's root and interior blocks (those no head pins). Left in the
   * cache without their leaves, they made re-executing that version's update later skip writing
   * its new leaf (apply takes a block already present to have its whole subtree present too), so
   * the version came out incomplete and the honest parent that pushed the update was left as a liar.
   */
  private forgetTree(snapshot: Snapshot): void {
    for (const block of snapshot.blocks) {
      if (block.kind === 'data') continue;
      const bguid = this.cache.bguidOf(block.kind, block.bytes);
      if (!this.cache.isPinned(bguid)) this.cache.delete(bguid);
    }
  }

  /** Blocks the next version still waits for (0 when nothing is awaited). */
  get missingBlockCount(): number {
    return this.awaiting?.missing.size ?? 0;
  }

  /** BGUIDs of blocks the next version still needs (at most `countMax`), and whom to ask; null if none. */
  blocksToFetch(countMax: number): { from: string; bguids: Uint8Array[] } | null {
    const a = this.awaiting;
    if (!a || a.missing.size === 0) return null;
    return { from: a.from, bguids: [...a.missing.values()].slice(0, countMax) };
  }

  /**
   * Blocks fetched from `from` for the awaiting version (`absent`: BGUIDs it says it lacks). Blocks
   * nobody asked for are ignored; `taken` hears how many were asked for, and their bytes, before
   * the version is checked. Once nothing is missing, the version is checked and applied.
   */
  offerBlocks(blocks: readonly Uint8Array[], absent: readonly Uint8Array[], from: string, taken?: (count: number, bytes: number) => void): OfferResult | null {
    const a = this.awaiting;
    if (!a || a.from !== from) return null;
    let count = 0;
    let bytesTaken = 0;
    for (const bytes of blocks) {
      const bguid = this.cache.bguidOf('data', bytes);
      const key = toHex(bguid);
      if (!a.missing.delete(key)) continue;
      a.received.set(key, { bguid, bytes: ownedBytes(bytes) });
      count++;
      bytesTaken += bytes.length;
    }
    taken?.(count, bytesTaken);
    for (const bguid of absent) if (a.missing.delete(toHex(bguid))) a.absentCount++;
    if (a.missing.size > 0) return { kind: 'awaiting-blocks', entries: [], from };
    this.awaiting = null;
    if (a.snapshot) {
      for (const r of a.received.values()) this.cache.putHashed(r.bguid, 'data', r.bytes);
      // Leaves counted as present when the snapshot started are not held for it: the cache may
      // have evicted some since (other objects' versions, this snapshot's own puts). Missing now,
      // they are asked for again rather than the complete answer being called a lie (second review);
      // not when the sender said it lacks some (those would only be asked for again).
      const evicted = this.executor.versionBlocks(this.cache, a.statement.vguid) ? [] : (this.executor.missingDataBlocks(this.cache, a.statement.vguid) ?? []);
      if (evicted.length > 0 && a.absentCount === 0 && (a.refetches ?? 0) < snapshotRefetchesMax) {
        this.awaiting = { ...a, received: new Map(), missing: new Map(evicted.map((b) => [toHex(b), b])), refetches: (a.refetches ?? 0) + 1 };
        return { kind: 'awaiting-blocks', entries: [], from };
      }
      const result = this.completeSnapshot(a.snapshot, a.statement, from);
      if (result.kind === 'bad' && this.head?.version !== a.statement.version) this.forgetTree(a.snapshot);
      return result.kind === 'bad' && a.absentCount > 0 ? { kind: 'bad', reason: 'blocks-absent', from } : result;
    }
    const hashed = [...(a.hashed ?? []), ...a.received.values()];
    const entry: LogEntry = { update: a.entry.update, certificate: a.entry.certificate, blocks: hashed.map((h) => h.bytes) };
    // The sender held back a block the update needs: not a proven lie (it may have evicted it), but it cannot feed us.
    const result = this.drain({ entry, statement: a.statement, from, hashed, fetched: true }, []);
    return result.kind === 'bad' && a.absentCount > 0 ? { kind: 'bad', reason: 'blocks-absent', from } : result;
  }

  /** One pushed entry from `from`: accepted (with any early entries it unblocked), ignored, buffered, or a lie. */
  offer(received: LogEntry, from: string): OfferResult {
    // Its statement (kept with it) is a view into the certificate.
    const entry: LogEntry = { ...received, certificate: ownedBytes(received.certificate) };
    const statement = this.trust.verifyCommit(entry.certificate);
    if (!statement) return { kind: 'bad', reason: 'certificate', from };
    if (!bytesEqual(statement.aguid, this.aguid)) return { kind: 'bad', reason: 'wrong-object', from };
    const expected = this.nextVersion;
    if (statement.version < expected) return this.checkDuplicate(statement, from);
    // While a version's blocks are being fetched, later versions (and repeats of it) wait.
    if (statement.version > expected || (this.awaiting && statement.version === expected)) {
      const bytes = entryBytesOf(entry);
      const room = this.pending.size === 0 || (this.pending.size < this.limits.pendingEntriesMax && this.pendingBytes + bytes <= this.limits.pendingBytesMax);
      if (room && !this.pending.has(statement.version)) {
        this.pending.set(statement.version, { entry: ownedEntry(entry), statement, from });
        this.pendingBytes += bytes;
      }
      return { kind: 'future' };
    }
    return this.drain({ entry, statement, from }, []);
  }

  /** Applies `first`, then every early entry it unblocks; stops at the first lie. */
  private drain(first: Pending | undefined, accepted: LogEntry[]): OfferResult {
    let next = first;
    while (next) {
      if (next.statement.version !== this.nextVersion) {
        // Overtaken by a snapshot: its update was written for an older head.
        this.dropPending(next.statement.version);
        next = this.pending.get(this.nextVersion);
        continue;
      }
      const hashed = next.hashed ?? next.entry.blocks.map((bytes) => ({ bguid: this.cache.bguidOf('data', bytes), bytes }));
      if (!next.fetched && this.startAwaiting({ ...next, hashed })) {
        this.dropPending(next.statement.version);
        return { kind: 'awaiting-blocks', entries: accepted, from: next.from };
      }
      const applied = this.apply(next.entry, next.statement, hashed);
      if (typeof applied === 'string') {
        this.clearPending();
        return { kind: 'bad', reason: applied, from: next.from };
      }
      accepted.push(applied);
      this.dropPending(next.statement.version);
      next = this.pending.get(this.nextVersion);
    }
    return { kind: 'accepted', entries: accepted };
  }

  /**
   * A parent's whole current version instead of the updates we lack (it can no longer replay
   * them). Checked like an update, minus re-execution: the certificate verifies and names this
   * object and a newer version, and the blocks are complete and hash up to the certified VGUID.
   */
  installSnapshot(received: Snapshot, from: string): OfferResult {
    // The certificate outlives the frame (the log, the head's VGUID is a view into it); the blocks
    // go into the cache, which copies what it keeps.
    const snapshot: Snapshot = { certificate: ownedBytes(received.certificate), blocks: received.blocks };
    const statement = this.trust.verifyCommit(snapshot.certificate);
    if (!statement) return { kind: 'bad', reason: 'certificate', from };
    if (!bytesEqual(statement.aguid, this.aguid)) return { kind: 'bad', reason: 'wrong-object', from };
    if (statement.version < this.nextVersion) return this.checkDuplicate(statement, from);
    // A repeat of the snapshot whose leaves we are fetching (or an older one) changes nothing:
    // taking it again let a parent that never sends the leaves look busy for ever.
    if (this.awaiting?.snapshot && statement.version <= this.awaiting.statement.version) return { kind: 'duplicate' };
    // A newer version replaces what was awaited (what it fetched is kept: the versions may share
    // leaves); dropped before this snapshot's blocks go in, as dropping removes an older tree.
    this.dropAwaiting();
    for (const block of snapshot.blocks) this.cache.put(block.kind, block.bytes);
    const result = this.startSnapshot(snapshot, statement, from);
    // The puts above do not evict (only a new head does): without this, padding sent along with
    // snapshots that never complete piled up beyond the budget.
    this.cache.evict();
    return result;
  }

  private startSnapshot(snapshot: Snapshot, statement: CommitStatement, from: string): OfferResult {
    if (this.executor.versionBlocks(this.cache, statement.vguid)) return this.completeSnapshot(snapshot, statement, from);
    // A large version comes without its data blocks: fetch the ones we lack by BGUID.
    const missing = this.executor.missingDataBlocks(this.cache, statement.vguid);
    if (!missing || missing.length === 0) {
      this.forgetTree(snapshot);
      return { kind: 'bad', reason: 'incomplete-snapshot', from };
    }
    const entry: LogEntry = { update: new Uint8Array(0), certificate: snapshot.certificate, blocks: [] };
    this.awaiting = { entry, statement, from, snapshot, received: new Map(), missing: new Map(missing.map((b) => [toHex(b), b])), absentCount: 0 };
    return { kind: 'awaiting-blocks', entries: [], from };
  }

  /** Installs a snapshot whose blocks are all in the cache (its own re-put first: they may have aged out while we fetched). */
  private completeSnapshot(snapshot: Snapshot, statement: CommitStatement, from: string): OfferResult {
    if (statement.version < this.nextVersion) return this.checkDuplicate(statement, from);
    for (const block of snapshot.blocks) this.cache.put(block.kind, block.bytes);
    const blocks = this.executor.versionBlocks(this.cache, statement.vguid);
    if (!blocks) return { kind: 'bad', reason: 'incomplete-snapshot', from };
    const head: Head = { aguid: this.aguid, version: statement.version, vguid: statement.vguid };
    // A version still waiting for blocks is now history: left in place it parked every later
    // version behind it, and its late blocks re-executed the old update on the new head (which
    // fails, and blamed the honest sender). What it fetched stays in the cache.
    this.adopt(head, blocks);
    this.headCertifiedMs = statement.timestampMs;
    if (this.awaiting && this.awaiting.statement.version <= head.version) this.dropAwaiting();
    this.log.reset({ version: head.version, vguid: head.vguid, certificate: snapshot.certificate, update: null, references: [] });
    this.logBytes = snapshot.certificate.length;
    this.snapshotsInstalled++;
    this.onAccepted({ version: head.version, vguid: head.vguid });
    for (const version of [...this.pending.keys()]) if (version <= head.version) this.dropPending(version);
    return this.drain(this.pending.get(this.nextVersion), []);
  }

  nextVersionHeld(): number {
    return this.nextVersion;
  }

  /**
   * An entry that came as block references (or short of blocks): if its update names data blocks
   * that are neither in the entry nor in the cache, hold it (digest checked first, so a forged
   * update costs no fetch) and report true.
   */
  private startAwaiting(p: Pending & { readonly hashed: readonly Hashed[] }): boolean {
    const digest = this.executor.digest(p.entry.update);
    if (!digest || !bytesEqual(digest, p.statement.updateDigest)) return false; // apply() names the lie
    const inEntry = new Set(p.hashed.map((h) => toHex(h.bguid)));
    const missing = new Map<string, Uint8Array>();
    for (const bguid of this.executor.references(p.entry.update)) {
      const key = toHex(bguid);
      if (!inEntry.has(key) && !this.cache.has(bguid)) missing.set(key, bguid);
    }
    if (missing.size === 0) return false;
    const entry = ownedEntry(p.entry);
    const hashed = p.hashed.map((h) => ({ bguid: h.bguid, bytes: ownedBytes(h.bytes) }));
    this.awaiting = { ...p, entry, hashed, snapshot: null, received: new Map(), missing, absentCount: 0 };
    return true;
  }

  private dropPending(version: number): void {
    const held = this.pending.get(version);
    if (!held) return;
    this.pending.delete(version);
    this.pendingBytes -= entryBytesOf(held.entry);
  }

  /** GapSource: replay from the log while the updates and their referenced blocks are still here. */
  entriesFrom(fromVersion: number, countMax: number, bytesMax: number, bytesOf?: (entry: LogEntry) => number): LogEntry[] | null {
    const first = this.log.get(fromVersion);
    if (!first || first.update === null) return null;
    const entries = boundedEntries((i) => this.replayable(fromVersion + i), countMax, bytesMax, bytesOf);
    return entries.length > 0 ? entries : null;
  }

  /** GapSource: the head, whole. Its blocks are pinned, so they are all here. */
  snapshot(): Snapshot | null {
    const head = this.head;
    const record = head ? this.log.get(head.version) : undefined;
    const refs = head ? this.executor.versionBlocks(this.cache, head.vguid) : null;
    if (!head || !record || !refs) return null;
    const blocks = refs.map((r) => ({ kind: r.kind, bytes: this.cache.get(r.bguid, r.kind)! }));
    return { certificate: record.certificate, blocks };
  }

  private replayable(version: number): LogEntry | null {
    const record = this.log.get(version);
    if (!record || record.update === null) return null;
    const blocks: Uint8Array[] = [];
    for (const bguid of record.references) {
      const bytes = this.cache.get(bguid, 'data');
      if (!bytes) return null; // evicted with its old version: this child needs a snapshot instead
      blocks.push(bytes);
    }
    return { update: record.update, certificate: record.certificate, blocks };
  }

  /** A certified version we already hold must be the one we hold; the ring never certifies two. */
  private checkDuplicate(statement: CommitStatement, from: string): OfferResult {
    const held = this.log.get(statement.version);
    if (held && !bytesEqual(held.vguid, statement.vguid)) return { kind: 'bad', reason: 'conflicting-certificate', from };
    return { kind: 'duplicate' };
  }

  /** Checks and applies the next version; the entry as kept on success, else why it is a lie. */
  private apply(entry: LogEntry, statement: CommitStatement, referenced: readonly Hashed[]): LogEntry | string {
    const digest = this.executor.digest(entry.update);
    if (!digest || !bytesEqual(digest, statement.updateDigest)) return 'update-digest';
    // Only blocks the update names go into the cache: padding sent along with an entry was
    // cached as the newest blocks and pushed older versions' blocks out first.
    const named = new Set(this.executor.references(entry.update).map(toHex));
    const staged = referenced.filter((r) => named.has(toHex(r.bguid)));
    for (const r of staged) this.cache.putHashed(r.bguid, 'data', r.bytes);
    const result = this.executor.execute(this.cache, this.head, entry.update, statement.timestampMs);
    if (!result.ok) return `execute: ${result.reason}`;
    const head = result.head;
    if (head.version !== statement.version || !bytesEqual(head.vguid, statement.vguid) || !bytesEqual(head.aguid, this.aguid)) {
      return 'vguid-mismatch';
    }
    const blocks = this.executor.versionBlocks(this.cache, head.vguid);
    if (!blocks) return 'incomplete-version';
    const pinned = this.adopt(head, blocks);
    this.headCertifiedMs = statement.timestampMs;
    // Keep only referenced blocks that are really part of the version: a liar cannot make us
    // store and forward padding.
    const kept = staged.filter((r) => pinned.has(toHex(r.bguid)));
    this.log.append({ version: head.version, vguid: head.vguid, certificate: ownedBytes(entry.certificate), update: ownedBytes(entry.update), references: kept.map((r) => r.bguid) });
    this.logBytes += entry.update.length + entry.certificate.length;
    this.trimLog();
    this.onAccepted({ version: head.version, vguid: head.vguid });
    return { update: entry.update, certificate: entry.certificate, blocks: kept.map((r) => r.bytes) };
  }

  /** Keeps the log within its count and byte bounds, oldest first. */
  private trimLog(): void {
    let excess = Math.max(0, this.log.length - this.limits.logEntriesMax);
    while (excess > 0 || (this.logBytes > this.limits.logBytesMax && this.log.length > 1)) {
      const [dropped] = this.log.dropOldest(1);
      if (!dropped) return;
      this.logBytes -= (dropped.update?.length ?? 0) + dropped.certificate.length;
      excess--;
    }
  }

  /** Makes `head` current: pins its blocks (older ones become evictable). */
  private adopt(head: Head, blocks: readonly BlockRef[]): ReadonlySet<string> {
    const next = new Set<string>();
    let bytes = 0;
    for (const b of blocks) {
      const key = toHex(b.bguid);
      if (next.has(key)) continue;
      next.add(key);
      bytes += this.cache.byteLengthOf(b.bguid, b.kind) ?? 0;
    }
    this.cache.repin(this.pinned, next);
    this.pinned = next;
    this.pinnedBytes = bytes;
    this.head = head;
    return next;
  }

  /** The copy is closed: its head's blocks become evictable, early entries go. */
  release(): void {
    this.clearPending();
    this.cache.repin(this.pinned, new Set());
    this.pinned = new Set();
    this.pinnedBytes = 0;
  }
}
