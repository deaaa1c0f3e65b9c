/**
 * Action execution on a working copy of one object. Every check on peer-supplied values happens
 * here, before the tree is touched, so the tree edits never throw on peer input; a failed check
 * returns an abort reason and the caller discards the whole clause.
 */
import { bytesEqual } from '../bytes.ts';
import { type Crypto, aguidOf, ed25519PublicKeyBytes } from '../crypto.ts';
import { blockBytesMax } from '../version/block.ts';
import { type Pointer, fanoutLimit, fanoutMin } from '../version/interior-block.ts';
import { type TreeRoot, aclWritersMax } from '../version/root-block.ts';
import * as edit from '../version/tree-edit.ts';
import type { TreeReader } from '../version/tree-read.ts';
import type { TreeWriter } from '../version/tree-splice.ts';
import type { Action, BlockSource } from './update.ts';
import { objectBytesMax } from './update-codec.ts';

export type AbortReason =
  | 'unauthorized'
  | 'predicates-failed'
  | 'wrong-object'
  | 'no-object'
  | 'exists'
  | 'bad-aguid'
  | 'bad-create'
  | 'bad-acl'
  | 'out-of-range'
  | 'missing-block'
  | 'bad-block'
  | 'too-large';

export interface ActionFailure {
  readonly reason: AbortReason;
  readonly detail: string;
}

/** The object as a clause changes it. `exists` is false until a create runs on a new AGUID. */
export interface WorkingObject {
  exists: boolean;
  tree: TreeRoot | null;
  blockBytes: number;
  fanoutMax: number;
  ownerPublicKey: Uint8Array;
  writerPublicKeys: readonly Uint8Array[];
  /** Uploaded blocks this clause made the object reference (not written by apply). */
  readonly referenced: Uint8Array[];
}

export interface ActionContext {
  readonly crypto: Crypto;
  /** Reads and stages blocks (a StagingBlockStore, so an abort leaves the real store untouched). */
  readonly reader: TreeReader;
  readonly aguid: Uint8Array;
  readonly writerPublicKey: Uint8Array;
}

const fail = (reason: AbortReason, detail: string): ActionFailure => ({ reason, detail });

function sizeOf(o: WorkingObject): number {
  return o.tree?.byteCount ?? 0;
}

function writerOf(ctx: ActionContext, o: WorkingObject): TreeWriter {
  return { ...ctx.reader, shape: { blockBytes: o.blockBytes, fanoutMax: o.fanoutMax } };
}

function leafOf(ctx: ActionContext, o: WorkingObject, source: BlockSource): Pointer | ActionFailure {
  const length = source.kind === 'inline' ? source.bytes.length : source.length;
  if (length < 1 || length > o.blockBytes) return fail('bad-block', `a block holds 1..${o.blockBytes} bytes, got ${length}`);
  if (source.kind === 'inline') return edit.putLeaf(writerOf(ctx, o), source.bytes);
  const stored = ctx.reader.blocks.byteLengthOf(source.bguid, 'data');
  if (stored === undefined) return fail('missing-block', 'a referenced data block has not been uploaded');
  if (stored !== length) return fail('bad-block', `a referenced block has ${stored} bytes, the update says ${length}`);
  o.referenced.push(source.bguid);
  return { bguid: source.bguid, byteCount: length, leafCount: 1 };
}

function isLeaf(v: Pointer | ActionFailure): v is Pointer {
  return 'bguid' in v;
}

/** decodeUpdate already bounds these; checked again so a root block is always decodable whoever built the update. */
function checkAcl(keys: readonly Uint8Array[]): ActionFailure | null {
  if (keys.length > aclWritersMax) return fail('bad-acl', `at most ${aclWritersMax} writers`);
  if (keys.some((k) => k.length !== ed25519PublicKeyBytes)) return fail('bad-acl', 'writer keys are 32-byte ed25519 public keys');
  return null;
}

