/**
 * Wire format of updates (v1), msgpack tuples:
 *   update    ['update', 1, aguid, writerPublicKey, nonce, [clause...], signature]
 *   clause    [[predicate...], [action...]]
 *   predicate ['always'] | ['version-is', n] | ['size-is', n] | ['block-hash-is', index, bguid]
 *             | ['bytes-equal', offset, bytes] | ['bytes-hash-is', offset, length, sha256]
 *   action    ['create', name, blockBytes, fanoutMax, [writer...]] | ['write-bytes', offset, bytes]
 *             | ['append', bytes] | ['append-blocks', [source...]] | ['replace-block', index, source]
 *             | ['insert-block', index, source] | ['delete-block', index] | ['truncate', sizeBytes]
 *             | ['set-acl', [writer...]]
 *   source    ['inline', bytes] | ['ref', bguid, length]
 * The signed and digested body is the same tuple without the signature. Decoding checks shapes and
 * bounds only; whether an action fits the object (offsets, blockBytes, ACL) is apply's business.
 */
import { unreachable } from '../assert.ts';
import { asBytesField, asList, asLiteral, asString, asTuple, asUint, decode, scan } from '../codec.ts';
import { type Packable, packFast } from '../version/fast-msgpack.ts';
import { ed25519PublicKeyBytes, ed25519SignatureBytes, hashBytes } from '../crypto.ts';
import { DecodeError, InvalidArgumentError, checkArgument } from '../errors.ts';
import { blockBytesMax } from '../version/block.ts';
import { fanoutLimit } from '../version/interior-block.ts';
import { aclWritersMax } from '../version/root-block.ts';
import type { Action, BlockSource, Clause, Predicate, UnsignedUpdate, Update } from './update.ts';

/**
 * An update carries at most one maximal block inline plus headroom; larger data goes by
 * reference. The ring's request codec carries exactly this much (ring/codec.ts operationBytesMax).
 */
export const updateBytesMax = blockBytesMax + 64 * 1024;
/**
 * What one update's predicates may read of the object, in all (bytes-equal and bytes-hash-is): a
 * hash over gigabytes would run on every replica (256 MiB took 0.5 s, and 2 GiB or more threw).
 */
export const predicateReadBytesMax = 16 * 1024 * 1024;
/**
 * Largest object (1 PiB): past 2^53 bytes a size is no longer an exact number, and growing an
 * object is cheap (references to one uploaded block), so apply refuses to grow one further.
 */
export const objectBytesMax = 2 ** 50;
/** New data blocks one update may make (an inline append is cut into leaves of the object's blockBytes). */
export const leavesPerUpdateMax = 65_536;
/**
 * Bytes of existing leaves one update may read to rewrite them (a write that covers part of a leaf
 * rewrites the whole leaf): four maximal leaves, where one write across a boundary needs two.
 */
export const leafRewriteBytesMax = 4 * blockBytesMax;
export const clauseCountMax = 16;
export const predicateCountMax = 32;
export const actionCountMax = 64;
/** 65,536 references of 64 KiB blocks append 4 GiB in one update. */
export const appendBlockCountMax = 65_536;
export const objectNameLengthMax = 256;

const recordTag = 'update';
const formatVersion = 1;

function encodeSource(s: BlockSource): Packable[] {
  return s.kind === 'inline' ? ['inline', s.bytes] : ['ref', s.bguid, s.length];
}

function encodePredicate(p: Predicate): Packable[] {
  switch (p.kind) {
    case 'always':
      return ['always'];
    case 'version-is':
      return ['version-is', p.version];
    case 'size-is':
      return ['size-is', p.sizeBytes];
    case 'block-hash-is':
      return ['block-hash-is', p.index, p.bguid];
    case 'bytes-equal':
      return ['bytes-equal', p.offset, p.bytes];
    case 'bytes-hash-is':
      return ['bytes-hash-is', p.offset, p.length, p.sha256];
    default:
      return unreachable(p, 'predicate kind');
  }
}

