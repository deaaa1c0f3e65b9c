/**
 * Messages of the dissemination tree (Pond, FAST 2003: push-based update of secondary replicas
 * over an overlay tree; DESIGN.md "Dissemination tree"). Cores exchange these objects; the
 * runtime puts them on the wire with encodeTreeMessage / decodeTreeMessage, which bound every
 * size and check every shape so a core only ever sees well-formed records (their content may
 * still be Byzantine: members verify it).
 */
import { asBytesField, asList, asNullable, asString, asTuple, asUint, decode, encode, type BytesBounds } from '../core/codec.ts';
import { hashBytes } from '../core/crypto.ts';
import { AssertionError } from '../core/assert.ts';
import { DecodeError } from '../core/errors.ts';
import { ownedBytes } from '../core/bytes.ts';
import { blockBytesMax, blockKinds, type BlockKind } from '../core/version/block.ts';
import { packFast, type Packable } from '../core/version/fast-msgpack.ts';

/** A certified update as it travels down the tree: the update, its certificate and the blocks it references. */
export interface LogEntry {
  readonly update: Uint8Array;
  readonly certificate: Uint8Array;
  /** Data blocks the update names by BGUID (uploaded by the client); members re-hash them. */
  readonly blocks: readonly Uint8Array[];
}

/** 'no-such-version': a ring server has neither certified nor executed the version asked for. */
export type ReadStatus = 'ok' | 'too-stale' | 'not-cached' | 'unknown-object' | 'out-of-range' | 'no-such-version';

export type TreeMessage =
  /** Join, or renew membership; `nextVersion` is the first version the sender lacks (gap fill). */
  | { readonly type: 'attach'; readonly aguid: Uint8Array; readonly nextVersion: number }
  /**
   * Accepted (or renewed); `path` is the parent's path from the root, ending with the parent
   * itself; `nextVersion` is the first version the parent lacks (so a child can tell a parent
   * that withholds from one that is behind itself).
   */
  | { readonly type: 'attach-ok'; readonly aguid: Uint8Array; readonly path: readonly string[]; readonly nextVersion: number }
  /** Refused (full, not attached, or would make a cycle); try one of `redirect` (the refuser's children). */
  | { readonly type: 'attach-refused'; readonly aguid: Uint8Array; readonly redirect: readonly string[] }
  | { readonly type: 'detach'; readonly aguid: Uint8Array }
  /** Certified updates in version order (a forward, or a gap fill). */
  | { readonly type: 'push'; readonly aguid: Uint8Array; readonly entries: readonly LogEntry[] }
  /** "Send me the certified updates from `fromVersion` on." */
  | { readonly type: 'fetch'; readonly aguid: Uint8Array; readonly fromVersion: number }
  | { readonly type: 'heartbeat'; readonly aguid: Uint8Array; readonly heartbeat: Uint8Array }
  /** The sender's current version whole (certificate + every block), for a child it can no longer replay to. */
  | {
      readonly type: 'snapshot';
      readonly aguid: Uint8Array;
      readonly certificate: Uint8Array;
      readonly blocks: readonly { readonly kind: BlockKind; readonly bytes: Uint8Array }[];
    }
  /** A client read of [offset, offset+length) of the latest version (version null) or a given one. */
  | {
      readonly type: 'read';
      readonly requestId: number;
      readonly aguid: Uint8Array;
      readonly version: number | null;
      readonly offset: number;
      readonly length: number;
      /** 0: any age; otherwise the newest heartbeat must be at most this old. */
      readonly maxAgeMs: number;
    }
  /**
   * "Send me these data blocks": a child that got an entry without (some of) the blocks its update
   * references asks its parent for them by BGUID (large updates travel as block references).
   */
  | { readonly type: 'fetch-blocks'; readonly aguid: Uint8Array; readonly bguids: readonly Uint8Array[] }
  /**
   * Data blocks a child asked for (it re-hashes each one and keeps only those it asked for), and
   * the BGUIDs asked for that the sender does not hold.
   */
  | { readonly type: 'blocks'; readonly aguid: Uint8Array; readonly blocks: readonly Uint8Array[]; readonly absent: readonly Uint8Array[] }
  /**
   * Between ring servers only: a batch's threshold signature and its statements. Only the f+1
   * combiners of a batch learn its signature from the ring; they share it so every ring server can
   * certify (and publish down its trees) every version. Receivers re-check it under the ring key.
   */
  | {
      readonly type: 'batch-certificate';
      readonly sequence: number;
      /** The key epoch of the shares that signed it (batch headers name it). */
      readonly epoch: number;
      readonly root: Uint8Array;
      readonly signature: Uint8Array;
      readonly statements: readonly Uint8Array[];
    }
  | {
      readonly type: 'read-reply';
      readonly requestId: number;
      readonly status: ReadStatus;
      readonly certificate: Uint8Array | null;
      readonly heartbeat: Uint8Array | null;
      readonly blocks: readonly { readonly kind: BlockKind; readonly bytes: Uint8Array }[];
    };

