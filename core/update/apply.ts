/**
 * applyUpdate: Pond's update semantics as a pure, deterministic function. The ring (and every
 * secondary replica re-executing a certified update) calls it with the same head and update and
 * gets the same VGUID.
 *
 * Preconditions (the caller's job, at the boundary): the update was decoded with decodeUpdate, its
 * signature verified (verifyUpdateSignature) and its nonce checked (nonceIsFresh); `head` is the
 * object's latest version and all of its blocks are in `env.blocks`. Given those, applyUpdate never
 * throws on the update's content: bad offsets, missing or oversized blocks, wrong ACLs all abort.
 * So does work beyond an update's bounds ('too-large'): every replica runs every update, so one
 * update may read at most predicateReadBytesMax (and leavesPerUpdateMax leaves) in its predicates, make leavesPerUpdateMax leaves,
 * read leafRewriteBytesMax of leaves it rewrites, and grow the object to objectBytesMax.
 */
import { bytesEqual } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import { bguidOf, blockKey } from '../version/block.ts';
import type { BlockStore } from '../version/block-store.ts';
import type { Pointer } from '../version/interior-block.ts';
import { type Head, type RootBlock, type TreeRoot, encodeRootBlock } from '../version/root-block.ts';
import type { NodeCache } from '../version/node-cache.ts';
import { type NewBlock, StagingBlockStore, StagingLimitExceeded } from '../version/staging-block-store.ts';
import { type TreeReader, readChildren, readerOf } from '../version/tree-read.ts';
import { finalizeTree } from '../version/tree-splice.ts';
import { type AbortReason, type ActionContext, type WorkingObject, runAction } from './actions.ts';
import { type PredicateBudget, predicateHolds } from './predicates.ts';
import type { Clause, Update } from './update.ts';
import { leafRewriteBytesMax, leavesPerUpdateMax, predicateReadBytesMax } from './update-codec.ts';
import { updateDigest } from './update-signature.ts';

export interface ApplyEnv {
  readonly crypto: Crypto;
  /** Read for the head and referenced blocks; a commit's new blocks are put here (putHashed). */
  readonly blocks: BlockStore;
  /** The ring's agreed timestamp for this update (the same on every replica). */
  readonly timestampMs: number;
  /**
   * updateDigest(crypto, update) if the caller already computed it (the ring does, to order the
   * request); saves hashing inline data twice. Must be that exact value.
   */
  readonly updateDigest?: Uint8Array;
  /** Decoded interior nodes kept across applies (one per replica); a per-apply map if absent. */
  readonly nodeCache?: NodeCache;
}

export type Outcome =
  | {
      readonly kind: 'commit';
      readonly head: Head;
      /** Which clause held. */
      readonly clauseIndex: number;
      /**
       * Blocks this apply made (data, interior, then the root block last), all reachable from the
       * new head: every interior block the store lacked, and every leaf it wrote, even one the store
       * held already (as an upload no version referenced, which nothing else would archive).
       */
      readonly newBlocks: readonly NewBlock[];
      /** Uploaded data blocks the new version references for the first time through this update. */
      readonly referencedBlocks: readonly Uint8Array[];
    }
  | {
      readonly kind: 'abort';
      readonly reason: AbortReason;
      readonly detail: string;
      /** The version the update was evaluated against (null: the object does not exist). */
      readonly currentVersion: number | null;
    };

function workingCopy(head: Head | null): WorkingObject {
  const r = head?.root;
  return {
    exists: r !== undefined,
    tree: r?.tree ?? null,
    blockBytes: r?.blockBytes ?? 1,
    fanoutMax: r?.fanoutMax ?? 4,
    ownerPublicKey: r?.ownerPublicKey ?? new Uint8Array(0),
    writerPublicKeys: r?.writerPublicKeys ?? [],
    referenced: [],
  };
}

function mayWrite(root: RootBlock, writer: Uint8Array): boolean {
  return bytesEqual(root.ownerPublicKey, writer) || root.writerPublicKeys.some((k) => bytesEqual(k, writer));
}

/** Staged blocks reachable from the new tree, each once (equal leaves share a BGUID), children before parents. */
function reachableStaged(reader: TreeReader, staging: StagingBlockStore, tree: TreeRoot | null): NewBlock[] {
  const out: NewBlock[] = [];
  const seen = new Set<string>();
  const walk = (p: Pointer, height: number): void => {
    const block = staging.stagedBlock(p.bguid);
    if (!block) return; // shared with an earlier version (or uploaded): its whole subtree is too
    const key = blockKey(p.bguid);
    if (seen.has(key)) return;
    seen.add(key);
    if (height > 0) for (const c of readChildren(reader, p, height)) walk(c, height - 1);
    out.push(block);
  };
  if (tree) walk(tree, tree.height);
  return out;
}

