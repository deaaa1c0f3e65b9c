/**
 * Restore from the archive alone: with every ring server and secondary replica gone, the ring
 * public key and the archive servers' addresses are enough to rebuild every certified version.
 *
 *   1. Discovery: every archive server lists the certificates stored beside root blocks (only one
 *      object's when one object is restored); each is decoded and verified under the ring public
 *      key (one pairing per signed batch, thanks to the verifier's cache). Committed statements
 *      give (aguid, version, VGUID).
 *   2. Per version: the root block is fetched by its VGUID (archive/shell/block-fetcher.ts: any k
 *      verified fragments, decoded block hashed against the BGUID), decoded, and checked against
 *      the certificate (aguid, version); the tree is walked level by level, each interior block
 *      checked against the pointer to it (height, byte and leaf counts), each data block against
 *      its pointer's length; the bytes are the leaves in order and must total the root's size.
 *      The walk streams: each level is fetched a bounded window ahead of the level below, and each
 *      verified leaf goes to a sink in order (a temporary file in the CLI, renamed into place only
 *      once the whole version verified), so memory does not grow with the version's size.
 * Nothing unverified reaches the output; what cannot be fetched is reported, not guessed.
 */
import { constants as bufferConstants } from 'node:buffer';
import { bytesEqual, toHex } from '../../core/bytes.ts';
import type { Crypto } from '../../core/crypto.ts';
import { DecodeError, IntegrityError, InvalidArgumentError } from '../../core/errors.ts';
import { CertificateVerifier, decodeCertificate, encodeCertificate, type Certificate } from '../../core/threshold/index.ts';
import { decodeInteriorBlock, interiorBlockBytesMax, summarize, type Pointer } from '../../core/version/interior-block.ts';
import { decodeRootBlock, type RootBlock, type TreeRoot } from '../../core/version/root-block.ts';
import { mapLimit, type ArchiveSource } from './archive-source.ts';
import type { BlockFetcher } from './block-fetcher.ts';
import type { BlockKind } from '../../core/version/block.ts';

export interface VersionRef {
  aguid: Uint8Array;
  version: number;
  vguid: Uint8Array;
  /** From the certificate; empty when the ring signed before the archiver computed it. */
  rootFragmentRoot: Uint8Array;
  certificate: Certificate;
}

export interface Discovery {
  versions: VersionRef[];
  /** Certificate copies that failed to decode or verify (a Byzantine or corrupt server). */
  rejectedCount: number;
  /** Two verified certificates naming different VGUIDs for one (aguid, version): a broken ring. */
  conflicts: string[];
  /** Servers that did not answer the listing. */
  unreachable: string[];
}

export interface DiscoverOptions {
  aguid?: Uint8Array;
  pageSize?: number;
}

/** What one page of a listing gave: certificates that verified and came after the cursor, and the listing key of the last of them. */
interface PageTaken {
  valid: number;
  lastKey: string;
}

/**
 * Lists one server's certificates page by page, handing each page to `take` as it arrives (only
 * verified entries are kept, never a server's whole unverified listing); true if the listing
 * finished. A page larger than asked for ends it. An honest server lists only certificates that
 * pass its check (ArchiveServer.listCertificates), in key order (c/<VGUID>), with `next` at the
 * last key it looked at; so a page with certificates and none valid and new (after the cursor)
 * ends the listing, and so does a `next` before the page's last key. A faulty server holding
 * genuine certificates thus lists each at most once: it answered every page with copies or
 * re-encodings of one, which all verified, for up to 1,000,000 pages (hours; session-20 review,
 * finding 5). An empty page with `next` set is a server that spent its checks for one request, and
 * listing goes on, at most emptyPagesMax times in a row (then it is left unfinished). A page that
 * does not come back leaves the listing unfinished (the server counts as not answering). With
 * `aguid`, the server lists only that object's certificates (its per-object index), in the same
 * key order; one that does not answer the first such page is asked for its whole listing instead.
 */
