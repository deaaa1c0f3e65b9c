/**
 * Walks a whole tree and checks the B-tree invariants: counts agree with children, fan-out within
 * [floor(F/2), F] below the root, a root of height > 1 has at least two children, leaves hold
 * 1..blockBytes bytes and are present. For tests, replicas auditing a fetched version, and fsck.
 */
import { IntegrityError } from '../errors.ts';
import type { Pointer } from './interior-block.ts';
import type { TreeRoot } from './root-block.ts';
import { type TreeReader, readChildren, readLeaf } from './tree-read.ts';
import type { TreeShape } from './tree-splice.ts';

export interface TreeStats {
  readonly height: number;
  readonly interiorCount: number;
  readonly leafCount: number;
  readonly byteCount: number;
}

export function checkTree(reader: TreeReader, shape: TreeShape, tree: TreeRoot | null): TreeStats {
  if (tree === null) return { height: 0, interiorCount: 0, leafCount: 0, byteCount: 0 };
  let interiorCount = 0;
  const fanoutMinNonRoot = Math.floor(shape.fanoutMax / 2);
  const walk = (node: Pointer, height: number, isRoot: boolean): void => {
    if (height === 0) {
      const bytes = readLeaf(reader, node);
      if (bytes.length < 1 || bytes.length > shape.blockBytes) throw new IntegrityError(`leaf of ${bytes.length} bytes`);
      return;
    }
    interiorCount++;
    const children = readChildren(reader, node, height);
    const countMin = isRoot ? (height > 1 ? 2 : 1) : fanoutMinNonRoot;
    if (children.length < countMin || children.length > shape.fanoutMax) {
      throw new IntegrityError(`node at height ${height} has ${children.length} children, outside [${countMin}, ${shape.fanoutMax}]`);
    }
    for (const c of children) walk(c, height - 1, false);
  };
  walk(tree, tree.height, true);
  return { height: tree.height, interiorCount, leafCount: tree.leafCount, byteCount: tree.byteCount };
}