export function applyUpdate(env: ApplyEnv, head: Head | null, update: Update): Outcome {
  const currentVersion = head?.root.version ?? null;
  const abort = (reason: AbortReason, detail: string): Outcome => ({ kind: 'abort', reason, detail, currentVersion });
  if (head && !bytesEqual(head.root.aguid, update.aguid)) return abort('wrong-object', 'the head belongs to another AGUID');
  if (head && !mayWrite(head.root, update.writerPublicKey)) return abort('unauthorized', 'the writer is neither the owner nor on the ACL');
  const reader = readerOf(env.blocks, env.nodeCache);
  const budget: PredicateBudget = { readBytesLeft: predicateReadBytesMax, readLeavesLeft: leavesPerUpdateMax };
  let clauseIndex = -1;
  for (let i = 0; i < update.clauses.length && clauseIndex < 0; i++) {
    const holds = update.clauses[i]!.predicates.every((p) => predicateHolds(env.crypto, reader, head, p, budget));
    if (budget.readBytesLeft < 0 || budget.readLeavesLeft < 0) {
      return abort('too-large', `the predicates read more than ${predicateReadBytesMax} bytes or ${leavesPerUpdateMax} leaves of the object`);
    }
    if (holds) clauseIndex = i;
  }
  if (clauseIndex < 0) return abort('predicates-failed', 'no clause had all its predicates hold');
  try {
    return applyClause(env, head, update, update.clauses[clauseIndex]!, clauseIndex, abort);
  } catch (error) {
    // Thrown at the same point on every replica (the same tree, update and limits): the clause
    // goes no further and nothing it staged is kept.
    if (error instanceof StagingLimitExceeded) return abort('too-large', `the update ${error.what} (send fewer, larger blocks)`);
    throw error;
  }
}

function applyClause(
  env: ApplyEnv,
  head: Head | null,
  update: Update,
  clause: Clause,
  clauseIndex: number,
  abort: (reason: AbortReason, detail: string) => Outcome,
): Outcome {
  const staging = new StagingBlockStore(env.crypto, env.blocks, { dataPutsMax: leavesPerUpdateMax, dataReadBytesMax: leafRewriteBytesMax });
  // Interior nodes stay provisional (unhashed) until the clause is done: several actions on one
  // path hash that path once. Only the real BGUIDs ever reach the shared node cache.
  const reader: TreeReader = { ...readerOf(staging, env.nodeCache), provisional: new Map() };
  const ctx: ActionContext = { crypto: env.crypto, reader, aguid: update.aguid, writerPublicKey: update.writerPublicKey };
  const o = workingCopy(head);
  for (const action of clause.actions) {
    const failure = runAction(ctx, o, action);
    if (failure) return abort(failure.reason, failure.detail);
  }
  o.tree = finalizeTree({ ...reader, provisional: reader.provisional, shape: { blockBytes: o.blockBytes, fanoutMax: o.fanoutMax } }, o.tree);
  if (!o.exists) return abort('no-object', 'the object does not exist and the clause does not create it');
  const root: RootBlock = {
    aguid: update.aguid,
    version: head ? head.root.version + 1 : 0,
    previousVguid: head ? head.vguid : new Uint8Array(0),
    sizeBytes: o.tree?.byteCount ?? 0,
    blockBytes: o.blockBytes,
    fanoutMax: o.fanoutMax,
    tree: o.tree,
    ownerPublicKey: o.ownerPublicKey,
    writerPublicKeys: o.writerPublicKeys,
    updateDigest: env.updateDigest ?? updateDigest(env.crypto, update),
    timestampMs: env.timestampMs,
  };
  const rootBytes = encodeRootBlock(root);
  const vguid = bguidOf(env.crypto, 'root', rootBytes);
  // Only what the new version reaches: a later edit may supersede blocks an earlier one staged
  // (even within one action: a write past the end rewrites the last leaf, then appends to it).
  const newBlocks = [...reachableStaged(ctx.reader, staging, o.tree), { bguid: vguid, kind: 'root' as const, bytes: rootBytes }];
  for (const b of newBlocks) env.blocks.putHashed(b.bguid, b.kind, b.bytes);
  return { kind: 'commit', head: { vguid, root }, clauseIndex, newBlocks, referencedBlocks: o.referenced };
}
