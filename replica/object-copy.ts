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
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { BlockCache } from './block-cache.ts';
import type { LogEntry } from './messages.ts';
import { ObjectLog } from './object-log.ts';
import type { CommitStatement, HeartbeatStatement, Head, ReplicaExecutor, ReplicaTrust } from './types.ts';

export type OfferResult =
  | { readonly kind: 'accepted'; readonly entries: LogEntry[] }
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'future' }
  | { readonly kind: 'bad'; readonly reason: string; readonly from: string };

interface Pending {
  readonly entry: LogEntry;
  readonly statement: CommitStatement;
  readonly from: string;
}

export interface AcceptedVersion {
  readonly version: number;
  readonly vguid: Uint8Array;
}

export class ObjectCopy {
  readonly key: string;
  head: Head | null = null;
  readonly log = new ObjectLog();
  heartbeat: { readonly bytes: Uint8Array; readonly statement: HeartbeatStatement } | null = null;
  private pinned: ReadonlySet<string> = new Set();
  private readonly pending = new Map<number, Pending>();

  constructor(
    readonly aguid: Uint8Array,
    private readonly trust: ReplicaTrust,
    private readonly executor: ReplicaExecutor,
    private readonly cache: BlockCache,
    private readonly pendingEntriesMax: number,
    private readonly onAccepted: (accepted: AcceptedVersion) => void,
  ) {
    this.key = toHex(aguid);
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
    return known;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Drops early entries (after re-parenting: the new parent resends what we need). */
  clearPending(): void {
    this.pending.clear();
  }

  /** One pushed entry from `from`: accepted (with any early entries it unblocked), ignored, buffered, or a lie. */
  offer(entry: LogEntry, from: string): OfferResult {
    const statement = this.trust.verifyCommit(entry.certificate);
    if (!statement) return { kind: 'bad', reason: 'certificate', from };
    if (!bytesEqual(statement.aguid, this.aguid)) return { kind: 'bad', reason: 'wrong-object', from };
    const expected = this.nextVersion;
    if (statement.version < expected) return this.checkDuplicate(statement, from);
    if (statement.version > expected) {
      if (this.pending.size < this.pendingEntriesMax && !this.pending.has(statement.version)) {
        this.pending.set(statement.version, { entry, statement, from });
      }
      return { kind: 'future' };
    }
    const accepted: LogEntry[] = [];
    let next: Pending | undefined = { entry, statement, from };
    while (next) {
      const reason = this.apply(next.entry, next.statement);
      if (reason !== null) {
        this.pending.clear();
        return { kind: 'bad', reason, from: next.from };
      }
      accepted.push(this.log.get(next.statement.version)!.entry);
      this.pending.delete(next.statement.version);
      next = this.pending.get(this.nextVersion);
    }
    return { kind: 'accepted', entries: accepted };
  }

  /** A certified version we already hold must be the one we hold; the ring never certifies two. */
  private checkDuplicate(statement: CommitStatement, from: string): OfferResult {
    const held = this.log.get(statement.version);
    if (held && !bytesEqual(held.vguid, statement.vguid)) return { kind: 'bad', reason: 'conflicting-certificate', from };
    return { kind: 'duplicate' };
  }

  /** Checks and applies the next version; null on success, else why it is a lie. */
  private apply(entry: LogEntry, statement: CommitStatement): string | null {
    const digest = this.executor.digest(entry.update);
    if (!digest || !bytesEqual(digest, statement.updateDigest)) return 'update-digest';
    const referenced = entry.blocks.map((bytes) => ({ bguid: this.cache.put('data', bytes), bytes }));
    const result = this.executor.execute(this.cache, this.head, entry.update, statement.timestampMs);
    if (!result.ok) return `execute: ${result.reason}`;
    const head = result.head;
    if (head.version !== statement.version || !bytesEqual(head.vguid, statement.vguid) || !bytesEqual(head.aguid, this.aguid)) {
      return 'vguid-mismatch';
    }
    const blocks = this.executor.versionBlocks(this.cache, head.vguid);
    if (!blocks) return 'incomplete-version';
    const next = new Set(blocks.map((b) => toHex(b.bguid)));
    // Keep only referenced blocks that are really part of the version: a liar cannot make us
    // store and forward padding.
    const kept = referenced.filter((r) => next.has(toHex(r.bguid))).map((r) => r.bytes);
    this.cache.repin(this.pinned, next);
    this.pinned = next;
    this.head = head;
    this.log.append({ version: head.version, vguid: head.vguid, entry: { update: entry.update, certificate: entry.certificate, blocks: kept } });
    this.onAccepted({ version: head.version, vguid: head.vguid });
    return null;
  }
}
