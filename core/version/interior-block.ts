/**
 * Interior blocks: the ordered child pointers of one node of the counted B-tree. A pointer carries
 * the child's BGUID and the byte and leaf counts of its subtree, so a reader finds byte offset o or
 * leaf n by walking one path. Fragment roots are deliberately absent: archiving runs after apply,
 * off the hot path (lead's decision), so pointers depend only on the data.
 *
 * Format v1: ['interior', 1, height, [[bguid, byteCount, leafCount], ...]]; height 1 means the
 * children are data blocks, height h > 1 means interior blocks of height h - 1.
 */
import { assert } from '../assert.ts';
import { asBytesField, asList, asLiteral, asTuple, asUint, decode } from '../codec.ts';
import { hashBytes } from '../crypto.ts';
import { DecodeError } from '../errors.ts';
import { blockBytesMax } from './block.ts';
import { type Packable, packFast } from './fast-msgpack.ts';

export interface Pointer {
  readonly bguid: Uint8Array;
  /** Bytes in the subtree (for a data block: its length). */
  readonly byteCount: number;
  /** Leaves (data blocks) in the subtree (for a data block: 1). */
  readonly leafCount: number;
}

export interface InteriorBlock {
  readonly height: number;
  readonly children: readonly Pointer[];
}

/** Decoders accept any fan-out up to this; each object picks its own (fanoutMax in the root block). */
export const fanoutLimit = 256;
export const fanoutMin = 4;
/** 2^64 leaves would need far more than this many levels at fan-out >= 4. */
export const treeHeightMax = 40;
const pointerBytesMax = hashBytes + 32;
export const interiorBlockBytesMax = 32 + fanoutLimit * pointerBytesMax;

const recordTag = 'interior';
const formatVersion = 1;

export function encodeInteriorBlock(block: InteriorBlock): Uint8Array {
  assert(block.height >= 1 && block.height <= treeHeightMax, 'interior height in range');
  assert(block.children.length >= 1 && block.children.length <= fanoutLimit, 'interior fan-out in range');
  return packFast([recordTag, formatVersion, block.height, block.children.map(encodePointer)]);
}

export function encodePointer(p: Pointer): Packable[] {
  return [p.bguid, p.byteCount, p.leafCount];
}

export function decodePointer(value: unknown, what: string): Pointer {
  const t = asTuple(value, what, 3);
  const bguid = asBytesField(t[0], `${what}.bguid`, { bytes: hashBytes });
  const leafCount = asUint(t[2], `${what}.leafCount`);
  const byteCount = asUint(t[1], `${what}.byteCount`);
  if (leafCount < 1) throw new DecodeError(`${what}: a subtree has at least one leaf`);
  if (byteCount < leafCount) throw new DecodeError(`${what}: every leaf holds at least one byte`);
  if (byteCount > leafCount * blockBytesMax) throw new DecodeError(`${what}: more bytes than its leaves can hold`);
  return { bguid, byteCount, leafCount };
}

export function decodeInteriorBlock(bytes: Uint8Array): InteriorBlock {
  const t = asTuple(decode(bytes, interiorBlockBytesMax, 'interior block'), 'interior block', 4);
  asLiteral(t[0], 'interior block tag', recordTag);
  asLiteral(t[1], 'interior block format', formatVersion);
  const height = asUint(t[2], 'interior block height', treeHeightMax);
  if (height < 1) throw new DecodeError('interior block height: at least 1');
  const children = asList(t[3], 'interior block children', fanoutLimit, (v, i) => decodePointer(v, `child ${i}`));
  if (children.length < 1) throw new DecodeError('interior block: no children');
  if (height === 1) {
    for (const c of children) if (c.leafCount !== 1) throw new DecodeError('interior block: a data child has one leaf');
  }
  return { height, children };
}

/** The pointer a parent holds for a node with these children. */
export function summarize(bguid: Uint8Array, children: readonly Pointer[]): Pointer {
  let byteCount = 0;
  let leafCount = 0;
  for (const c of children) {
    byteCount += c.byteCount;
    leafCount += c.leafCount;
  }
  return { bguid, byteCount, leafCount };
}
