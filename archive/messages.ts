/**
 * Messages between archivers (beside ring servers), archive servers, repairers and the restore
 * tool. Fragment records and certificates travel as their encoded bytes: the receiver decodes
 * them at its boundary with its own bounds (archive/erasure/fragment-codec.ts,
 * core/threshold/certificate.ts), so a message never carries a half-trusted object.
 *
 * Wire form: msgpack tuples [type, ...fields] (core/codec.ts); decodeArchiveMessage bounds and
 * shape-checks every field and throws DecodeError.
 */
import {
  asBytesField,
  asList,
  asNullable,
  asString,
  asTuple,
  asUint,
  decode,
  encode,
} from '../core/codec.ts';
import { hashBytes } from '../core/crypto.ts';
import { AssertionError } from '../core/assert.ts';
import { DecodeError } from '../core/errors.ts';
import { packFast, type Packable } from '../core/version/fast-msgpack.ts';

export interface HeldFragment {
  bguid: Uint8Array;
  fragmentRoot: Uint8Array;
  index: number;
}

/** One fragment to store; `certificate` only beside a root block's fragments. */
export interface StoreItem {
  fragment: Uint8Array;
  fragmentRoot: Uint8Array;
  certificate: Uint8Array | null;
}

/** What a server holds of one requested block (fragments verified on read; empty when none). */
export interface FetchedBlock {
  bguid: Uint8Array;
  fragments: Uint8Array[];
  certificate: Uint8Array | null;
}

export interface ServerStatus {
  fragmentCount: number;
  certificateCount: number;
  scrubbedCount: number;
  corruptFoundCount: number;
  repairQueuedCount: number;
  repairedFragmentCount: number;
  repairFailedCount: number;
  lostPeers: string[];
}

export type ArchiveMessage =
  /**
   * Store fragments (for a root block, with the version's certificate beside them). Batched per
   * destination so one receipt signature covers a whole version's fragments on that server.
   */
  | { type: 'store'; requestId: number; items: StoreItem[] }
  /** Signed once over every item: "I hold these fragments" (archive/receipt.ts). Refused items are absent. */
  | { type: 'receipt'; requestId: number; items: HeldFragment[]; signature: Uint8Array }
  | { type: 'refused'; requestId: number; reason: string }
  /** Which fragments of these blocks do you hold? (archiver fallback, repair census) */
  | { type: 'probe'; requestId: number; bguids: Uint8Array[] }
  | { type: 'probeReply'; requestId: number; held: HeldFragment[] }
  /** Every verified fragment of these blocks the server holds, plus certificates (batched: one round trip for many blocks). */
  | { type: 'fetch'; requestId: number; bguids: Uint8Array[] }
  | { type: 'fetchReply'; requestId: number; blocks: FetchedBlock[] }
  /** Certificates stored beside root blocks, in key order after `after` (paging). */
  /** `aguid`: only that object's certificates (an archive server's per-object index). */
  | { type: 'listCertificates'; requestId: number; after: string; limit: number; aguid?: Uint8Array }
  | { type: 'certificates'; requestId: number; certificates: Uint8Array[]; next: string | null }
  | { type: 'status'; requestId: number }
  | { type: 'statusReply'; requestId: number; status: ServerStatus }
  /**
   * Liveness between archive servers: any message counts, pings keep silence meaningful. `coding`
   * is the sender's config.erasure, so a server configured otherwise is named at once (each
   * refuses the other's repaired fragments; second review, finding 1). Absent: not said.
   */
  | { type: 'ping'; coding?: { k: number; m: number } };

export type ArchiveMessageType = ArchiveMessage['type'];

/** Bounds on everything a peer can make us allocate. */
export const archiveLimits = {
  fragmentBytesMax: 16 * 2 ** 20 + 4096,
  certificateBytesMax: 4096,
  probeBguidsMax: 1024,
  heldMax: 1024 * 8,
  fragmentsPerReplyMax: 256,
  /**
   * Fragment bytes one fetch reply carries at most: the rest of messageBytesMax is headroom for 256
   * blocks' BGUIDs, certificates and framing. A reply holding every fragment of 64 blocks of 4 MiB
   * was over messageBytesMax and refused by the client (session-20 review, finding 3).
   */
  fetchReplyBytesMax: 48 * 2 ** 20,
  fetchBguidsMax: 256,
  storeItemsMax: 1024,
  certificatesPerReplyMax: 1024,
  reasonLengthMax: 256,
  keyLengthMax: 512,
  messageBytesMax: 64 * 2 ** 20,
} as const;