async function listEach(source: ArchiveSource, server: string, pageSize: number, aguid: Uint8Array | undefined, take: (certificates: Uint8Array[], after: string) => PageTaken, onRefused: (count: number) => void): Promise<boolean> {
  let after = '';
  let empty = 0;
  for (let page = 0; page < listPagesMax; page++) {
    const reply = await source.request(server, { type: 'listCertificates', requestId: page + 1, after, limit: pageSize, ...(aguid ? { aguid } : {}) });
    // A server from before per-object listings drops the request as malformed: list it whole (take
    // keeps only the object's certificates). A server that answers nothing is asked twice (a hung
    // one costs a second timeout).
    if (!reply && aguid && page === 0) return listEach(source, server, pageSize, undefined, take, onRefused);
    if (!reply || reply.type !== 'certificates') return false;
    if (reply.certificates.length > pageSize) {
      onRefused(reply.certificates.length);
      return true;
    }
    empty = reply.certificates.length === 0 ? empty + 1 : 0;
    const taken = reply.certificates.length > 0 ? take(reply.certificates, after) : { valid: 0, lastKey: after };
    if ((reply.certificates.length > 0 && taken.valid === 0) || reply.next === null || reply.next <= after || reply.next < taken.lastKey) return true;
    // Past emptyPagesMax empty pages in a row the listing is given up unfinished, not taken as
    // complete: a faulty writer's junk between two of an object's certificates could otherwise
    // end an object's listing early and hide its later versions (second review of the
    // per-object listing). The server then counts as not answering, and the restore says so.
    if (empty > emptyPagesMax) return false;
    after = reply.next;
  }
  return true;
}

/** Pages asked of one server at most (at 256 per page, far more certificates than any archive holds). */
const listPagesMax = 1_000_000;
/** Empty pages with more to come taken in a row from one server (each is one spent check budget, ~64 junk certificates deleted). */
const emptyPagesMax = 1_024;

export async function discoverVersions(crypto: Crypto, source: ArchiveSource, ringPublicKey: Uint8Array, options: DiscoverOptions = {}): Promise<Discovery> {
  const verifier = new CertificateVerifier(crypto, ringPublicKey);
  /** Certificates verified, by their canonical encoding's hash: a re-encoding of one is the same certificate. */
  const seen = new Set<string>();
  const byVersion = new Map<string, VersionRef>();
  const conflicts: string[] = [];
  let rejectedCount = 0;
  /** Verifies one decoded certificate; true if it verifies (seen before or not). */
  const takeOne = (certificate: Certificate): boolean => {
    const hex = toHex(crypto.sha256([encodeCertificate(certificate)]));
    if (seen.has(hex)) return true;
    if (!verifier.verifyCertificate(certificate).ok) return false;
    seen.add(hex);
    const s = certificate.statement;
    if (s.outcome !== 'commit' || s.vguid.length === 0) return true;
    if (options.aguid && !bytesEqual(s.aguid, options.aguid)) return true;
    const key = `${toHex(s.aguid)}@${s.version}`;
    const existing = byVersion.get(key);
    if (existing && !bytesEqual(existing.vguid, s.vguid)) conflicts.push(`${key}: ${toHex(existing.vguid)} vs ${toHex(s.vguid)}`);
    if (!existing) byVersion.set(key, { aguid: s.aguid, version: s.version, vguid: s.vguid, rootFragmentRoot: s.rootFragmentRoot, certificate });
    return true;
  };
  /**
   * One page: every certificate that verifies is taken, but only those after the cursor and in key
   * order (c/<VGUID>, as servers list them) count as the listing's progress: copies and
   * re-encodings of one seen before cost a decode and a hash and keep no listing going.
   */
  const take = (certificates: Uint8Array[], after: string): PageTaken => {
    const page: PageTaken = { valid: 0, lastKey: after };
    for (const bytes of certificates) {
      const certificate = decodeOrNull(bytes);
      if (certificate === null || !takeOne(certificate)) {
        rejectedCount++;
        continue;
      }
      const key = `c/${toHex(certificate.statement.vguid)}`;
      if (key <= page.lastKey) continue;
      page.valid++;
      page.lastKey = key;
    }
    return page;
  };
  const answered = await mapLimit(source.servers, 8, (server) =>
    listEach(source, server, options.pageSize ?? 256, options.aguid, take, (count) => {
      rejectedCount += count;
    }),
  );
  const unreachable = source.servers.filter((_, i) => !answered[i]);
  const versions = [...byVersion.values()].sort((a, b) => compareHex(a.aguid, b.aguid) || a.version - b.version);
  return { versions, rejectedCount, conflicts, unreachable };
}

function decodeOrNull(bytes: Uint8Array): Certificate | null {
  try {
    return decodeCertificate(bytes);
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    return null;
  }
}

