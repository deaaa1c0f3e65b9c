/**
 * What `oceanstore restore` does, independent of sockets and files so it runs against the
 * simulator as well as real servers: pick the versions to restore (one object's latest or a given
 * version, or everything), restore each through the verifying fetcher, stream the verified bytes
 * to a sink, and return a report that says exactly what is missing.
 */
import { bytesEqual, toHex } from '../../core/bytes.ts';
import type { Crypto } from '../../core/crypto.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { ArchiveSource } from './archive-source.ts';
import { BlockFetcher, defaultBlockFetcherOptions, type FetchStats } from './block-fetcher.ts';
import { bytesSink, discoverVersions, streamVersions, type RestoredVersion, type RestoreReport, type VersionRef, type VersionSink } from './restore.ts';

export interface RestoreTarget {
  /** One object; absent = every object the archive holds certificates for. */
  aguid?: Uint8Array;
  /** With `aguid`: this version (default: the latest certified one). */
  version?: number;
  /** With `aguid`: every version instead of one. */
  allVersions?: boolean;
}

export interface RestoreToolOptions {
  crypto: Crypto;
  source: ArchiveSource;
  ringPublicKey: Uint8Array;
  /** When given, certificates of another ring are ignored. */
  ringId?: Uint8Array;
  k: number;
  m: number;
  target: RestoreTarget;
  /** A VersionSink streams each version (the CLI's files); a function gets each version's bytes in memory. */
  sink: VersionSink | ((restored: RestoredVersion) => Promise<void> | void);
  onProgress?: (done: number, total: number, bytes: number) => void;
}

export interface RestoreToolReport extends RestoreReport {
  selected: { aguid: string; version: number; vguid: string }[];
  /** Certificates found but refused (bad signature, malformed): evidence of a faulty server. */
  rejectedCertificates: number;
  conflicts: string[];
  unreachableServers: string[];
  fetch: FetchStats;
  elapsedMs: number;
}

/** Why nothing was found, when archive servers did not answer: they may hold what was asked for. */
function silence(unreachable: readonly string[], serverCount: number): string {
  if (unreachable.length === 0) return '';
  return unreachable.length === serverCount
    ? `; none of the ${serverCount} archive servers answered (${unreachable.join(', ')}): are they running and reachable?`
    : `; ${unreachable.length} of ${serverCount} archive servers did not answer (${unreachable.join(', ')}) and may hold it`;
}

function select(versions: readonly VersionRef[], target: RestoreTarget, unreachable: readonly string[], serverCount: number): VersionRef[] {
  if (!target.aguid) return [...versions];
  const mine = versions.filter((v) => bytesEqual(v.aguid, target.aguid!));
  if (mine.length === 0) {
    if (unreachable.length === serverCount && serverCount > 0) {
      throw new NotFoundError(`could not look for ${toHex(target.aguid)}${silence(unreachable, serverCount)}`);
    }
    throw new NotFoundError(`the archive holds no certified version of ${toHex(target.aguid)}${silence(unreachable, serverCount)}`);
  }
  if (target.allVersions) return mine;
  if (target.version === undefined) return [mine[mine.length - 1]!];
  const one = mine.find((v) => v.version === target.version);
  if (!one) throw new NotFoundError(`version ${target.version} of ${toHex(target.aguid)} is not in the archive (have ${mine.map((v) => v.version).join(', ')})${silence(unreachable, serverCount)}`);
  return [one];
}

/**
 * Decoded blocks a restore keeps for reuse. Versions of one object share most of their blocks, so
 * a restore of several keeps up to 256 MiB; one version shares only repeated blocks (a sparse or
 * zero-filled file), which a small cache covers: it held every block it had fetched, 256 MiB more
 * memory for a 256 MiB version.
 */
export function blockCacheBytesFor(versionCount: number): number {
  return versionCount > 1 ? defaultBlockFetcherOptions.cacheBytesMax : 16 * 2 ** 20;
}

export async function runRestore(o: RestoreToolOptions, nowMs: () => number): Promise<RestoreToolReport> {
  const startMs = nowMs();
  const discovery = await discoverVersions(o.crypto, o.source, o.ringPublicKey, { aguid: o.target.aguid });
  const versions = o.ringId ? discovery.versions.filter((v) => bytesEqual(v.certificate.statement.ringId, o.ringId!)) : discovery.versions;
  const selected = select(versions, o.target, discovery.unreachable, o.source.servers.length);
  const fetcher = new BlockFetcher(o.crypto, o.source, { k: o.k, m: o.m, ...defaultBlockFetcherOptions, cacheBytesMax: blockCacheBytesFor(selected.length) });
  fetcher.markUnanswering(discovery.unreachable);
  const sink = typeof o.sink === 'function' ? bytesSink(o.sink) : o.sink;
  const report = await streamVersions(fetcher, selected, sink, o.onProgress);
  return {
    ...report,
    selected: selected.map((v) => ({ aguid: toHex(v.aguid), version: v.version, vguid: toHex(v.vguid) })),
    rejectedCertificates: discovery.rejectedCount,
    conflicts: discovery.conflicts,
    unreachableServers: discovery.unreachable,
    fetch: fetcher.stats,
    elapsedMs: nowMs() - startMs,
  };
}
