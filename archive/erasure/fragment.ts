/**
 * Self-verifying fragments. Each fragment record carries everything needed to check it alone
 * against the block's fragment root (which a parent pointer or a certificate carries):
 *
 *   fragmentRoot = H(fragmentNode ‖ version ‖ u32 k ‖ u32 m ‖ u64 blockBytes ‖ bguid ‖ top)
 *
 * where `top` is the Merkle top over the n = k + m fragment leaves (merkle.ts). Binding the
 * parameters and the BGUID into the root means a fragment of another block, or one relabelled with
 * other (k, m, blockBytes), cannot verify. The 82-byte preimage can never equal an interior node's
 * 65-byte one, so the two uses of the fragmentNode tag cannot be confused.
 */
import { bytesEqual, concatBytes, toHex, u32be, u64be } from '../../core/bytes.ts';
import { HashTag, hashBytes, taggedHash, type Crypto } from '../../core/crypto.ts';
import { checkArgument } from '../../core/errors.ts';
import { FragmentError, NotEnoughFragmentsError } from './errors.ts';
import { buildTree, leafHash, pathLengthOf, topFromPath } from './merkle.ts';
import { decode, encode, shardBytesOf, type CoderOptions } from './reed-solomon.ts';

export const fragmentFormatVersion = 1;

export interface FragmentRecord {
  version: number;
  k: number;
  m: number;
  index: number;
  blockBytes: number;
  bguid: Uint8Array;
  payload: Uint8Array;
  /** Merkle siblings, bottom-up; its length is fixed by (index, k + m). */
  path: Uint8Array[];
}

export interface FragmentSet {
  fragmentRoot: Uint8Array;
  fragments: FragmentRecord[];
}

/**
 * Erasure-codes `block` and wraps each fragment in a self-verifying record. The payloads are views
 * into one buffer (see encode): `slice()` a payload kept alone for long so it does not pin all n.
 */
export function makeFragments(
  crypto: Crypto,
  k: number,
  m: number,
  bguid: Uint8Array,
  block: Uint8Array,
  options: CoderOptions = {},
): FragmentSet {
  checkArgument(bguid instanceof Uint8Array && bguid.length === hashBytes, 'bguid', `${hashBytes} bytes`);
  const payloads = encode(k, m, block, options);
  const { top, paths } = buildTree(crypto, payloads.map((p, i) => leafHash(crypto, i, p)));
  const head = { version: fragmentFormatVersion, k, m, blockBytes: block.length, bguid };
  const fragments = payloads.map((payload, index) => ({ ...head, index, payload, path: paths[index]! }));
  return { fragmentRoot: rootOf(crypto, head, top), fragments };
}

function rootOf(
  crypto: Crypto,
  head: { version: number; k: number; m: number; blockBytes: number; bguid: Uint8Array },
  top: Uint8Array,
): Uint8Array {
  const params = concatBytes([Uint8Array.of(head.version), u32be(head.k), u32be(head.m), u64be(head.blockBytes)]);
  return taggedHash(crypto, HashTag.fragmentNode, params, head.bguid, top);
}

/**
 * Throws FragmentError unless the record is internally consistent: known version, valid (k, m),
 * index in range, payload exactly ceil(blockBytes / k) bytes, path of the length the index implies.
 * No hashing; decodeFragment runs it on every decoded record.
 */
export function checkFragmentShape(record: FragmentRecord): void {
  if (record === null || typeof record !== 'object') throw new FragmentError('not a fragment record', 'malformed');
  const { version, k, m, index, blockBytes, bguid, payload, path } = record;
  if (version !== fragmentFormatVersion) throw new FragmentError(`unknown fragment format version ${version}`, 'malformed');
  if (!Number.isSafeInteger(k) || !Number.isSafeInteger(m) || k < 1 || m < 0 || k + m > 256) {
    throw new FragmentError(`bad coding parameters k=${k} m=${m} (need k >= 1, m >= 0, k + m <= 256)`, 'parameters');
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= k + m) {
    throw new FragmentError(`fragment index ${index} outside 0..${k + m - 1}`, 'index');
  }
  if (!Number.isSafeInteger(blockBytes) || blockBytes < 0) throw new FragmentError(`bad block length ${blockBytes}`, 'parameters');
  if (!(bguid instanceof Uint8Array) || bguid.length !== hashBytes) throw new FragmentError('bguid must be 32 bytes', 'malformed');
  if (!(payload instanceof Uint8Array) || payload.length !== shardBytesOf(k, blockBytes)) {
    const got = payload instanceof Uint8Array ? payload.length : 'no';
    throw new FragmentError(`payload has ${got} bytes, expected ${shardBytesOf(k, blockBytes)} for a ${blockBytes}-byte block with k=${k}`, 'truncated');
  }
  const pathLength = pathLengthOf(index, k + m);
  if (!Array.isArray(path) || path.length !== pathLength || !path.every((p) => p instanceof Uint8Array && p.length === hashBytes)) {
    throw new FragmentError(`Merkle path must be ${pathLength} hashes of ${hashBytes} bytes for index ${index} of ${k + m}`, 'path');
  }
}