function encodeAction(a: Action): Packable[] {
  switch (a.kind) {
    case 'create':
      return ['create', a.name, a.blockBytes, a.fanoutMax, a.writerPublicKeys];
    case 'write-bytes':
      return ['write-bytes', a.offset, a.bytes];
    case 'append':
      return ['append', a.bytes];
    case 'append-blocks':
      return ['append-blocks', a.blocks.map(encodeSource)];
    case 'replace-block':
    case 'insert-block':
      return [a.kind, a.index, encodeSource(a.block)];
    case 'delete-block':
      return ['delete-block', a.index];
    case 'truncate':
      return ['truncate', a.sizeBytes];
    case 'set-acl':
      return ['set-acl', a.writerPublicKeys];
    default:
      return unreachable(a, 'action kind');
  }
}

function bodyOf(u: UnsignedUpdate): Packable[] {
  return [
    recordTag,
    formatVersion,
    u.aguid,
    u.writerPublicKey,
    u.nonce,
    u.clauses.map((c) => [c.predicates.map(encodePredicate), c.actions.map(encodeAction)]),
  ];
}

/** The bytes a writer signs and the ring digests. */
export function encodeUnsignedUpdate(u: UnsignedUpdate): Uint8Array {
  return packFast(bodyOf(u));
}

/** InvalidArgumentError if the update is larger than the ring carries (send large data as uploaded blocks). */
export function encodeUpdate(u: Update): Uint8Array {
  const bytes = packFast([...bodyOf(u), u.signature]);
  checkArgument(bytes.length <= updateBytesMax, 'update', `at most ${updateBytesMax} bytes encoded, not ${bytes.length} (upload large data as blocks and append them by reference)`);
  // What decodeUpdate would refuse (e.g. hundreds of one-byte predicates and actions: more
  // records than the decoder allows for the size) must not be sent, to be refused as malformed.
  try {
    scan(bytes, 'update');
  } catch (error) {
    throw new InvalidArgumentError(`${(error as Error).message}: fewer, larger clauses, predicates or actions`);
  }
  return bytes;
}

function decodeSource(value: unknown, what: string): BlockSource {
  const t = asTuple(value, what, 2, 3);
  if (t[0] === 'inline' && t.length === 2) {
    const bytes = asBytesField(t[1], `${what} bytes`, { bytesMax: blockBytesMax });
    return { kind: 'inline', bytes };
  }
  if (t[0] === 'ref' && t.length === 3) {
    const bguid = asBytesField(t[1], `${what} bguid`, { bytes: hashBytes });
    return { kind: 'ref', bguid, length: asUint(t[2], `${what} length`, blockBytesMax) };
  }
  throw new DecodeError(`${what}: expected ['inline', bytes] or ['ref', bguid, length]`);
}

const keysOf = (v: unknown, what: string): Uint8Array[] =>
  asList(v, what, aclWritersMax, (k, i) => asBytesField(k, `${what} ${i}`, { bytes: ed25519PublicKeyBytes }));

function decodePredicate(value: unknown, what: string): Predicate {
  const t = asTuple(value, what, 1, 4);
  const field = (i: number, name: string, max?: number): number => asUint(t[i], `${what} ${name}`, max);
  const shape = (n: number): void => void asTuple(t, `${what} (${String(t[0])})`, n);
  switch (t[0]) {
    case 'always':
      return shape(1), { kind: 'always' };
    case 'version-is':
      return shape(2), { kind: 'version-is', version: field(1, 'version') };
    case 'size-is':
      return shape(2), { kind: 'size-is', sizeBytes: field(1, 'sizeBytes') };
    case 'block-hash-is':
      shape(3);
      return { kind: 'block-hash-is', index: field(1, 'index'), bguid: asBytesField(t[2], `${what} bguid`, { bytes: hashBytes }) };
    case 'bytes-equal':
      shape(3);
      return { kind: 'bytes-equal', offset: field(1, 'offset'), bytes: asBytesField(t[2], `${what} bytes`, { bytesMax: updateBytesMax }) };
    case 'bytes-hash-is':
      shape(4);
      return {
        kind: 'bytes-hash-is',
        offset: field(1, 'offset'),
        length: field(2, 'length', predicateReadBytesMax),
        sha256: asBytesField(t[3], `${what} sha256`, { bytes: hashBytes }),
      };
    default:
      throw new DecodeError(`${what}: unknown predicate`);
  }
}