const hash = { bytes: hashBytes };

function heldTuple(h: HeldFragment): unknown[] {
  return [h.bguid, h.fragmentRoot, h.index];
}

/**
 * The messages that carry fragments, as tuples packed by core/version/fast-msgpack.ts into one
 * exactly sized buffer, each fragment copied once (msgpackr grew its buffer as it went, copying
 * what it had written, and the host then copied the whole frame again to put the channel byte in
 * front). The bytes are the same as msgpackr's.
 */
function fragmentCarryingTuple(message: ArchiveMessage): Packable[] | null {
  switch (message.type) {
    case 'store':
      return ['store', message.requestId, message.items.map((i) => [i.fragment, i.fragmentRoot, i.certificate])];
    case 'fetchReply':
      return ['fetchReply', message.requestId, message.blocks.map((b) => [b.bguid, b.fragments, b.certificate])];
    default:
      return null;
  }
}

/**
 * encodeArchiveMessage's bytes after `reservedBytes` free bytes (a transport's channel byte), so a
 * frame of fragments is written once: what an archive server serves and an archiver stores.
 */
export function encodeArchiveFrame(message: ArchiveMessage, reservedBytes: number): Uint8Array {
  const tuple = fragmentCarryingTuple(message);
  if (tuple) return packFast(tuple, reservedBytes);
  const body = encodeArchiveMessage(message);
  const frame = new Uint8Array(reservedBytes + body.length);
  frame.set(body, reservedBytes);
  return frame;
}

export function encodeArchiveMessage(message: ArchiveMessage): Uint8Array {
  const tuple = fragmentCarryingTuple(message);
  if (tuple) return packFast(tuple);
  switch (message.type) {
    case 'store':
    case 'fetchReply':
      throw new AssertionError(`${message.type} is packed by packFast`);
    case 'receipt':
      return encode(['receipt', message.requestId, message.items.map(heldTuple), message.signature]);
    case 'refused':
      return encode(['refused', message.requestId, message.reason]);
    case 'probe':
      return encode(['probe', message.requestId, message.bguids]);
    case 'probeReply':
      return encode(['probeReply', message.requestId, message.held.map(heldTuple)]);
    case 'fetch':
      return encode(['fetch', message.requestId, message.bguids]);
    case 'listCertificates':
      return encode(['listCertificates', message.requestId, message.after, message.limit, ...(message.aguid ? [message.aguid] : [])]);
    case 'certificates':
      return encode(['certificates', message.requestId, message.certificates, message.next]);
    case 'status':
      return encode(['status', message.requestId]);
    case 'statusReply': {
      const s = message.status;
      const counts = [s.fragmentCount, s.certificateCount, s.scrubbedCount, s.corruptFoundCount, s.repairQueuedCount, s.repairedFragmentCount, s.repairFailedCount];
      return encode(['statusReply', message.requestId, counts, s.lostPeers]);
    }
    case 'ping':
      return encode(message.coding ? ['ping', message.coding.k, message.coding.m] : ['ping']);
  }
}

const L = archiveLimits;

function heldFromTuple(h: unknown): HeldFragment {
  const f = asTuple(h, 'held fragment', 3);
  return { bguid: asBytesField(f[0], 'held bguid', hash), fragmentRoot: asBytesField(f[1], 'held root', hash), index: asUint(f[2], 'held index', 255) };
}