/** The fragment root this record's own path claims (FragmentError if it is malformed). Untrusted. */
export function fragmentRootOf(crypto: Crypto, record: FragmentRecord): Uint8Array {
  checkFragmentShape(record);
  const leaf = leafHash(crypto, record.index, record.payload);
  return rootOf(crypto, record, topFromPath(crypto, leaf, record.index, record.k + record.m, record.path));
}

/** Throws FragmentError naming the fault unless `record` is a genuine fragment under `fragmentRoot`. */
export function checkFragment(crypto: Crypto, record: FragmentRecord, fragmentRoot: Uint8Array): void {
  checkArgument(fragmentRoot instanceof Uint8Array && fragmentRoot.length === hashBytes, 'fragmentRoot', `${hashBytes} bytes`);
  if (!bytesEqual(fragmentRootOf(crypto, record), fragmentRoot)) {
    throw new FragmentError(
      `fragment ${record.index} of block ${toHex(record.bguid).slice(0, 16)} does not hash to fragment root ${toHex(fragmentRoot).slice(0, 16)} (corrupt payload, wrong path, or other parameters)`,
      'root-mismatch',
    );
  }
}

/** True iff `record` verifies against `fragmentRoot` (path, index range, parameters). Never throws on bad records. */
export function verifyFragment(crypto: Crypto, record: FragmentRecord, fragmentRoot: Uint8Array): boolean {
  try {
    checkFragment(crypto, record, fragmentRoot);
    return true;
  } catch (error) {
    if (error instanceof FragmentError) return false;
    throw error;
  }
}

export interface RecoverOptions extends CoderOptions {
  /** The trusted fragment root, when known (from a parent pointer or a certificate). */
  fragmentRoot?: Uint8Array;
}

/**
 * The block from untrusted fragment records. Records are checked alone (shape, BGUID, path), grouped
 * by the root they claim, and any group with k distinct indices is decoded; the result is returned
 * only if `checkBlock` accepts it (the caller hashes it against the BGUID), else the next group is
 * tried. Throws NotEnoughFragmentsError whose `problems` say what was wrong with each refused record.
 */
export function recoverBlock(
  crypto: Crypto,
  bguid: Uint8Array,
  records: readonly FragmentRecord[],
  checkBlock: (block: Uint8Array) => boolean,
  options: RecoverOptions = {},
): Uint8Array {
  checkArgument(bguid instanceof Uint8Array && bguid.length === hashBytes, 'bguid', `${hashBytes} bytes`);
  checkArgument(Array.isArray(records), 'records', 'an array of fragment records');
  const problems: string[] = [];
  const groups = groupByRoot(crypto, bguid, records, options.fragmentRoot, problems);
  const ordered = [...groups.values()].sort((a, b) => b.byIndex.size - a.byIndex.size);
  let best = 0;
  for (const group of ordered) {
    const first = group.byIndex.values().next().value!;
    best = Math.max(best, group.byIndex.size);
    if (group.byIndex.size < first.k) continue;
    const shards = [...group.byIndex.values()].map((r) => ({ index: r.index, bytes: r.payload }));
    const block = decode(first.k, first.m, shards, first.blockBytes, options);
    if (checkBlock(block)) return block;
    problems.push(`fragments under root ${group.rootHex.slice(0, 16)} decoded to a block that failed the caller's check`);
  }
  throw new NotEnoughFragmentsError(
    `cannot recover block ${toHex(bguid).slice(0, 16)}: ${records.length} records, at most ${best} consistent` +
      (problems.length > 0 ? `; refused: ${problems.slice(0, 8).join('; ')}` : ''),
    problems,
  );
}

interface Group {
  rootHex: string;
  byIndex: Map<number, FragmentRecord>;
}

function groupByRoot(
  crypto: Crypto,
  bguid: Uint8Array,
  records: readonly FragmentRecord[],
  trustedRoot: Uint8Array | undefined,
  problems: string[],
): Map<string, Group> {
  const groups = new Map<string, Group>();
  records.forEach((record, i) => {
    let root: Uint8Array;
    try {
      root = fragmentRootOf(crypto, record);
    } catch (error) {
      if (!(error instanceof FragmentError)) throw error;
      problems.push(`record ${i}: ${error.fault}: ${error.message}`);
      return;
    }
    if (!bytesEqual(record.bguid, bguid)) {
      problems.push(`record ${i}: foreign: belongs to block ${toHex(record.bguid).slice(0, 16)}`);
      return;
    }
    const rootHex = toHex(root);
    if (trustedRoot && !bytesEqual(root, trustedRoot)) {
      problems.push(`record ${i}: root-mismatch: does not verify against the trusted fragment root`);
      return;
    }
    let group = groups.get(rootHex);
    if (!group) groups.set(rootHex, (group = { rootHex, byIndex: new Map() }));
    if (group.byIndex.has(record.index)) {
      problems.push(`record ${i}: duplicate: index ${record.index} given twice`);
      return;
    }
    group.byIndex.set(record.index, record);
  });
  return groups;
}