function decodeAction(value: unknown, what: string): Action {
  const t = asTuple(value, what, 2, 5);
  const field = (i: number, name: string, max?: number): number => asUint(t[i], `${what} ${name}`, max);
  const shape = (n: number): void => void asTuple(t, `${what} (${String(t[0])})`, n);
  switch (t[0]) {
    case 'create':
      shape(5);
      return {
        kind: 'create',
        name: asString(t[1], `${what} name`, objectNameLengthMax),
        blockBytes: field(2, 'blockBytes', blockBytesMax),
        fanoutMax: field(3, 'fanoutMax', fanoutLimit),
        writerPublicKeys: keysOf(t[4], `${what} writers`),
      };
    case 'write-bytes':
      shape(3);
      return { kind: 'write-bytes', offset: field(1, 'offset'), bytes: asBytesField(t[2], `${what} bytes`, { bytesMax: updateBytesMax }) };
    case 'append':
      shape(2);
      return { kind: 'append', bytes: asBytesField(t[1], `${what} bytes`, { bytesMax: updateBytesMax }) };
    case 'append-blocks':
      shape(2);
      return { kind: 'append-blocks', blocks: asList(t[1], `${what} blocks`, appendBlockCountMax, (v, i) => decodeSource(v, `${what} block ${i}`)) };
    case 'replace-block':
    case 'insert-block':
      shape(3);
      return { kind: t[0], index: field(1, 'index'), block: decodeSource(t[2], `${what} block`) };
    case 'delete-block':
      return shape(2), { kind: 'delete-block', index: field(1, 'index') };
    case 'truncate':
      return shape(2), { kind: 'truncate', sizeBytes: field(1, 'sizeBytes') };
    case 'set-acl':
      return shape(2), { kind: 'set-acl', writerPublicKeys: keysOf(t[1], `${what} writers`) };
    default:
      throw new DecodeError(`${what}: unknown action`);
  }
}

function decodeClause(value: unknown, i: number): Clause {
  const t = asTuple(value, `clause ${i}`, 2);
  return {
    predicates: asList(t[0], `clause ${i} predicates`, predicateCountMax, (v, j) => decodePredicate(v, `clause ${i} predicate ${j}`)),
    actions: asList(t[1], `clause ${i} actions`, actionCountMax, (v, j) => decodeAction(v, `clause ${i} action ${j}`)),
  };
}

/** Decodes an update from a peer: bounded, shape-checked; DecodeError on anything else. Does not verify the signature. */
export function decodeUpdate(bytes: Uint8Array): Update {
  const t = asTuple(decode(bytes, updateBytesMax, 'update'), 'update', 7);
  asLiteral(t[0], 'update tag', recordTag);
  asLiteral(t[1], 'update format', formatVersion);
  const clauses = asList(t[5], 'update clauses', clauseCountMax, decodeClause);
  if (clauses.length === 0) throw new DecodeError('update: no clauses');
  return {
    aguid: asBytesField(t[2], 'update aguid', { bytes: hashBytes }),
    writerPublicKey: asBytesField(t[3], 'update writer', { bytes: ed25519PublicKeyBytes }),
    nonce: asUint(t[4], 'update nonce'),
    clauses,
    signature: asBytesField(t[6], 'update signature', { bytes: ed25519SignatureBytes }),
  };
}