export const treeLimits = {
  entriesPerPushMax: 64,
  /** Longer paths mean a cycle or a lying ancestor; members re-parent instead. */
  pathLengthMax: 32,
  nodeIdLengthMax: 128,
  redirectCountMax: 64,
  updateBytesMax: 8 * 1024 * 1024,
  certificateBytesMax: 4096,
  heartbeatBytesMax: 4096,
  blocksPerEntryMax: 4096,
  proofBlocksMax: 4096,
  snapshotBlocksMax: 65_536,
  messageBytesMax: 64 * 1024 * 1024,
  statementsPerBatchMax: 65_536,
  statementBytesMax: 4096,
  signatureBytesMax: 256,
  /** BGUIDs per fetch-blocks request (a child asks again for the rest). */
  fetchBlocksMax: 1024,
  /** Data bytes per `blocks` reply (well under the frame bound; at least one block always goes). */
  blocksReplyBytesMax: 4 * 1024 * 1024,
} as const;

const typeCodes = ['attach', 'attach-ok', 'attach-refused', 'detach', 'push', 'fetch', 'heartbeat', 'read', 'read-reply', 'snapshot', 'batch-certificate', 'fetch-blocks', 'blocks'] as const;
const readStatuses: readonly ReadStatus[] = ['ok', 'too-stale', 'not-cached', 'unknown-object', 'out-of-range', 'no-such-version'];
const formatVersion = 1;

function entryTuple(e: LogEntry): Packable[] {
  return [e.update, e.certificate, [...e.blocks]];
}

/**
 * The messages that carry blocks, as tuples for packFast (one exactly sized buffer, each block
 * copied once); null for the rest, which are small and go through msgpackr. The bytes are the
 * same either way.
 */
function blockCarryingTuple(m: TreeMessage): Packable[] | null {
  const head = [typeCodes.indexOf(m.type), formatVersion];
  switch (m.type) {
    case 'push':
      return [...head, m.aguid, m.entries.map(entryTuple)];
    case 'snapshot':
      return [...head, m.aguid, m.certificate, m.blocks.map((b) => [blockKinds.indexOf(b.kind), b.bytes])];
    case 'blocks':
      return [...head, m.aguid, [...m.blocks], [...m.absent]];
    case 'read-reply':
      return [...head, m.requestId, readStatuses.indexOf(m.status), m.certificate, m.heartbeat, m.blocks.map((b) => [blockKinds.indexOf(b.kind), b.bytes])];
    default:
      return null;
  }
}

export function encodeTreeMessage(m: TreeMessage): Uint8Array {
  const tuple = blockCarryingTuple(m);
  if (tuple) return packFast(tuple);
  return encode(smallTuple(m));
}

/**
 * The same encoding with `reservedBytes` free bytes in front (a transport's channel byte), so
 * the host need not copy a frame of blocks again to prepend them.
 */
