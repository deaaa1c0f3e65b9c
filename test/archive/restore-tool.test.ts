/**
 * The restore tool's logic (what `oceanstore restore` runs) against in-process archive servers,
 * and its argument rules.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { NotFoundError } from '../../core/errors.ts';
import { blockCacheBytesFor, runRestore } from '../../archive/shell/restore-tool.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../../archive/shell/block-fetcher.ts';
import { bytesSink, discoverVersions, streamVersions } from '../../archive/shell/restore.ts';
import { parseRestoreArgs, restoreExitCode } from '../../cli/restore.ts';
import { archiveAll, crypto, k, m, makeCluster, makeHistory } from './sim-helpers.ts';

describe('restore tool', () => {
  const cluster = makeCluster(41);
  const history = makeHistory(41, 3, 4, 12_000, 4096);
  archiveAll(cluster, history);
  const base = { crypto, source: cluster.source(), ringPublicKey: history.ringPublicKey, k, m };

  it('restores the latest version of one object by default, and a given version on request', async () => {
    const object = history.versions.filter((v) => v.name === 'object-1');
    const got: Uint8Array[] = [];
    const latest = await runRestore({ ...base, target: { aguid: object[0]!.aguid }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(latest.selected.map((s) => s.version)).toEqual([3]);
    expect(got).toEqual([object[3]!.content]);
    const second = await runRestore({ ...base, target: { aguid: object[0]!.aguid, version: 1 }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(second.failed).toEqual([]);
    expect(got[1]).toEqual(object[1]!.content);
    // One version keeps only a small cache (repeated blocks): a 256 MiB restore held 256 MiB more.
    // (That the cache never passes its bound is the test below, with a bound this history exceeds.)
    expect(blockCacheBytesFor(1)).toBe(16 * 2 ** 20);
    expect(blockCacheBytesFor(2)).toBe(256 * 2 ** 20);
    expect(latest.fetch.cachedBytesPeak).toBeGreaterThan(0);
  });

  it('keeps decoded blocks across the versions of one restore, which share most of them', async () => {
    const object = history.versions.filter((v) => v.name === 'object-1');
    const got: Uint8Array[] = [];
    const report = await runRestore({ ...base, target: { aguid: object[0]!.aguid, allVersions: true }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(got).toEqual(object.map((v) => v.content));
    expect(report.fetch.cachedBytesPeak).toBeGreaterThan(0);
    expect(report.fetch.cacheHits).toBeGreaterThan(0);
  });

  it('never holds more decoded blocks than its cache bound', async () => {
    const fetcher = new BlockFetcher(crypto, cluster.source(), { k, m, ...defaultBlockFetcherOptions, cacheBytesMax: 10_000 });
    const discovery = await discoverVersions(crypto, cluster.source(), history.ringPublicKey);
    const report = await streamVersions(fetcher, discovery.versions, bytesSink(() => undefined));
    expect(report.failed).toEqual([]);
    expect(fetcher.stats.blockBytes).toBeGreaterThan(10_000);
    expect(fetcher.stats.cachedBytesPeak).toBeGreaterThan(0);
    expect(fetcher.stats.cachedBytesPeak).toBeLessThanOrEqual(10_000);
  });

  it('counts a block fetched by two batches at once in its cache once', async () => {
    const fetcher = new BlockFetcher(crypto, cluster.source(), { k, m, ...defaultBlockFetcherOptions });
    const v = history.versions[0]!;
    const [a, b] = await Promise.all([fetcher.fetchBlock(v.vguid, 'root'), fetcher.fetchBlock(v.vguid, 'root')]);
    expect(a).toEqual(b);
    expect(fetcher.stats.cachedBytesPeak).toBe(a!.length);
  });

  it('restores every version of every object with --all', async () => {
    const keys: string[] = [];
    const report = await runRestore({ ...base, target: {}, sink: (r) => void keys.push(`${toHex(r.ref.aguid)}@${r.ref.version}`) }, () => 0);
    expect(report.restored).toBe(12);
    expect(keys.sort()).toEqual(history.versions.map((v) => `${toHex(v.aguid)}@${v.version}`).sort());
  });

  it('reports what is missing rather than guessing: a version not archived is NotFound, lost blocks are listed', async () => {
    await expect(runRestore({ ...base, target: { aguid: history.versions[0]!.aguid, version: 9 }, sink: () => {} }, () => 0)).rejects.toThrow(NotFoundError);
    // Take the whole archive of one data block away (all n fragments): that version must be reported failed.
    const victim = history.versions.find((v) => v.name === 'object-2' && v.version === 0)!;
    const block = victim.newBlocks[0]!.bguid;
    for (const id of cluster.archiveServers) for (const key of cluster.sim.store(id).keys(`f/${toHex(block)}/`)) cluster.sim.store(id).delete(key);
    const report = await runRestore({ ...base, target: { aguid: victim.aguid, allVersions: true }, sink: () => {} }, () => 0);
    expect(report.failed.map((f) => f.version)).toContain(0);
    expect(report.failed[0]!.reason).toMatch(/cannot be recovered/);
  });

  it('refuses ambiguous or incomplete command lines', () => {
    expect(() => parseRestoreArgs(['obj'])).toThrow(/-o FILE/);
    expect(() => parseRestoreArgs(['--all'])).toThrow(/--out DIR/);
    expect(() => parseRestoreArgs(['--all', '--out', 'd', '--version', '2'])).toThrow(/--version/);
    expect(() => parseRestoreArgs(['a', 'b', '-o', 'f'])).toThrow(/at most one/);
    expect(() => parseRestoreArgs(['a', '--bogus'])).toThrow(/unknown option/);
    expect(parseRestoreArgs(['--verify-only']).bools.has('--verify-only')).toBe(true);
    expect(parseRestoreArgs(['obj', '--version', '3', '-o', 'out.bin']).values.get('--version')).toBe('3');
  });
});

describe('restore exit code', () => {
  const history = makeHistory(7, 1, 1);
  const base = { crypto, ringPublicKey: history.ringPublicKey, k, m, target: {}, sink: () => {} };

  it('is 1 when no archive server answers (nothing found is not a complete restore)', async () => {
    const source = { servers: ['archive-0', 'archive-1'], request: async () => null };
    const report = await runRestore({ ...base, source }, () => 0);
    expect(report.unreachableServers).toEqual(['archive-0', 'archive-1']);
    expect(restoreExitCode(report)).toBe(1);
  });

  it('counts a server whose listing stopped answering after its first page as not answering, and goes on past empty pages with more to come', async () => {
    const cluster = makeCluster(72);
    archiveAll(cluster, history);
    const inner = cluster.source();
    let asked = 0;
    const source = {
      servers: inner.servers,
      request: async (server: string, message: Parameters<typeof inner.request>[1]) => {
        if (message.type !== 'listCertificates') return inner.request(server, message);
        if (server === 'archive-0') return message.after === '' ? { type: 'certificates' as const, requestId: message.requestId, certificates: [], next: 'c/00' } : null;
        // archive-1: an empty page (checks spent) before its real listing.
        if (server === 'archive-1' && message.after === '') return { type: 'certificates' as const, requestId: message.requestId, certificates: [], next: 'c/' };
        asked++;
        return inner.request(server, message);
      },
    };
    const report = await runRestore({ ...base, source }, () => 0);
    expect(report.unreachableServers).toEqual(['archive-0']);
    expect(asked).toBeGreaterThan(0);
    expect(report.restored).toBe(report.selected.length);
  });

  it('does not fetch from the servers discovery found silent while the others suffice (each cost a timeout; session-20 review, finding 8c)', async () => {
    const cluster = makeCluster(73);
    archiveAll(cluster, history);
    const down = ['archive-1', 'archive-2', 'archive-4', 'archive-7'];
    for (const id of down) cluster.sim.crash(id);
    const inner = cluster.source();
    const fetchesToDown: string[] = [];
    const source = {
      servers: inner.servers,
      request: async (server: string, message: Parameters<typeof inner.request>[1]) => {
        if (message.type === 'fetch' && down.includes(server)) fetchesToDown.push(server);
        return inner.request(server, message);
      },
    };
    const report = await runRestore({ ...base, source }, () => 0);
    expect(report.unreachableServers).toEqual(down);
    expect(report.restored).toBe(report.selected.length);
    expect(fetchesToDown).toEqual([]);
  });

  it('is 1 when one server did not answer or a chain broke, 0 when everything restored', async () => {
    const cluster = makeCluster(71);
    archiveAll(cluster, history);
    const report = await runRestore({ ...base, source: cluster.source() }, () => 0);
    expect(report.selected.length).toBeGreaterThan(0);
    expect(restoreExitCode(report)).toBe(0);
    expect(restoreExitCode({ ...report, unreachableServers: ['archive-3'] })).toBe(1);
    // Up to m silent servers still leave every certificate listed by another (the CLI passes m).
    expect(restoreExitCode({ ...report, unreachableServers: ['archive-3'] }, m)).toBe(0);
    expect(restoreExitCode({ ...report, unreachableServers: ['archive-0', 'archive-1', 'archive-2', 'archive-3', 'archive-4'] }, m)).toBe(1);
    // One version asked for by number, restored and verified: complete however many were silent.
    const silent = ['archive-0', 'archive-1', 'archive-2', 'archive-3', 'archive-4'];
    expect(restoreExitCode({ ...report, unreachableServers: silent }, m, true)).toBe(0);
    expect(restoreExitCode({ ...report, unreachableServers: silent, failed: [{ aguid: 'x', version: 1, reason: 'gone' }] }, m, true)).toBe(1);
    expect(restoreExitCode({ ...report, chainBreaks: ['x@1'] })).toBe(1);
    expect(restoreExitCode({ ...report, selected: [], restored: 0 })).toBe(1);
  });
});