export function decodeArchiveMessage(bytes: Uint8Array, bytesMax: number = L.messageBytesMax): ArchiveMessage {
  const value = decode(bytes, bytesMax, 'archive message');
  if (!Array.isArray(value) || typeof value[0] !== 'string') throw new DecodeError('archive message: expected [type, ...]');
  const type = value[0];
  const req = (v: unknown): number => asUint(v, `${type} requestId`);
  switch (type) {
    case 'store': {
      const t = asTuple(value, type, 3);
      const items = asList(t[2], 'store items', L.storeItemsMax, (v) => {
        const i = asTuple(v, 'store item', 3);
        return {
          fragment: asBytesField(i[0], 'store fragment', { bytesMax: L.fragmentBytesMax }),
          fragmentRoot: asBytesField(i[1], 'store fragmentRoot', hash),
          certificate: asNullable(i[2], (c) => asBytesField(c, 'store certificate', { bytesMax: L.certificateBytesMax })),
        };
      });
      return { type, requestId: req(t[1]), items };
    }
    case 'receipt': {
      const t = asTuple(value, type, 4);
      return {
        type,
        requestId: req(t[1]),
        items: asList(t[2], 'receipt items', L.storeItemsMax, heldFromTuple),
        signature: asBytesField(t[3], 'receipt signature', { bytes: 64 }),
      };
    }
    case 'refused': {
      const t = asTuple(value, type, 3);
      return { type, requestId: req(t[1]), reason: asString(t[2], 'refused reason', L.reasonLengthMax) };
    }
    case 'probe': {
      const t = asTuple(value, type, 3);
      return { type, requestId: req(t[1]), bguids: asList(t[2], 'probe bguids', L.probeBguidsMax, (b) => asBytesField(b, 'probe bguid', hash)) };
    }
    case 'probeReply': {
      const t = asTuple(value, type, 3);
      const held = asList(t[2], 'probeReply held', L.heldMax, heldFromTuple);
      return { type, requestId: req(t[1]), held };
    }
    case 'fetch': {
      const t = asTuple(value, type, 3);
      return { type, requestId: req(t[1]), bguids: asList(t[2], 'fetch bguids', L.fetchBguidsMax, (b) => asBytesField(b, 'fetch bguid', hash)) };
    }
    case 'fetchReply': {
      const t = asTuple(value, type, 3);
      const blocks = asList(t[2], 'fetchReply blocks', L.fetchBguidsMax, (v) => {
        const b = asTuple(v, 'fetched block', 3);
        return {
          bguid: asBytesField(b[0], 'fetched bguid', hash),
          fragments: asList(b[1], 'fetched fragments', L.fragmentsPerReplyMax, (f) => asBytesField(f, 'fetched fragment', { bytesMax: L.fragmentBytesMax })),
          certificate: asNullable(b[2], (c) => asBytesField(c, 'fetched certificate', { bytesMax: L.certificateBytesMax })),
        };
      });
      return { type, requestId: req(t[1]), blocks };
    }
    case 'listCertificates': {
      const t = asTuple(value, type, 4, 5);
      const list = { type, requestId: req(t[1]), after: asString(t[2], 'list after', L.keyLengthMax), limit: asUint(t[3], 'list limit', L.certificatesPerReplyMax) } as const;
      return t.length === 5 ? { ...list, aguid: asBytesField(t[4], 'list aguid', hash) } : list;
    }
    case 'certificates': {
      const t = asTuple(value, type, 4);
      return {
        type,
        requestId: req(t[1]),
        certificates: asList(t[2], 'certificates', L.certificatesPerReplyMax, (c) => asBytesField(c, 'certificate', { bytesMax: L.certificateBytesMax })),
        next: asNullable(t[3], (n) => asString(n, 'certificates next', L.keyLengthMax)),
      };
    }
    case 'status':
      return { type, requestId: req(asTuple(value, type, 2)[1]) };
    case 'statusReply': {
      const t = asTuple(value, type, 4);
      const c = asList(t[2], 'status counts', 7, (v) => asUint(v, 'status count'));
      if (c.length !== 7) throw new DecodeError('status counts: expected 7');
      const lostPeers = asList(t[3], 'status lostPeers', 4096, (p) => asString(p, 'lost peer', 256));
      const [fragmentCount, certificateCount, scrubbedCount, corruptFoundCount, repairQueuedCount, repairedFragmentCount, repairFailedCount] = c as [number, number, number, number, number, number, number];
      return {
        type,
        requestId: req(t[1]),
        status: { fragmentCount, certificateCount, scrubbedCount, corruptFoundCount, repairQueuedCount, repairedFragmentCount, repairFailedCount, lostPeers },
      };
    }
    case 'ping': {
      const t = asTuple(value, type, 1, 3);
      if (t.length === 1) return { type };
      if (t.length !== 3) throw new DecodeError('ping: expected no coding or both k and m');
      return { type, coding: { k: asUint(t[1], 'ping k', 255), m: asUint(t[2], 'ping m', 255) } };
    }
    default:
      throw new DecodeError(`archive message: unknown type ${JSON.stringify(type).slice(0, 40)}`);
  }
}
