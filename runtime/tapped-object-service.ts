/**
 * A ring server's object service with a tap: each committed update tells the tree root and the
 * archiver which blocks it made (recorded as the service writes them) and which uploaded blocks it
 * references. Used by runtime/object-roles.ts.
 */
import { toHex } from '../core/bytes.ts';
import { decodeUpdate } from '../core/update/update-codec.ts';
import type { BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import type { BlockRefToArchive, BlockToArchive } from '../archive/archiver-types.ts';
import type { KvBlockStore } from '../ring/kv-block-store.ts';
import { decodeObjectResult } from '../ring/object-result.ts';
import type { ObjectService } from '../ring/object-service.ts';
import type { ExecutionContext, ExecutionResult, ReplicatedService } from '../ring/service.ts';
import { defaultChildSetOptions } from '../replica/children.ts';
import { versionBlocks } from '../replica/version-walk.ts';
import { decodeRootBlock } from '../core/version/root-block.ts';

/** Remembers the blocks a store receives while armed: the new blocks of one execution. */
export class RecordingBlockStore implements BlockStore {
  private recording: { bguid: Uint8Array; kind: BlockKind; bytes: Uint8Array }[] | null = null;

  constructor(private readonly inner: KvBlockStore) {}

  get corruptCount(): number {
    return this.inner.corruptCount;
  }

  arm(): void {
    this.recording = [];
  }

  disarm(): { bguid: Uint8Array; kind: BlockKind; bytes: Uint8Array }[] {
    const out = this.recording ?? [];
    this.recording = null;
    return out;
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    return this.inner.get(bguid, kind);
  }

  has(bguid: Uint8Array): boolean {
    return this.inner.has(bguid);
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    return this.inner.byteLengthOf(bguid, kind);
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    const bguid = this.inner.put(kind, bytes);
    this.recording?.push({ bguid, kind, bytes });
    return bguid;
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    this.inner.putVerified(bguid, kind, bytes);
    this.recording?.push({ bguid, kind, bytes });
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    this.inner.putHashed(bguid, kind, bytes);
    this.recording?.push({ bguid, kind, bytes });
  }

  delete(bguid: Uint8Array): void {
    this.inner.delete(bguid);
  }

  bguids(): Iterable<Uint8Array> {
    return this.inner.bguids();
  }
}

/** Reads through to whichever block store the replica's service currently uses (it is rebuilt on restart). */
export class CurrentBlockStore implements BlockStore {
  current: BlockStore | null = null;

  private store(): BlockStore {
    if (!this.current) throw new Error('the ring replica has not built its service yet');
    return this.current;
  }

  get(bguid: Uint8Array, kind: BlockKind): Uint8Array | undefined {
    return this.current?.get(bguid, kind);
  }

  has(bguid: Uint8Array): boolean {
    return this.current?.has(bguid) ?? false;
  }

  get corruptCount(): number {
    return this.current?.corruptCount ?? 0;
  }

  byteLengthOf(bguid: Uint8Array, kind: BlockKind): number | undefined {
    return this.current?.byteLengthOf(bguid, kind);
  }

  put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    return this.store().put(kind, bytes);
  }

  putVerified(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    this.store().putVerified(bguid, kind, bytes);
  }

  putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    this.store().putHashed(bguid, kind, bytes);
  }

  delete(bguid: Uint8Array): void {
    this.store().delete(bguid);
  }

  bguids(): Iterable<Uint8Array> {
    return this.current?.bguids() ?? [];
  }
}

export interface Executed {
  readonly vguid: Uint8Array;
  readonly newBlocks: (BlockToArchive | BlockRefToArchive)[];
}

/**
 * The blocks `vguid` has that the version before it lacks, read back from the ring's store: what
 * the tap recorded when the update ran, for a version certified after this server restarted (the
 * ring keeps uncertified statements across restarts and certifies them without running them
 * again, so the tap's record in memory is gone). Root and interior blocks go with their bytes,
 * data blocks by reference (the archiver re-reads them). Null if the version is not complete here.
 */