function compareHex(a: Uint8Array, b: Uint8Array): number {
  const x = toHex(a);
  const y = toHex(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export interface RestoredVersion {
  ref: VersionRef;
  root: RootBlock;
  bytes: Uint8Array;
}

/**
 * Where one version's verified bytes go, leaf by leaf and in order. Each leaf handed over has
 * hashed to its BGUID, matched its pointer's length and sits under interior blocks that each
 * matched the pointer to them; the whole version is verified only when `commit` is called (the
 * leaves total the root's size). A writer must keep nothing visible as the version until then.
 */
export interface LeafWriter {
  /** The next leaf; awaited before the one after it is handed over. */
  write(leaf: Uint8Array): Promise<void> | void;
  /** Every leaf written and the version verified: make the output visible. */
  commit(): Promise<void> | void;
  /** The restore (or a write) failed part way: drop what was written. Must not throw. */
  discard(): Promise<void> | void;
}

/** Opens a writer for each version whose root block verified. */
export interface VersionSink {
  open(ref: VersionRef, root: RootBlock): Promise<LeafWriter> | LeafWriter;
}

/**
 * How far a restore fetches ahead of its sink. Data blocks are counted by their length (known from
 * the pointer before the fetch), interior blocks at their size bound (interiorBlockBytesMax), each
 * tree level with its own window: the data window bounds the version's bytes held, whatever the
 * version's size (it held every leaf and then a copy of them all; session-20 review, finding 8d).
 */
export interface RestoreWindow {
  /** Data bytes fetched or in flight and not yet taken by the sink; one block more only when a single block is larger. */
  dataBytes: number;
  /** Interior blocks fetched ahead on each level, at their size bound. */
  interiorBytes: number;
  /** Fetch batches in flight per level. */
  concurrency: number;
  /** Blocks per batch at most (one request per server per batch); a batch also holds at most its share of the window. */
  batchBlocks: number;
}

export const defaultRestoreWindow: RestoreWindow = { dataBytes: 32 * 2 ** 20, interiorBytes: 2 ** 20, concurrency: 4, batchBlocks: 64 };

/** Bytes a window holds now and at most so far: counted in the code, so tests check the bound without RSS. */
export class HeldBytes {
  now = 0;
  peak = 0;

  add(bytes: number): void {
    this.now += bytes;
    this.peak = Math.max(this.peak, this.now);
  }

  release(bytes: number): void {
    this.now -= bytes;
  }
}

export interface RestoreStats {
  data: HeldBytes;
  interior: HeldBytes;
}

export interface RestoreOptions {
  window?: Partial<RestoreWindow>;
  /** Where the held bytes are counted (tests read it). */
  stats?: RestoreStats;
}

interface Fetched {
  pointer: Pointer;
  bytes: Uint8Array;
}

interface Batch {
  pointers: Pointer[];
  cost: number;
  result: Promise<(Uint8Array | Error)[]>;
}

interface Limits {
  bytes: number;
  concurrency: number;
  batchBlocks: number;
}

/** The next value of `source`, or undefined at its end. */
async function pull<T>(source: AsyncIterator<T>): Promise<T | undefined> {
  const next = await source.next();
  return next.done ? undefined : next.value;
}

async function* once<T>(value: T): AsyncGenerator<T> {
  yield value;
}

/**
 * The blocks `pointers` name, fetched in batches and handed over in order. A batch is sent while
 * its cost fits in the window beside the batches not yet taken (the first always goes, so a block
 * larger than the window still passes), at most `concurrency` at once; a batch's cost is held until
 * the consumer asks for what follows its last block. The first missing block's error is thrown.
 */
async function* fetchAhead(fetcher: BlockFetcher, pointers: AsyncIterator<Pointer>, kind: BlockKind, costOf: (p: Pointer) => number, limits: Limits, held: HeldBytes): AsyncGenerator<Fetched> {
  const queue: Batch[] = [];
  let queuedCost = 0;
  const batchCostMax = Math.max(1, Math.floor(limits.bytes / limits.concurrency));
  let next = await pull(pointers);
  const send = async (): Promise<void> => {
    while (next !== undefined && queue.length < limits.concurrency && (queue.length === 0 || queuedCost + costOf(next) <= limits.bytes)) {
      const batch: Pointer[] = [];
      let cost = 0;
      while (next !== undefined && batch.length < limits.batchBlocks) {
        const c = costOf(next);
        if (batch.length > 0 && (cost + c > batchCostMax || queuedCost + cost + c > limits.bytes)) break;
        batch.push(next);
        cost += c;
        next = await pull(pointers);
      }
      // A block is at most its cost (a data block's verified length, an interior block's bound):
      // the fetcher drops longer fragments at once instead of holding them (second review).
      const result = fetcher.fetchBlocks(batch.map((p) => ({ bguid: p.bguid, kind, bytesMax: costOf(p) })));
      // Awaited in order below; a restore abandoned part way must not leave a rejection unhandled.
      result.catch(() => undefined);
      queue.push({ pointers: batch, cost, result });
      queuedCost += cost;
      held.add(cost);
    }
  };
  try {
    await send();
    for (let head = queue[0]; head !== undefined; head = queue[0]) {
      const results = await head.result;
      for (const [i, r] of results.entries()) {
        if (r instanceof Error) throw r;
        yield { pointer: head.pointers[i]!, bytes: r };
      }
      queue.shift();
      queuedCost -= head.cost;
      held.release(head.cost);
      await send();
    }
  } finally {
    // Batches still in flight are dropped with this restore: they no longer count against it.
    held.release(queuedCost);
    await pointers.return?.();
  }
}

/** The children of the interior blocks `parents` name (all at `height`), in order, each block checked against the pointer to it. */
async function* childrenOf(fetcher: BlockFetcher, parents: AsyncIterator<Pointer>, height: number, limits: Limits, held: HeldBytes): AsyncGenerator<Pointer> {
  for await (const { pointer, bytes } of fetchAhead(fetcher, parents, 'interior', () => interiorBlockBytesMax, limits, held)) {
    const node = decodeInteriorBlock(bytes);
    const sum = summarize(pointer.bguid, node.children);
    if (node.height !== height || sum.byteCount !== pointer.byteCount || sum.leafCount !== pointer.leafCount) {
      throw new IntegrityError(`interior block ${toHex(pointer.bguid).slice(0, 16)} disagrees with the pointer to it`);
    }
    yield* node.children;
  }
}

/** A version's leaves in order, each verified; the tree is walked level by level, each level a window ahead of the one below. */
async function* leavesOf(fetcher: BlockFetcher, tree: TreeRoot, window: RestoreWindow, stats: RestoreStats): AsyncGenerator<Uint8Array> {
  const interior: Limits = { bytes: window.interiorBytes, concurrency: window.concurrency, batchBlocks: window.batchBlocks };
  let pointers: AsyncIterator<Pointer> = once<Pointer>(tree);
  for (let height = tree.height; height >= 1; height--) pointers = childrenOf(fetcher, pointers, height, interior, stats.interior);
  const data: Limits = { bytes: window.dataBytes, concurrency: window.concurrency, batchBlocks: window.batchBlocks };
  for await (const { pointer, bytes } of fetchAhead(fetcher, pointers, 'data', (p) => p.byteCount, data, stats.data)) {
    if (bytes.length !== pointer.byteCount) throw new IntegrityError(`data block ${toHex(pointer.bguid).slice(0, 16)} has the wrong length`);
    yield bytes;
  }
}

/** The version's root block, fetched by its VGUID and checked against the certificate. */
async function fetchRoot(fetcher: BlockFetcher, ref: VersionRef): Promise<RootBlock> {
  const root = decodeRootBlock(await fetcher.fetchBlock(ref.vguid, 'root', ref.rootFragmentRoot));
  if (!bytesEqual(root.aguid, ref.aguid) || root.version !== ref.version) {
    throw new IntegrityError(`root block ${toHex(ref.vguid).slice(0, 16)} does not match its certificate (aguid or version)`);
  }
  return root;
}

/**
 * Streams one version into a writer from `sink`, verified to its end, without committing it;
 * the writer is discarded when anything fails. Throws (NotEnoughFragmentsError, IntegrityError)
 * when the archive cannot produce the version, or what the writer threw.
 */
async function restoreInto(fetcher: BlockFetcher, ref: VersionRef, sink: VersionSink, options: RestoreOptions): Promise<{ root: RootBlock; writer: LeafWriter }> {
  const root = await fetchRoot(fetcher, ref);
  const window = { ...defaultRestoreWindow, ...options.window };
  const stats = options.stats ?? { data: new HeldBytes(), interior: new HeldBytes() };
  const writer = await sink.open(ref, root);
  try {
    let at = 0;
    if (root.tree !== null) {
      for await (const leaf of leavesOf(fetcher, root.tree, window, stats)) {
        if (at + leaf.length > root.sizeBytes) throw new IntegrityError('leaves exceed the size the root block states');
        await writer.write(leaf);
        at += leaf.length;
      }
    }
    if (at !== root.sizeBytes) throw new IntegrityError(`leaves total ${at} bytes, the root block states ${root.sizeBytes}`);
    return { root, writer };
  } catch (error) {
    await writer.discard();
    throw error;
  }
}

/** Restores one version into a writer from `sink` and commits it once verified; returns its root block. */
export async function restoreVersionTo(fetcher: BlockFetcher, ref: VersionRef, sink: VersionSink, options: RestoreOptions = {}): Promise<RootBlock> {
  const { root, writer } = await restoreInto(fetcher, ref, sink, options);
  await commitOrDiscard(writer);
  return root;
}

async function commitOrDiscard(writer: LeafWriter): Promise<void> {
  try {
    await writer.commit();
  } catch (error) {
    await writer.discard();
    throw error;
  }
}

/**
 * A sink that gathers each version into one buffer of its size and hands it to `take` once
 * verified: for callers that want the bytes (tests, benchmarks). The version is held once, not
 * twice; one larger than a buffer can hold is refused, to be streamed to a file instead.
 */
export function bytesSink(take: (restored: RestoredVersion) => Promise<void> | void): VersionSink {
  return {
    open: (ref, root) => {
      if (root.sizeBytes > bufferConstants.MAX_LENGTH) {
        throw new InvalidArgumentError(`version of ${root.sizeBytes} bytes is larger than one buffer holds (${bufferConstants.MAX_LENGTH}); restore it to a file`);
      }
      const bytes = new Uint8Array(root.sizeBytes);
      let at = 0;
      return {
        write: (leaf) => {
          bytes.set(leaf, at);
          at += leaf.length;
        },
        commit: () => take({ ref, root, bytes }),
        discard: () => undefined,
      };
    },
  };
}

/** Rebuilds one version's bytes in memory; throws (NotEnoughFragmentsError, IntegrityError) when it cannot. */
export async function restoreVersion(fetcher: BlockFetcher, ref: VersionRef, options: RestoreOptions = {}): Promise<RestoredVersion> {
  let restored: RestoredVersion | undefined;
  await restoreVersionTo(fetcher, ref, bytesSink((r) => void (restored = r)), options);
  return restored!;
}

export interface RestoreReport {
  restored: number;
  restoredBytes: number;
  failed: { aguid: string; version: number; reason: string }[];
  /** Version v's previous VGUID differs from the restored version v - 1's VGUID. */
  chainBreaks: string[];
}

/**
 * Restores every version in `versions` (in order), streaming each into a writer from `sink` and
 * committing it once verified; keeps going past failures and reports them.
 */
export async function streamVersions(
  fetcher: BlockFetcher,
  versions: readonly VersionRef[],
  sink: VersionSink,
  onProgress?: (done: number, total: number, restoredBytes: number) => void,
  options: RestoreOptions = {},
): Promise<RestoreReport> {
  const report: RestoreReport = { restored: 0, restoredBytes: 0, failed: [], chainBreaks: [] };
  const previous = new Map<string, { version: number; vguid: Uint8Array }>();
  for (const [i, ref] of versions.entries()) {
    const aguidHex = toHex(ref.aguid);
    try {
      const { root, writer } = await restoreInto(fetcher, ref, sink, options);
      const prior = previous.get(aguidHex);
      if (prior && prior.version === ref.version - 1 && !bytesEqual(prior.vguid, root.previousVguid)) {
        report.chainBreaks.push(`${aguidHex}@${ref.version}`);
      }
      previous.set(aguidHex, { version: ref.version, vguid: ref.vguid });
      await commitOrDiscard(writer);
      report.restored++;
      report.restoredBytes += root.sizeBytes;
    } catch (error) {
      report.failed.push({ aguid: aguidHex, version: ref.version, reason: (error as Error).message });
    }
    onProgress?.(i + 1, versions.length, report.restoredBytes);
  }
  return report;
}

/** streamVersions for callers that want each version's bytes in memory. */
export function restoreVersions(
  fetcher: BlockFetcher,
  versions: readonly VersionRef[],
  take: (restored: RestoredVersion) => Promise<void> | void,
  onProgress?: (done: number, total: number, restoredBytes: number) => void,
): Promise<RestoreReport> {
  return streamVersions(fetcher, versions, bytesSink(take), onProgress);
}
