/**
 * Root blocks: one per version; the VGUID is the root block's BGUID. The ACL (owner key + writer
 * keys) sits inline rather than in its own block: it is small (at most aclWritersMax keys), read
 * on every apply, and inlining saves a block fetch and a hash per version.
 *
 * Format v1: ['root', 1, aguid, version, previousVguid (empty for version 0), sizeBytes,
 * blockBytes, fanoutMax, tree (null when empty | [bguid, byteCount, leafCount, height]),
 * ownerPublicKey, [writerPublicKey...], updateDigest, timestampMs].
 */
import { assert } from '../assert.ts';
import {
  asBytesField,
  asList,
  asLiteral,
  asTuple,
  asUint,
  decode,
} from '../codec.ts';
import { ed25519PublicKeyBytes, hashBytes } from '../crypto.ts';
import { DecodeError } from '../errors.ts';
import { blockBytesMax } from './block.ts';
import { packFast } from './fast-msgpack.ts';
import { type Pointer, decodePointer, encodePointer, fanoutLimit, fanoutMin, treeHeightMax } from './interior-block.ts';

export const aclWritersMax = 64;
export const rootBlockBytesMax = 512 + (aclWritersMax + 1) * (ed25519PublicKeyBytes + 2);

/** The tree of one version: the pointer to its top node and the height of that node (>= 1). */
export interface TreeRoot extends Pointer {
  readonly height: number;
}

export interface RootBlock {
  readonly aguid: Uint8Array;
  readonly version: number;
  /** VGUID of version - 1; empty for version 0. */
  readonly previousVguid: Uint8Array;
  readonly sizeBytes: number;
  readonly blockBytes: number;
  readonly fanoutMax: number;
  readonly tree: TreeRoot | null;
  readonly ownerPublicKey: Uint8Array;
  readonly writerPublicKeys: readonly Uint8Array[];
  readonly updateDigest: Uint8Array;
  /** The ring's agreed timestamp for the update that made this version. */
  readonly timestampMs: number;
}

/** A version as apply sees it: the decoded root block and its VGUID. */
export interface Head {
  readonly vguid: Uint8Array;
  readonly root: RootBlock;
}

const recordTag = 'root';
const formatVersion = 1;

export function encodeRootBlock(r: RootBlock): Uint8Array {
  assert(r.sizeBytes === (r.tree?.byteCount ?? 0), 'root size matches its tree');
  assert((r.version === 0) === (r.previousVguid.length === 0), 'only version 0 has no previous VGUID');
  const tree = r.tree === null ? null : [...encodePointer(r.tree), r.tree.height];
  return packFast([
    recordTag,
    formatVersion,
    r.aguid,
    r.version,
    r.previousVguid,
    r.sizeBytes,
    r.blockBytes,
    r.fanoutMax,
    tree,
    r.ownerPublicKey,
    r.writerPublicKeys,
    r.updateDigest,
    r.timestampMs,
  ]);
}

function decodeTreeRoot(value: unknown): TreeRoot | null {
  if (value === null) return null;
  const t = asTuple(value, 'root block tree', 4);
  const pointer = decodePointer([t[0], t[1], t[2]], 'root block tree');
  const height = asUint(t[3], 'root block tree height', treeHeightMax);
  if (height < 1) throw new DecodeError('root block tree height: at least 1');
  return { ...pointer, height };
}

export function decodeRootBlock(bytes: Uint8Array): RootBlock {
  const t = asTuple(decode(bytes, rootBlockBytesMax, 'root block'), 'root block', 13);
  asLiteral(t[0], 'root block tag', recordTag);
  asLiteral(t[1], 'root block format', formatVersion);
  const aguid = asBytesField(t[2], 'root block aguid', { bytes: hashBytes });
  const version = asUint(t[3], 'root block version');
  const previousVguid = asBytesField(t[4], 'root block previousVguid', { bytes: version === 0 ? 0 : hashBytes });
  const sizeBytes = asUint(t[5], 'root block sizeBytes');
  const blockBytes = asUint(t[6], 'root block blockBytes', blockBytesMax);
  const fanoutMax = asUint(t[7], 'root block fanoutMax', fanoutLimit);
  if (blockBytes < 1) throw new DecodeError('root block blockBytes: at least 1');
  if (fanoutMax < fanoutMin) throw new DecodeError(`root block fanoutMax: at least ${fanoutMin}`);
  const tree = decodeTreeRoot(t[8]);
  if (sizeBytes !== (tree?.byteCount ?? 0)) throw new DecodeError('root block sizeBytes: differs from its tree');
  const ownerPublicKey = asBytesField(t[9], 'root block owner', { bytes: ed25519PublicKeyBytes });
  const writerPublicKeys = asList(t[10], 'root block writers', aclWritersMax, (v, i) =>
    asBytesField(v, `root block writer ${i}`, { bytes: ed25519PublicKeyBytes }),
  );
  const updateDigest = asBytesField(t[11], 'root block updateDigest', { bytes: hashBytes });
  const timestampMs = asUint(t[12], 'root block timestampMs');
  return {
    aguid,
    version,
    previousVguid,
    sizeBytes,
    blockBytes,
    fanoutMax,
    tree,
    ownerPublicKey,
    writerPublicKeys,
    updateDigest,
    timestampMs,
  };
}
