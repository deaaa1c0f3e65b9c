/**
 * The certified history a tree member holds for one object: for every version it accepted, the
 * certified update that made it (what it forwards and gap-fills with) and the VGUID it produced
 * (what it answers reads of that version with). Versions are contiguous from `firstVersion`: a
 * member never holds version v+1 without v, which is what "no gap" means in the tests.
 */
import { assert } from '../core/assert.ts';
import type { LogEntry } from './messages.ts';

export interface LogRecord {
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly entry: LogEntry;
}

export class ObjectLog {
  private readonly records: LogRecord[] = [];

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

  append(record: LogRecord): void {
    const last = this.records[this.records.length - 1];
    assert(!last || record.version === last.version + 1, 'log versions are contiguous');
    this.records.push(record);
  }

  get(version: number): LogRecord | undefined {
    const first = this.firstVersion;
    if (first === null || version < first) return undefined;
    return this.records[version - first];
  }

  /** Entries from `fromVersion` on, at most `countMax` of them and about `bytesMax` bytes (always at least one if any). */
  entriesFrom(fromVersion: number, countMax: number, bytesMax: number): LogEntry[] {
    const first = this.firstVersion;
    if (first === null) return [];
    const out: LogEntry[] = [];
    let bytes = 0;
    for (let i = Math.max(0, fromVersion - first); i < this.records.length && out.length < countMax; i++) {
      const entry = this.records[i]!.entry;
      const entryBytes = entryBytesOf(entry);
      if (out.length > 0 && bytes + entryBytes > bytesMax) break;
      out.push(entry);
      bytes += entryBytes;
    }
    return out;
  }

  all(): readonly LogRecord[] {
    return this.records;
  }
}

export function entryBytesOf(entry: LogEntry): number {
  let bytes = entry.update.length + entry.certificate.length;
  for (const b of entry.blocks) bytes += b.length;
  return bytes;
}
