/**
 * The certified history a tree member holds for one object, and what it gap-fills children from.
 * Versions are contiguous from `firstVersion`: a member never holds version v+1 without v, which
 * is what "no gap" means in the tests. Old records are dropped (`dropOldest`) to bound memory;
 * a child that needs a dropped version gets a snapshot of the current version instead.
 */
import { assert } from '../core/assert.ts';
import type { BlockKind } from '../core/version/block.ts';
import type { LogEntry } from './messages.ts';

export class ObjectLog<R extends { readonly version: number }> {
  private records: R[] = [];

  get firstVersion(): number | null {
    return this.records[0]?.version ?? null;
  }

  /** The version after the newest one held (`fallback` when empty). */
  nextVersion(fallback: number): number {
    const last = this.records[this.records.length - 1];
    return last ? last.version + 1 : fallback;
  }

  get length(): number {
    return this.records.length;
  }

  append(record: R): void {
    const last = this.records[this.records.length - 1];
    assert(!last || record.version === last.version + 1, 'log versions are contiguous');
    this.records.push(record);
  }

  /** Starts over from one record (a snapshot's version). */
  reset(record: R): void {
    this.records = [record];
  }

  /** Forgets the oldest records, always keeping the newest one; returns what it dropped. */
  dropOldest(count: number): R[] {
    return this.records.splice(0, Math.max(0, Math.min(count, this.records.length - 1)));
  }

  get(version: number): R | undefined {
    const first = this.firstVersion;
    if (first === null || version < first) return undefined;
    return this.records[version - first];
  }

  all(): readonly R[] {
    return this.records;
  }
}

export interface Snapshot {
  readonly certificate: Uint8Array;
  readonly blocks: readonly { readonly kind: BlockKind; readonly bytes: Uint8Array }[];
}

/** What a member gap-fills its children from. */
export interface GapSource {
  /** The first version this member lacks. */
  nextVersionHeld(): number;
  /**
   * Certified updates from `fromVersion` on (bounded; `bytesOf`: what an entry weighs on the wire,
   * default all of it); null when the member can no longer replay from there.
   */
  entriesFrom(fromVersion: number, countMax: number, bytesMax: number, bytesOf?: (entry: LogEntry) => number): LogEntry[] | null;
  /** The current version, whole, with its certificate; null if the member has none to give. */
  snapshot(): Snapshot | null;
}

export function entryBytesOf(entry: LogEntry): number {
  let bytes = entry.update.length + entry.certificate.length;
  for (const b of entry.blocks) bytes += b.length;
  return bytes;
}

/** Takes entries in order while they fit `countMax` and (beyond the first) `bytesMax`, weighed by `bytesOf`. */
export function boundedEntries(next: (i: number) => LogEntry | null, countMax: number, bytesMax: number, bytesOf: (entry: LogEntry) => number = entryBytesOf): LogEntry[] {
  const out: LogEntry[] = [];
  let bytes = 0;
  for (let i = 0; out.length < countMax; i++) {
    const entry = next(i);
    if (!entry) break;
    const entryBytes = bytesOf(entry);
    if (out.length > 0 && bytes + entryBytes > bytesMax) break;
    out.push(entry);
    bytes += entryBytes;
  }
  return out;
}
