import { toHex } from '../../core/bytes.ts';
import { makeFragments } from '../../archive/erasure/index.ts';
import { fragmentKeyOf } from '../../archive/fragment-store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { SimArchive } from '../../archive/sim/sim-archive.ts';
import { buildHistory, type History } from '../../archive/sim/history.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../../archive/shell/block-fetcher.ts';
import type { ArchiveSource } from '../../archive/shell/archive-source.ts';
import { discoverVersions, restoreVersions, type RestoreReport } from '../../archive/shell/restore.ts';
import { Prng } from '../../sim/prng.ts';

import type { Crypto } from '../../core/crypto.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

/**
 * Most simulation tests use the fake signatures (real SHA-256, so fragments, BGUIDs and Merkle
 * paths are real; BLS certificates are always real): ed25519 receipts dominate the cost otherwise.
 * Tests marked "real crypto" pass nodeCrypto.
 */
export const crypto: Crypto = fakeCrypto;
export { nodeCrypto };
export const k = 4;
export const m = 4;

export function makeCluster(seed: number, archiveServerCount = 8, ringServerCount = 4, withCrypto: Crypto = crypto): SimArchive {
  return new SimArchive({ seed, crypto: withCrypto, archiveServerCount, ringServerCount, k, m });
}

export function makeHistory(seed: number, objectCount: number, versionCount: number, sizeBytes = 20_000, blockBytes = 4096, withCrypto: Crypto = crypto): History {
  return buildHistory(withCrypto, new Prng(seed), { objectCount, versionCount, sizeBytes, blockBytes, fanoutMax: 4 });
}

/**
 * Hands every version to the archivers and runs until they are idle. `faulty` ring servers are not
 * waited for: an archiver retries until receipts for the genuine encoding cover every fragment,
 * which one whose stores a test rewrites never gets.
 */
export function archiveAll(cluster: SimArchive, history: History, faulty: readonly string[] = []): void {
  for (const v of history.versions) cluster.archiveVersion(v.newBlocks, v.vguid, v.certificate);
  if (!cluster.settleArchivers(120_000, faulty)) throw new Error('archivers did not finish within 120 s of virtual time');
}

export function allBlocks(history: History): Uint8Array[] {
  return history.versions.flatMap((v) => v.newBlocks.map((b) => b.bguid));
}

/** Distinct fragment indices of `bguid` that verify on live servers, under the root of the configured encoding (k, m) most of them share. */
export function liveIndexCount(cluster: SimArchive, bguid: Uint8Array): number {
  const byRoot = new Map<string, Set<number>>();
  for (const id of cluster.archiveServers) {
    const server = cluster.server(id);
    if (!server) continue;
    for (const key of cluster.sim.store(id).keys(`f/${toHex(bguid)}/`)) {
      const f = server.fragments.verifyKey(key);
      if (!f || f.record.k !== k || f.record.m !== m) continue;
      const rootHex = toHex(f.fragmentRoot);
      if (!byRoot.has(rootHex)) byRoot.set(rootHex, new Set());
      byRoot.get(rootHex)!.add(f.record.index);
    }
  }
  return Math.max(0, ...[...byRoot.values()].map((s) => s.size));
}

/** Discovers and restores every version through the in-process source (or `source`, wrapping it); returns the report and the bytes by version key. */
export async function restoreEverything(
  cluster: SimArchive,
  history: History,
  source: ArchiveSource = cluster.source(),
): Promise<{ report: RestoreReport; restored: Map<string, Uint8Array>; discovered: number; rejected: number }> {
  const discovery = await discoverVersions(cluster.options.crypto, source, history.ringPublicKey);
  const fetcher = new BlockFetcher(cluster.options.crypto, source, { k, m, ...defaultBlockFetcherOptions });
  const restored = new Map<string, Uint8Array>();
  const report = await restoreVersions(fetcher, discovery.versions, (r) => {
    restored.set(`${toHex(r.ref.aguid)}@${r.ref.version}`, r.bytes);
  });
  return { report, restored, discovered: discovery.versions.length, rejected: discovery.rejectedCount };
}

export function expectedContent(history: History): Map<string, Uint8Array> {
  return new Map(history.versions.map((v) => [`${toHex(v.aguid)}@${v.version}`, v.content]));
}

/** Runs in slices of `sliceMs` virtual ms until `condition` holds (checked between slices: it may be costly). */
export function runUntilChecked(cluster: SimArchive, condition: () => boolean, timeMsMax: number, sliceMs = 500): boolean {
  for (let elapsed = 0; elapsed < timeMsMax; elapsed += sliceMs) {
    if (condition()) return true;
    cluster.sim.runFor(sliceMs);
  }
  return condition();
}

export function fullyRedundant(cluster: SimArchive, history: History): boolean {
  return allBlocks(history).every((b) => liveIndexCount(cluster, b) === k + m);
}

/** Blocks with fewer than k + m distinct indices verifying under the genuine root on live servers (junk of the same shape does not count). */
export function shortOfGenuine(cluster: SimArchive, history: History): number {
  let short = 0;
  for (const v of history.versions) {
    for (const b of v.newBlocks) {
      const root = makeFragments(crypto, k, m, b.bguid, b.bytes!).fragmentRoot;
      const indexes = new Set<number>();
      for (const id of cluster.archiveServers) {
        const server = cluster.server(id);
        if (!server || !cluster.sim.isUp(id)) continue;
        for (const h of server.fragments.heldOf(b.bguid)) {
          if (toHex(h.fragmentRoot) === toHex(root) && server.fragments.verifyKey(fragmentKeyOf(b.bguid, root, h.index))) indexes.add(h.index);
        }
      }
      if (indexes.size < k + m) short++;
    }
  }
  return short;
}
