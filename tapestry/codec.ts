/**
 * Wire format of Tapestry messages: a msgpack array [tag, ...fields] (core/codec.ts rules: tuples,
 * never maps). Ids are 20 raw bytes, node refs are [id, name]. Decoding bounds the size, checks
 * every field and throws DecodeError; nothing else reaches the core.
 */
import { asBool, asBytesField, asList, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { DecodeError } from '../core/errors.ts';
import { unreachable } from '../core/assert.ts';
import { ed25519SignatureBytes } from '../core/crypto.ts';
import { idBytes, idDigits, idFromBytes, idToBytes } from './id.ts';
import type { NodeRef, TapestryId } from './id.ts';
import { listCountMax, messageBytesMax, nameLengthMax } from './messages.ts';
import type { PublishOp, TapestryMessage, TapestryMessageKind } from './messages.ts';

const tags: Record<TapestryMessageKind, number> = {
  ping: 1,
  pong: 2,
  backpointer: 3,
  route: 4,
  routeReply: 5,
  publish: 6,
  locate: 7,
  locateReply: 8,
  joinRequest: 9,
  candidates: 10,
  multicast: 11,
  multicastAck: 12,
  joinDone: 13,
  neighbourQuery: 14,
  leaving: 15,
  lookup: 16,
  lookupReply: 17,
};
const kindOfTag = new Map<number, TapestryMessageKind>(
  Object.entries(tags).map(([k, v]) => [v, k as TapestryMessageKind]),
);

/** A publish's op on the wire: its index here. */
const publishOps: readonly PublishOp[] = ['publish', 'unpublish', 'retract'];

/** Hops beyond this are a routing loop or an attack; routed messages carry at most this. */
export const hopsMax = 128;

function ref(r: NodeRef): [Uint8Array, string] {
  return [idToBytes(r.id), r.name];
}

export function encodeTapestryMessage(m: TapestryMessage): Uint8Array {
  const t = tags[m.kind];
  switch (m.kind) {
    case 'ping':
      // The flag is a fourth field only when set: a probe's encoding is unchanged.
      return encode(m.holding ? [t, ref(m.sender), m.sentAtMs, true] : [t, ref(m.sender), m.sentAtMs]);
    case 'pong':
      return encode([t, ref(m.sender), m.sentAtMs]);
    case 'backpointer':
      return encode([t, ref(m.sender), m.add]);
    case 'route':
      return encode([t, m.requestId, ref(m.origin), idToBytes(m.targetId), m.level, m.hops]);
    case 'routeReply':
      return encode([t, m.requestId, idToBytes(m.targetId), ref(m.root), m.hops]);
    case 'publish':
      return encode([t, idToBytes(m.objectId), ref(m.server), m.level, m.hops, publishOps.indexOf(m.op), m.issuedAtMs, m.signature, m.sideCopy]);
    case 'locate':
      return encode([t, m.requestId, ref(m.origin), idToBytes(m.objectId), m.level, m.hops]);
    case 'locateReply':
      return encode([t, m.requestId, idToBytes(m.objectId), m.server ? ref(m.server) : null, m.issuedAtMs, m.signature, ref(m.answeredBy), m.hops]);
    case 'joinRequest':
      return encode([t, ref(m.joiner), m.level, m.hops]);
    case 'candidates':
      return encode([t, m.nodes.map(ref)]);
    case 'multicast':
      return encode([t, ref(m.sender), ref(m.joiner), m.prefixLength, m.rootPrefixLength]);
    case 'multicastAck':
      return encode([t, idToBytes(m.joinerId)]);
    case 'joinDone':
      return encode([t, m.prefixLength]);
    case 'neighbourQuery':
      return encode([t, m.level]);
    case 'leaving':
      return encode([t, ref(m.sender), m.replacements.map(ref)]);
    case 'lookup':
      return encode([t, m.requestId, idToBytes(m.objectId)]);
    case 'lookupReply':
      return encode([t, m.requestId, idToBytes(m.objectId), m.server ? ref(m.server) : null, m.issuedAtMs, m.signature, m.hops, m.answered]);
    default:
      return unreachable(m, 'unknown tapestry message kind');
  }
}

function asId(v: unknown, what: string): TapestryId {
  return idFromBytes(asBytesField(v, what, { bytes: idBytes }));
}

function asRef(v: unknown, what: string): NodeRef {
  const [id, name] = asTuple(v, what, 2);
  const nameText = asString(name, `${what}.name`, nameLengthMax);
  if (nameText.length === 0) throw new DecodeError(`${what}.name: empty`);
  return { id: asId(id, `${what}.id`), name: nameText };
}

function asRefs(v: unknown, what: string): NodeRef[] {
  return asList(v, what, listCountMax, (item, i) => asRef(item, `${what}[${i}]`));
}

/** Host clock readings: the simulator's virtual time is fractional, so any finite value >= 0. */
function asTimeMs(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new DecodeError(`${what}: expected a non-negative time`);
  return v;
}

const asLevel = (v: unknown, what: string): number => asUint(v, what, idDigits);

/** A statement's signature: 64 bytes, or none where nodes run unsigned. */
function asSignature(v: unknown, what: string): Uint8Array {
  const bytes = asBytesField(v, what, { bytesMax: ed25519SignatureBytes });
  if (bytes.length !== 0 && bytes.length !== ed25519SignatureBytes) throw new DecodeError(`${what}: expected 0 or ${ed25519SignatureBytes} bytes, got ${bytes.length}`);
  return bytes;
}
const asHops = (v: unknown, what: string): number => asUint(v, what, hopsMax);

/** Decodes one message; DecodeError (naming the field) on anything malformed or oversized. */
export function decodeTapestryMessage(bytes: Uint8Array): TapestryMessage {
  const raw = decode(bytes, messageBytesMax, 'tapestry message');
  if (!Array.isArray(raw) || raw.length === 0) throw new DecodeError('tapestry message: expected a tagged array');
  const kind = kindOfTag.get(raw[0] as number);
  if (kind === undefined) throw new DecodeError(`tapestry message: unknown tag ${String(raw[0])}`);
  const w = `tapestry ${kind}`;
  switch (kind) {
    case 'ping': {
      const [, s, at, holding] = asTuple(raw, w, 3, 4);
      const ping = { kind, sender: asRef(s, `${w}.sender`), sentAtMs: asTimeMs(at, `${w}.sentAtMs`) };
      if (holding === undefined) return ping;
      if (holding !== true) throw new DecodeError(`${w}.holding: expected true or absent`);
      return { ...ping, holding };
    }
    case 'pong': {
      const [, s, at] = asTuple(raw, w, 3);
      return { kind, sender: asRef(s, `${w}.sender`), sentAtMs: asTimeMs(at, `${w}.sentAtMs`) };
    }
    case 'backpointer': {
      const [, s, add] = asTuple(raw, w, 3);
      return { kind, sender: asRef(s, `${w}.sender`), add: asBool(add, `${w}.add`) };
    }
    case 'route':
    case 'locate': {
      const [, rid, origin, target, level, hops] = asTuple(raw, w, 6);
      const common = {
        requestId: asUint(rid, `${w}.requestId`),
        origin: asRef(origin, `${w}.origin`),
        level: asLevel(level, `${w}.level`),
        hops: asHops(hops, `${w}.hops`),
      };
      return kind === 'route'
        ? { kind, ...common, targetId: asId(target, `${w}.targetId`) }
        : { kind, ...common, objectId: asId(target, `${w}.objectId`) };
    }
    case 'routeReply': {
      const [, rid, target, root, hops] = asTuple(raw, w, 5);
      return {
        kind,
        requestId: asUint(rid, `${w}.requestId`),
        targetId: asId(target, `${w}.targetId`),
        root: asRef(root, `${w}.root`),
        hops: asHops(hops, `${w}.hops`),
      };
    }
    case 'publish': {
      const [, object, server, level, hops, op, issued, signature, sideCopy] = asTuple(raw, w, 9);
      return {
        kind,
        objectId: asId(object, `${w}.objectId`),
        server: asRef(server, `${w}.server`),
        level: asLevel(level, `${w}.level`),
        hops: asHops(hops, `${w}.hops`),
        op: publishOps[asUint(op, `${w}.op`, publishOps.length - 1)]!,
        issuedAtMs: asTimeMs(issued, `${w}.issuedAtMs`),
        signature: asSignature(signature, `${w}.signature`),
        sideCopy: asBool(sideCopy, `${w}.sideCopy`),
      };
    }
    case 'locateReply': {
      const [, rid, object, server, issued, signature, by, hops] = asTuple(raw, w, 8);
      return {
        kind,
        requestId: asUint(rid, `${w}.requestId`),
        objectId: asId(object, `${w}.objectId`),
        server: server === null ? null : asRef(server, `${w}.server`),
        issuedAtMs: asTimeMs(issued, `${w}.issuedAtMs`),
        signature: asSignature(signature, `${w}.signature`),
        answeredBy: asRef(by, `${w}.answeredBy`),
        hops: asHops(hops, `${w}.hops`),
      };
    }
    case 'joinRequest': {
      const [, joiner, level, hops] = asTuple(raw, w, 4);
      return { kind, joiner: asRef(joiner, `${w}.joiner`), level: asLevel(level, `${w}.level`), hops: asHops(hops, `${w}.hops`) };
    }
    case 'candidates': {
      const [, nodes] = asTuple(raw, w, 2);
      return { kind, nodes: asRefs(nodes, `${w}.nodes`) };
    }
    case 'multicast': {
      const [, sender, joiner, prefix, rootPrefix] = asTuple(raw, w, 5);
      return {
        kind, sender: asRef(sender, `${w}.sender`), joiner: asRef(joiner, `${w}.joiner`),
        prefixLength: asLevel(prefix, `${w}.prefixLength`), rootPrefixLength: asLevel(rootPrefix, `${w}.rootPrefixLength`),
      };
    }
    case 'multicastAck': {
      const [, joiner] = asTuple(raw, w, 2);
      return { kind, joinerId: asId(joiner, `${w}.joinerId`) };
    }
    case 'joinDone': {
      const [, prefix] = asTuple(raw, w, 2);
      return { kind, prefixLength: asLevel(prefix, `${w}.prefixLength`) };
    }
    case 'neighbourQuery': {
      const [, level] = asTuple(raw, w, 2);
      return { kind, level: asUint(level, `${w}.level`, idDigits - 1) };
    }
    case 'leaving': {
      const [, s, reps] = asTuple(raw, w, 3);
      return { kind, sender: asRef(s, `${w}.sender`), replacements: asRefs(reps, `${w}.replacements`) };
    }
    case 'lookup': {
      const [, rid, object] = asTuple(raw, w, 3);
      return { kind, requestId: asUint(rid, `${w}.requestId`), objectId: asId(object, `${w}.objectId`) };
    }
    case 'lookupReply': {
      const [, rid, object, server, issued, signature, hops, answered] = asTuple(raw, w, 8);
      return {
        kind,
        requestId: asUint(rid, `${w}.requestId`),
        objectId: asId(object, `${w}.objectId`),
        server: server === null ? null : asRef(server, `${w}.server`),
        issuedAtMs: asTimeMs(issued, `${w}.issuedAtMs`),
        signature: asSignature(signature, `${w}.signature`),
        hops: asHops(hops, `${w}.hops`),
        answered: asBool(answered, `${w}.answered`),
      };
    }
    default:
      return unreachable(kind, 'unknown tapestry tag');
  }
}