function create(ctx: ActionContext, o: WorkingObject, a: Extract<Action, { kind: 'create' }>): ActionFailure | null {
  if (o.exists) return fail('exists', 'create on an object that already exists');
  if (a.blockBytes < 1 || a.blockBytes > blockBytesMax) return fail('bad-create', `blockBytes must be 1..${blockBytesMax}`);
  if (a.fanoutMax < fanoutMin || a.fanoutMax > fanoutLimit) return fail('bad-create', `fanoutMax must be ${fanoutMin}..${fanoutLimit}`);
  const aclProblem = checkAcl(a.writerPublicKeys);
  if (aclProblem) return aclProblem;
  if (!bytesEqual(aguidOf(ctx.crypto, ctx.writerPublicKey, a.name), ctx.aguid)) {
    return fail('bad-aguid', 'the AGUID is not aguidOf(writer, name)');
  }
  Object.assign(o, {
    exists: true,
    tree: null,
    blockBytes: a.blockBytes,
    fanoutMax: a.fanoutMax,
    ownerPublicKey: ctx.writerPublicKey,
    writerPublicKeys: a.writerPublicKeys,
  });
  return null;
}

/** The object's size after `a` at most (before it checks its arguments), for the objectBytesMax bound. */
function grownSize(o: WorkingObject, a: Action): number {
  switch (a.kind) {
    case 'append':
      return sizeOf(o) + a.bytes.length;
    case 'write-bytes':
      return Math.max(sizeOf(o), a.offset + a.bytes.length);
    case 'append-blocks':
      return a.blocks.reduce((size, b) => size + (b.kind === 'inline' ? b.bytes.length : b.length), sizeOf(o));
    case 'insert-block':
      return sizeOf(o) + (a.block.kind === 'inline' ? a.block.bytes.length : a.block.length);
    default:
      return 0;
  }
}

/** Runs one action on `o`; null on success. */
export function runAction(ctx: ActionContext, o: WorkingObject, a: Action): ActionFailure | null {
  if (a.kind === 'create') return create(ctx, o, a);
  if (!o.exists) return fail('no-object', `${a.kind} on an object that does not exist (create it first)`);
  if (grownSize(o, a) > objectBytesMax) return fail('too-large', `an object holds at most ${objectBytesMax} bytes`);
  const w = writerOf(ctx, o);
  const leafCount = o.tree?.leafCount ?? 0;
  switch (a.kind) {
    case 'write-bytes':
      if (a.offset > sizeOf(o)) return fail('out-of-range', `write at ${a.offset} past the end (${sizeOf(o)} bytes)`);
      o.tree = edit.writeBytes(w, o.tree, a.offset, a.bytes);
      return null;
    case 'append':
      o.tree = edit.appendBytes(w, o.tree, a.bytes);
      return null;
    case 'append-blocks': {
      const leaves: Pointer[] = [];
      for (const source of a.blocks) {
        const leaf = leafOf(ctx, o, source);
        if (!isLeaf(leaf)) return leaf;
        leaves.push(leaf);
      }
      o.tree = edit.appendLeaves(w, o.tree, leaves);
      return null;
    }
    case 'replace-block':
    case 'insert-block': {
      const indexMax = a.kind === 'insert-block' ? leafCount : leafCount - 1;
      if (a.index > indexMax) return fail('out-of-range', `${a.kind} at block ${a.index} of ${leafCount}`);
      const leaf = leafOf(ctx, o, a.block);
      if (!isLeaf(leaf)) return leaf;
      o.tree = a.kind === 'insert-block' ? edit.insertLeaf(w, o.tree, a.index, leaf) : edit.replaceLeaf(w, o.tree, a.index, leaf);
      return null;
    }
    case 'delete-block':
      if (a.index >= leafCount) return fail('out-of-range', `delete-block at block ${a.index} of ${leafCount}`);
      o.tree = edit.deleteLeaf(w, o.tree, a.index);
      return null;
    case 'truncate':
      if (a.sizeBytes > sizeOf(o)) return fail('out-of-range', `truncate to ${a.sizeBytes} beyond the size ${sizeOf(o)}`);
      o.tree = edit.truncate(w, o.tree, a.sizeBytes);
      return null;
    case 'set-acl':
      if (!bytesEqual(ctx.writerPublicKey, o.ownerPublicKey)) return fail('unauthorized', 'only the owner may set the ACL');
      if (checkAcl(a.writerPublicKeys)) return checkAcl(a.writerPublicKeys);
      o.writerPublicKeys = a.writerPublicKeys;
      return null;
  }
}