export function encodeTreeFrame(m: TreeMessage, reservedBytes: number): Uint8Array {
  const tuple = blockCarryingTuple(m);
  if (tuple) return packFast(tuple, reservedBytes);
  const body = encode(smallTuple(m));
  const frame = new Uint8Array(reservedBytes + body.length);
  frame.set(body, reservedBytes);
  return frame;
}

function smallTuple(m: TreeMessage): unknown[] {
  const head = [typeCodes.indexOf(m.type), formatVersion];
  switch (m.type) {
    case 'attach':
      return [...head, m.aguid, m.nextVersion];
    case 'attach-ok':
      return [...head, m.aguid, [...m.path], m.nextVersion];
    case 'attach-refused':
      return [...head, m.aguid, [...m.redirect]];
    case 'detach':
      return [...head, m.aguid];
    case 'fetch':
      return [...head, m.aguid, m.fromVersion];
    case 'heartbeat':
      return [...head, m.aguid, m.heartbeat];
    case 'read':
      return [...head, m.requestId, m.aguid, m.version, m.offset, m.length, m.maxAgeMs];
    case 'fetch-blocks':
      return [...head, m.aguid, [...m.bguids]];
    case 'batch-certificate':
      return [...head, m.sequence, m.epoch, m.root, m.signature, [...m.statements]];
    case 'push':
    case 'snapshot':
    case 'blocks':
    case 'read-reply':
      throw new AssertionError(`${m.type} is encoded by packFast`);
  }
}

/**
 * An entry whose bytes may be kept (pending, awaiting, logged): a view into the frame it came in
 * kept that whole frame alive (a Byzantine parent's padding along with it), uncounted by any bound.
 */
export function ownedEntry(entry: LogEntry): LogEntry {
  return { update: ownedBytes(entry.update), certificate: ownedBytes(entry.certificate), blocks: entry.blocks.map(ownedBytes) };
}

/**
 * Decoded byte fields are views into the frame (msgpackr). Everything but blocks is copied out
 * (small, and kept in logs, caches and trust verdicts); blocks stay views (the bulk of a frame,
 * forwarded as they are) and are copied where they are kept (BlockCache, ObjectCopy).
 */
const kept = (v: unknown, what: string, bounds: BytesBounds): Uint8Array => ownedBytes(asBytesField(v, what, bounds));
const nodeId = (v: unknown): string => asString(v, 'node id', treeLimits.nodeIdLengthMax);
const guid = (v: unknown, what: string): Uint8Array => kept(v, what, { bytes: hashBytes });

function decodeEntry(v: unknown): LogEntry {
  const t = asTuple(v, 'entry', 3);
  return {
    update: kept(t[0], 'entry.update', { bytesMax: treeLimits.updateBytesMax }),
    certificate: kept(t[1], 'entry.certificate', { bytesMax: treeLimits.certificateBytesMax }),
    blocks: asList(t[2], 'entry.blocks', treeLimits.blocksPerEntryMax, (b) => asBytesField(b, 'entry.block', { bytesMax: blockBytesMax })),
  };
}

function decodeProofBlock(v: unknown): { kind: BlockKind; bytes: Uint8Array } {
  const t = asTuple(v, 'proof block', 2);
  const kind = blockKinds[asUint(t[0], 'proof block kind', blockKinds.length - 1)]!;
  return { kind, bytes: asBytesField(t[1], 'proof block bytes', { bytesMax: blockBytesMax }) };
}

