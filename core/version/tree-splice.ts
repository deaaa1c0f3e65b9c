/**
 * The one structural edit of the counted copy-on-write B-tree: replace leaves [from, to) with a
 * list of leaf pointers. Every byte- and block-level action reduces to it. Only nodes on the paths
 * to `from` and `to` are read and rewritten; every other subtree is shared by BGUID.
 *
 * Edits build unwritten drafts bottom-up. Non-root nodes keep between floor(F/2) and F children
 * (F = the object's fanoutMax): overfull drafts split, an underfull draft merges with a sibling
 * (and the merged children are fixed again, because an underfull draft may hold an underfull
 * draft), and the root collapses while it has a single child. Drafts are written once, at the end.
 */
import { assert } from '../assert.ts';
import { blockKey } from './block.ts';
import { type Pointer, encodeInteriorBlock, summarize } from './interior-block.ts';
import type { TreeRoot } from './root-block.ts';
import { type TreeReader, readChildren } from './tree-read.ts';

export interface TreeShape {
  readonly blockBytes: number;
  readonly fanoutMax: number;
}

export interface TreeWriter extends TreeReader {
  readonly shape: TreeShape;
}

/** A node during an edit: an existing block, or an unwritten list of children. */
type Node = { readonly stored: Pointer } | Draft;
interface Draft {
  readonly children: Node[];
  readonly byteCount: number;
  readonly leafCount: number;
}

function isDraft(node: Node): node is Draft {
  return 'children' in node;
}

function countsOf(node: Node): { byteCount: number; leafCount: number } {
  return isDraft(node) ? node : node.stored;
}

function draftOf(children: Node[]): Draft {
  let byteCount = 0;
  let leafCount = 0;
  for (const c of children) {
    const n = countsOf(c);
    byteCount += n.byteCount;
    leafCount += n.leafCount;
  }
  return { children, byteCount, leafCount };
}

function childrenOf(w: TreeWriter, node: Node, height: number): Node[] {
  if (isDraft(node)) return node.children;
  return readChildren(w, node.stored, height).map((p) => ({ stored: p }));
}

/** Groups of at most F, left-packed (dense trees for appends), the last two balanced if the last is short. */
function chunk(w: TreeWriter, nodes: Node[]): Draft[] {
  const fanoutMax = w.shape.fanoutMax;
  const fanoutMinNonRoot = Math.floor(fanoutMax / 2);
  if (nodes.length === 0) return [];
  if (nodes.length <= fanoutMax) return [draftOf(nodes)];
  const groups: Node[][] = [];
  for (let i = 0; i < nodes.length; i += fanoutMax) groups.push(nodes.slice(i, i + fanoutMax));
  const last = groups[groups.length - 1]!;
  if (last.length < fanoutMinNonRoot) {
    const merged = [...groups[groups.length - 2]!, ...last];
    const half = Math.ceil(merged.length / 2);
    groups.splice(groups.length - 2, 2, merged.slice(0, half), merged.slice(half));
  }
  return groups.map(draftOf);
}

/** Merges every underfull draft among `entries` (nodes at `height`) into a neighbour, in place. */
function fixUnderflow(w: TreeWriter, entries: Node[], height: number): void {
  if (height === 0) return;
  const fanoutMax = w.shape.fanoutMax;
  const fanoutMinNonRoot = Math.floor(fanoutMax / 2);
  for (let i = 0; i < entries.length && entries.length > 1; ) {
    const node = entries[i]!;
    if (!isDraft(node) || node.children.length >= fanoutMinNonRoot) {
      i++;
      continue;
    }
    const left = i + 1 < entries.length ? i : i - 1;
    const merged = [...childrenOf(w, entries[left]!, height), ...childrenOf(w, entries[left + 1]!, height)];
    fixUnderflow(w, merged, height - 1);
    const replacement =
      merged.length > fanoutMax
        ? [draftOf(merged.slice(0, Math.ceil(merged.length / 2))), draftOf(merged.slice(Math.ceil(merged.length / 2)))]
        : [draftOf(merged)];
    entries.splice(left, 2, ...replacement);
    i = Math.max(0, left - 1);
  }
}

