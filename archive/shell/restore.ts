/**
 * Restore from the archive alone: with every ring server and secondary replica gone, the ring
 * public key and the archive servers' addresses are enough to rebuild every certified version.
 *
 *   1. Discovery: every archive server lists the certificates stored beside root blocks; each is
 *      decoded and verified under the ring public key (one pairing per signed batch, thanks to the
 *      verifier's cache). Committed statements give (aguid, version, VGUID).
 *   2. Per version: the root block is fetched by its VGUID (archive/shell/block-fetcher.ts: any k
 *      verified fragments, decoded block hashed against the BGUID), decoded, and checked against
 *      the certificate (aguid, version); the tree is walked level by level, each interior block
 *      checked against the pointer to it (height, byte and leaf counts), each data block against
 *      its pointer's length; the bytes are the leaves in order and must total the root's size.
 * Nothing unverified reaches the output; what cannot be fetched is reported, not guessed.
 */
import { bytesEqual, toHex } from '../../core/bytes.ts';
import type { Crypto } from '../../core/crypto.ts';
import { DecodeError, IntegrityError } from '../../core/errors.ts';
import { CertificateVerifier, decodeCertificate, encodeCertificate, type Certificate } from '../../core/threshold/index.ts';
import { decodeInteriorBlock, summarize, type Pointer } from '../../core/version/interior-block.ts';
import { decodeRootBlock, type RootBlock } from '../../core/version/root-block.ts';
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
 * listing goes on, at most emptyPagesMax times in a row. A page that does not come back leaves the
 * listing unfinished (the server counts as not answering).
 */
async function listEach(source: ArchiveSource, server: string, pageSize: number, take: (certificates: Uint8Array[], after: string) => PageTaken, onRefused: (count: number) => void): Promise<boolean> {
  let after = '';
  let empty = 0;
  for (let page = 0; page < listPagesMax; page++) {
    const reply = await source.request(server, { type: 'listCertificates', requestId: page + 1, after, limit: pageSize });
    if (!reply || reply.type !== 'certificates') return false;
    if (reply.certificates.length > pageSize) {
      onRefused(reply.certificates.length);
      return true;
    }
    empty = reply.certificates.length === 0 ? empty + 1 : 0;
    const taken = reply.certificates.length > 0 ? take(reply.certificates, after) : { valid: 0, lastKey: after };
    if ((reply.certificates.length > 0 && taken.valid === 0) || reply.next === null || reply.next <= after || reply.next < taken.lastKey || empty > emptyPagesMax) return true;
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
    listEach(source, server, options.pageSize ?? 256, take, (count) => {
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

/** Rebuilds one version's bytes from the archive; throws (NotEnoughFragmentsError, IntegrityError) when it cannot. */
/** Blocks of one tree level in batches (one request per server per batch), a few batches in flight; throws the first missing block's error. */
async function fetchAll(fetcher: BlockFetcher, pointers: readonly Pointer[], kind: BlockKind, batchBlocks: number, concurrency: number): Promise<Uint8Array[]> {
  const batches: Pointer[][] = [];
  for (let at = 0; at < pointers.length; at += batchBlocks) batches.push(pointers.slice(at, at + batchBlocks));
  const results = await mapLimit(batches, concurrency, (batch) => fetcher.fetchBlocks(batch.map((p) => ({ bguid: p.bguid, kind }))));
  return results.flat().map((r) => {
    if (r instanceof Error) throw r;
    return r;
  });
}

export async function restoreVersion(fetcher: BlockFetcher, ref: VersionRef, concurrency = 4, batchBlocks = 64): Promise<RestoredVersion> {
  const rootBytes = await fetcher.fetchBlock(ref.vguid, 'root', ref.rootFragmentRoot);
  const root = decodeRootBlock(rootBytes);
  if (!bytesEqual(root.aguid, ref.aguid) || root.version !== ref.version) {
    throw new IntegrityError(`root block ${toHex(ref.vguid).slice(0, 16)} does not match its certificate (aguid or version)`);
  }
  if (root.tree === null) return { ref, root, bytes: new Uint8Array(0) };
  let level: Pointer[] = [root.tree];
  for (let height = root.tree.height; height >= 1; height--) {
    const blocks = await fetchAll(fetcher, level, 'interior', batchBlocks, concurrency);
    level = level.flatMap((pointer, i) => {
      const node = decodeInteriorBlock(blocks[i]!);
      const sum = summarize(pointer.bguid, node.children);
      if (node.height !== height || sum.byteCount !== pointer.byteCount || sum.leafCount !== pointer.leafCount) {
        throw new IntegrityError(`interior block ${toHex(pointer.bguid).slice(0, 16)} disagrees with the pointer to it`);
      }
      return node.children;
    });
  }
  const leaves = await fetchAll(fetcher, level, 'data', batchBlocks, concurrency);
  leaves.forEach((bytes, i) => {
    if (bytes.length !== level[i]!.byteCount) throw new IntegrityError(`data block ${toHex(level[i]!.bguid).slice(0, 16)} has the wrong length`);
  });
  const out = new Uint8Array(root.sizeBytes);
  let at = 0;
  for (const leaf of leaves) {
    if (at + leaf.length > out.length) throw new IntegrityError('leaves exceed the size the root block states');
    out.set(leaf, at);
    at += leaf.length;
  }
  if (at !== out.length) throw new IntegrityError(`leaves total ${at} bytes, the root block states ${out.length}`);
  return { ref, root, bytes: out };
}

export interface RestoreReport {
  restored: number;
  restoredBytes: number;
  failed: { aguid: string; version: number; reason: string }[];
  /** Version v's previous VGUID differs from the restored version v - 1's VGUID. */
  chainBreaks: string[];
}

/**
 * Restores every version in `versions` (in order), handing each to `sink` as soon as it is
 * verified; keeps going past failures and reports them.
 */
export async function restoreVersions(
  fetcher: BlockFetcher,
  versions: readonly VersionRef[],
  sink: (restored: RestoredVersion) => Promise<void> | void,
  onProgress?: (done: number, total: number) => void,
): Promise<RestoreReport> {
  const report: RestoreReport = { restored: 0, restoredBytes: 0, failed: [], chainBreaks: [] };
  const previous = new Map<string, { version: number; vguid: Uint8Array }>();
  for (const [i, ref] of versions.entries()) {
    const aguidHex = toHex(ref.aguid);
    try {
      const restored = await restoreVersion(fetcher, ref);
      const prior = previous.get(aguidHex);
      if (prior && prior.version === ref.version - 1 && !bytesEqual(prior.vguid, restored.root.previousVguid)) {
        report.chainBreaks.push(`${aguidHex}@${ref.version}`);
      }
      previous.set(aguidHex, { version: ref.version, vguid: ref.vguid });
      await sink(restored);
      report.restored++;
      report.restoredBytes += restored.bytes.length;
    } catch (error) {
      report.failed.push({ aguid: aguidHex, version: ref.version, reason: (error as Error).message });
    }
    onProgress?.(i + 1, versions.length);
  }
  return report;
}