/** Decodes one wire message; DecodeError (never anything else) for bytes that are not one. */
export function decodeTreeMessage(bytes: Uint8Array): TreeMessage {
  const t = asTuple(decode(bytes, treeLimits.messageBytesMax, 'tree message'), 'tree message', 3, 8);
  const type = typeCodes[asUint(t[0], 'tree message type', typeCodes.length - 1)]!;
  if (asUint(t[1], 'tree message format') !== formatVersion) throw new DecodeError(`tree message: unknown format ${String(t[1])}`);
  const f = t.slice(2);
  const want = (count: number): void => {
    if (f.length !== count) throw new DecodeError(`${type}: expected ${count} fields, got ${f.length}`);
  };
  switch (type) {
    case 'attach':
      want(2);
      return { type, aguid: guid(f[0], 'aguid'), nextVersion: asUint(f[1], 'nextVersion') };
    case 'attach-ok':
      want(3);
      return { type, aguid: guid(f[0], 'aguid'), path: asList(f[1], 'path', treeLimits.pathLengthMax, nodeId), nextVersion: asUint(f[2], 'nextVersion') };
    case 'attach-refused':
      want(2);
      return { type, aguid: guid(f[0], 'aguid'), redirect: asList(f[1], 'redirect', treeLimits.redirectCountMax, nodeId) };
    case 'detach':
      want(1);
      return { type, aguid: guid(f[0], 'aguid') };
    case 'push':
      want(2);
      return { type, aguid: guid(f[0], 'aguid'), entries: asList(f[1], 'entries', treeLimits.entriesPerPushMax, decodeEntry) };
    case 'fetch':
      want(2);
      return { type, aguid: guid(f[0], 'aguid'), fromVersion: asUint(f[1], 'fromVersion') };
    case 'heartbeat':
      want(2);
      return { type, aguid: guid(f[0], 'aguid'), heartbeat: kept(f[1], 'heartbeat', { bytesMax: treeLimits.heartbeatBytesMax }) };
    case 'read':
      want(6);
      return {
        type,
        requestId: asUint(f[0], 'requestId'),
        aguid: guid(f[1], 'aguid'),
        version: asNullable(f[2], (v) => asUint(v, 'version')),
        offset: asUint(f[3], 'offset'),
        length: asUint(f[4], 'length', blockBytesMax * 16),
        maxAgeMs: asUint(f[5], 'maxAgeMs'),
      };
    case 'snapshot':
      want(3);
      return {
        type,
        aguid: guid(f[0], 'aguid'),
        certificate: kept(f[1], 'certificate', { bytesMax: treeLimits.certificateBytesMax }),
        blocks: asList(f[2], 'blocks', treeLimits.snapshotBlocksMax, decodeProofBlock),
      };
    case 'fetch-blocks':
      want(2);
      return { type, aguid: guid(f[0], 'aguid'), bguids: asList(f[1], 'bguids', treeLimits.fetchBlocksMax, (v) => guid(v, 'bguid')) };
    case 'blocks':
      want(3);
      return {
        type,
        aguid: guid(f[0], 'aguid'),
        blocks: asList(f[1], 'blocks', treeLimits.blocksPerEntryMax, (b) => asBytesField(b, 'block', { bytesMax: blockBytesMax })),
        absent: asList(f[2], 'absent', treeLimits.fetchBlocksMax, (v) => guid(v, 'bguid')),
      };
    case 'batch-certificate':
      want(5);
      return {
        type,
        sequence: asUint(f[0], 'sequence'),
        epoch: asUint(f[1], 'epoch'),
        root: guid(f[2], 'root'),
        signature: kept(f[3], 'signature', { bytesMax: treeLimits.signatureBytesMax }),
        statements: asList(f[4], 'statements', treeLimits.statementsPerBatchMax, (v) => kept(v, 'statement', { bytesMax: treeLimits.statementBytesMax })),
      };
    case 'read-reply':
      want(5);
      return {
        type,
        requestId: asUint(f[0], 'requestId'),
        status: readStatuses[asUint(f[1], 'status', readStatuses.length - 1)]!,
        certificate: asNullable(f[2], (v) => kept(v, 'certificate', { bytesMax: treeLimits.certificateBytesMax })),
        heartbeat: asNullable(f[3], (v) => kept(v, 'heartbeat', { bytesMax: treeLimits.heartbeatBytesMax })),
        blocks: asList(f[4], 'blocks', treeLimits.proofBlocksMax, decodeProofBlock),
      };
  }
}