export function newBlocksOf(blocks: BlockStore, vguid: Uint8Array): (BlockToArchive | BlockRefToArchive)[] | null {
  const rootBytes = blocks.get(vguid, 'root');
  const all = versionBlocks(blocks, vguid);
  if (!rootBytes || !all) return null;
  const previous = decodeRootBlock(rootBytes).previousVguid;
  const before = new Set<string>();
  for (const b of (previous.length > 0 ? versionBlocks(blocks, previous) : null) ?? []) before.add(toHex(b.bguid));
  const out: (BlockToArchive | BlockRefToArchive)[] = [];
  for (const b of all) {
    if (before.has(toHex(b.bguid))) continue;
    before.add(toHex(b.bguid)); // a block that appears twice in one version goes once
    if (b.kind === 'data') {
      const byteLength = blocks.byteLengthOf(b.bguid, 'data');
      if (byteLength === undefined) return null;
      out.push({ bguid: b.bguid, byteLength });
    } else {
      const bytes = blocks.get(b.bguid, b.kind);
      if (!bytes) return null;
      out.push({ bguid: b.bguid, bytes });
    }
  }
  return out;
}

/** The object service, plus a tap that tells the tree and the archiver what each commit made. */
export class TappedObjectService implements ReplicatedService {
  constructor(
    private readonly inner: ObjectService,
    private readonly blocks: RecordingBlockStore,
    private readonly onCommit: (statement: Uint8Array, update: Uint8Array, referenced: Uint8Array[], executed: Executed) => void,
  ) {}

  blocksNeeded(operation: Uint8Array, limit?: number): Uint8Array[] {
    return this.inner.blocksNeeded(operation, limit);
  }

  corruptBlocksFound(): number {
    return this.inner.corruptBlocksFound();
  }

  missingStateBlocks(): Uint8Array[] {
    return this.inner.missingStateBlocks();
  }

  putBlock(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    return this.inner.putBlock(kind, bytes);
  }

  getBlock(bguid: Uint8Array): { kind: BlockKind; bytes: Uint8Array } | undefined {
    return this.inner.getBlock(bguid);
  }

  execute(clientKey: Uint8Array, operation: Uint8Array, context: ExecutionContext): ExecutionResult {
    this.blocks.arm();
    let result: ExecutionResult;
    let written: ReturnType<RecordingBlockStore['disarm']>;
    try {
      result = this.inner.execute(clientKey, operation, context);
    } finally {
      written = this.blocks.disarm();
    }
    if (result.statement) this.tap(result, operation, written);
    return result;
  }

  heartbeatStatements(timestampMs: number, periodMs: number): Uint8Array[] {
    return this.inner.heartbeatStatements(timestampMs, periodMs);
  }

  snapshot(): Uint8Array {
    return this.inner.snapshot();
  }

  restore(snapshot: Uint8Array): boolean {
    return this.inner.restore(snapshot);
  }

  private tap(result: ExecutionResult, operation: Uint8Array, written: { bguid: Uint8Array; kind: BlockKind; bytes: Uint8Array }[]): void {
    const outcome = decodeObjectResult(result.result);
    if (outcome.outcome !== 'commit') return;
    const update = decodeUpdate(operation);
    // Referenced blocks were uploaded (and hashed) before the update: take them by their BGUID.
    // Large ones are not read here (that re-hashes every byte inside execute): the archiver
    // re-reads each when it codes it, and the tree member publishes them as references anyway.
    const refs: { bguid: Uint8Array; byteLength: number }[] = [];
    let refBytes = 0;
    for (const clause of update.clauses) {
      for (const a of clause.actions) {
        const sources = a.kind === 'append-blocks' ? a.blocks : a.kind === 'replace-block' || a.kind === 'insert-block' ? [a.block] : [];
        for (const s of sources) {
          if (s.kind !== 'ref') continue;
          const byteLength = this.inner.blocks.byteLengthOf(s.bguid, 'data');
          if (byteLength === undefined) continue;
          refs.push({ bguid: s.bguid, byteLength });
          refBytes += byteLength;
        }
      }
    }
    const inline = refBytes <= defaultChildSetOptions.inlineBlockBytesMax;
    const referenced: BlockToArchive[] = [];
    if (inline) {
      for (const r of refs) {
        const bytes = this.inner.blocks.get(r.bguid, 'data');
        if (bytes) referenced.push({ bguid: r.bguid, bytes });
      }
    }
    const seen = new Set<string>();
    const newBlocks: (BlockToArchive | BlockRefToArchive)[] = [];
    for (const b of [...written, ...(inline ? referenced : refs)]) {
      const hex = toHex(b.bguid);
      if (!seen.has(hex)) newBlocks.push('bytes' in b ? { bguid: b.bguid, bytes: b.bytes } : b);
      seen.add(hex);
    }
    this.onCommit(result.statement!, operation, referenced.map((b) => b.bytes), { vguid: outcome.vguid, newBlocks });
  }
}