/** Drafts (at `height`) replacing the subtree `pointer` after splicing its leaves [from, to) with `insert`. */
function spliceNode(w: TreeWriter, pointer: Pointer, height: number, from: number, to: number, insert: Node[]): Draft[] {
  const children = readChildren(w, pointer, height);
  if (height === 1) {
    // Concatenated, not spliced in: spreading a long insert into splice()'s arguments overflows
    // the stack (~100,000 leaves), at a depth that depends on the caller's stack.
    const kept: Node[] = children.slice(0, from).map((p) => ({ stored: p }));
    for (const node of insert) kept.push(node);
    for (const p of children.slice(to)) kept.push({ stored: p });
    return chunk(w, kept);
  }
  // The child holding leaf `from` (the last child when appending at the end) and the one holding leaf to - 1.
  let first = -1;
  let last = -1;
  let firstStart = 0;
  let lastStart = 0;
  let start = 0;
  for (let i = 0; i < children.length; i++) {
    const end = start + children[i]!.leafCount;
    if (first < 0 && from < end) [first, firstStart] = [i, start];
    if (last < 0 && to > from && to - 1 < end) [last, lastStart] = [i, start];
    start = end;
  }
  if (first < 0) [first, firstStart] = [children.length - 1, start - children[children.length - 1]!.leafCount];
  if (last < 0) [last, lastStart] = [first, firstStart];
  assert(first >= 0 && last >= first, 'splice range lies inside the node');
  const entries: Node[] = children.slice(0, first).map((p) => ({ stored: p }));
  const firstChild = children[first]!;
  const add = (drafts: Draft[]): void => {
    for (const d of drafts) entries.push(d);
  };
  if (first === last) {
    add(spliceNode(w, firstChild, height - 1, from - firstStart, to - firstStart, insert));
  } else {
    add(spliceNode(w, firstChild, height - 1, from - firstStart, firstChild.leafCount, insert));
    add(spliceNode(w, children[last]!, height - 1, 0, to - lastStart, []));
  }
  for (const p of children.slice(last + 1)) entries.push({ stored: p });
  fixUnderflow(w, entries, height - 1);
  return chunk(w, entries);
}

/**
 * A name for a node that is built but not hashed yet. It only has to be distinct from every real
 * BGUID and every other provisional name within one apply: a fixed 28-byte marker (a SHA-256 output
 * with that prefix is a 2^-224 event) followed by a counter.
 */
function provisionalId(index: number): Uint8Array {
  const id = new Uint8Array(32).fill(0xa5);
  new DataView(id.buffer).setUint32(28, index);
  return id;
}

function write(w: TreeWriter, node: Node, height: number): Pointer {
  if (!isDraft(node)) return node.stored;
  assert(height >= 1, 'drafts are interior nodes');
  const children = node.children.map((c) => write(w, c, height - 1));
  if (w.provisional) {
    // Deferred: a later action of the same clause may rewrite this node again; hash only what survives.
    const id = provisionalId(w.provisional.size);
    w.provisional.set(blockKey(id), children);
    return summarize(id, children);
  }
  const bguid = w.blocks.put('interior', encodeInteriorBlock({ height, children }));
  // Later edits in the same apply (and its new-block walk) read this node back without decoding.
  w.nodeCache?.set(blockKey(bguid), children);
  return summarize(bguid, children);
}

/**
 * Hashes and stores the provisional nodes `tree` still reaches (bottom-up), giving the tree its
 * real BGUIDs. The same structure as if every edit had written its nodes at once, so the same
 * VGUID; nodes a later edit superseded are never hashed.
 */
export function finalizeTree(w: TreeWriter, tree: TreeRoot | null): TreeRoot | null {
  const provisional = w.provisional;
  if (tree === null || provisional === undefined) return tree;
  const finalize = (p: Pointer, height: number): Pointer => {
    const children = height > 0 ? provisional.get(blockKey(p.bguid)) : undefined;
    if (children === undefined) return p;
    const real = children.map((c) => finalize(c, height - 1));
    const bguid = w.blocks.put('interior', encodeInteriorBlock({ height, children: real }));
    w.nodeCache?.set(blockKey(bguid), real);
    return summarize(bguid, real);
  };
  return { ...finalize(tree, tree.height), height: tree.height };
}

/**
 * The tree after replacing leaves [from, to) of `tree` with `leaves` (pointers to data blocks
 * already in the store). New interior blocks are put into `w.blocks`. Returns null when no leaf is left.
 */
export function spliceLeaves(w: TreeWriter, tree: TreeRoot | null, from: number, to: number, leaves: readonly Pointer[]): TreeRoot | null {
  const leafCount = tree?.leafCount ?? 0;
  assert(0 <= from && from <= to && to <= leafCount, 'splice range within the tree');
  assert(w.shape.fanoutMax >= 4, 'fan-out of at least 4');
  const insert: Node[] = leaves.map((p) => {
    assert(p.leafCount === 1 && p.byteCount >= 1 && p.byteCount <= w.shape.blockBytes, 'leaves hold 1..blockBytes bytes');
    return { stored: p };
  });
  let height = tree?.height ?? 1;
  let level: Node[] = tree === null ? chunk(w, insert) : spliceNode(w, tree, height, from, to, insert);
  for (;;) {
    if (level.length === 0) return null;
    if (level.length > 1) {
      level = chunk(w, level);
      height++;
      continue;
    }
    const top = level[0]!;
    const topChildren = height > 1 ? childrenOf(w, top, height) : [];
    if (topChildren.length === 1) {
      level = topChildren;
      height--;
      continue;
    }
    const pointer = write(w, top, height);
    return { ...pointer, height };
  }
}
