/**
 * The archive over the real transport (runtime/transport.ts WebSocket + authenticated handshake,
 * runtime/machine-host.ts): 8 archive server cores and one archiver hosted in this process on
 * loopback (archive/shell/loopback-archive.ts), then m of them stopped and every version restored
 * through WsArchiveSource, the same client `oceanstore restore` uses. (Separate processes are the
 * runtime launcher's part, once it hosts the archive role.)
 */
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../../archive/shell/block-fetcher.ts';
import { LoopbackArchive } from '../../archive/shell/loopback-archive.ts';
import { discoverVersions, restoreVersions } from '../../archive/shell/restore.ts';
import { WsArchiveSource } from '../../archive/shell/ws-archive-source.ts';
import { Prng } from '../../sim/prng.ts';
import { expectedContent, k, m, makeHistory } from './sim-helpers.ts';

const log = pino({ level: 'silent' });
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

describe('archive over the WebSocket transport', () => {
  it(`archives through real sockets and restores every version with m = ${m} archive servers stopped`, async () => {
    const cluster = await LoopbackArchive.start({ crypto: nodeCrypto, random: new Prng(31), log, archiveServerCount: 8, k, m });
    stops.push(() => cluster.stop());
    const history = makeHistory(31, 4, 3, 40_000, 8192, nodeCrypto);
    for (const v of history.versions) expect(await cluster.archive(v.newBlocks, v.vguid, v.certificate, 30_000)).toBe(true);
    expect(cluster.archivedCount()).toBe(new Set(history.versions.flatMap((v) => v.newBlocks.map((b) => toHex(b.bguid)))).size);

    const stopped = ['archive-0', 'archive-3', 'archive-5', 'archive-6'];
    for (const name of stopped) await cluster.stopNode(name);
    const source = new WsArchiveSource({ crypto: nodeCrypto, log, servers: cluster.serverAddresses(), requestTimeoutMs: 700 });
    await source.start();
    stops.push(() => source.stop());
    const discovery = await discoverVersions(nodeCrypto, source, history.ringPublicKey);
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(discovery.unreachable.sort()).toEqual(stopped);
    const fetcher = new BlockFetcher(nodeCrypto, source, { k, m, ...defaultBlockFetcherOptions });
    const restored = new Map<string, Uint8Array>();
    const report = await restoreVersions(fetcher, discovery.versions, (r) => {
      restored.set(`${toHex(r.ref.aguid)}@${r.ref.version}`, r.bytes);
    });
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
  }, 60_000);
});
