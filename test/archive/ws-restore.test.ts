/**
 * The archive over the real transport (runtime/transport.ts WebSocket + authenticated handshake,
 * runtime/machine-host.ts): 8 archive server cores and one archiver hosted in this process on
 * loopback, then m of them stopped and every version restored through WsArchiveSource, the same
 * client `oceanstore restore` uses. (Separate processes are the runtime's launcher's job.)
 */
import { createServer } from 'node:net';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { MachineHost, type DurableKvStore } from '../../runtime/machine-host.ts';
import { channels } from '../../runtime/roles.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { archiveServerBinding, archiverBinding } from '../../archive/shell/archive-binding.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../../archive/shell/block-fetcher.ts';
import { discoverVersions, restoreVersions } from '../../archive/shell/restore.ts';
import { WsArchiveSource } from '../../archive/shell/ws-archive-source.ts';
import type { Archiver } from '../../archive/archiver.ts';
import { Prng } from '../../sim/prng.ts';
import { expectedContent, k, m, makeHistory } from './sim-helpers.ts';

class InstantStore extends MemoryKvStore implements DurableKvStore {
  readonly dirty = false;
  async flush(): Promise<void> {}
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const endMs = performance.now() + timeoutMs;
  while (performance.now() < endMs) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return condition();
}

const log = pino({ level: 'silent' });
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

describe('archive over the WebSocket transport', () => {
  it(`archives through real sockets and restores every version with m = ${m} archive servers stopped`, async () => {
    const random = new Prng(31);
    const archiveNames = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
    const names = [...archiveNames, 'ring-0'];
    const secrets = new Map(names.map((n) => [n, random.bytes(32)]));
    const members = new Map<string, PeerAddress>();
    const ports = new Map<string, number>();
    for (const n of names) {
      ports.set(n, await freePort());
      members.set(n, { publicKey: nodeCrypto.ed25519PublicKey(secrets.get(n)!), url: `ws://127.0.0.1:${ports.get(n)}` });
    }
    const hosts = new Map<string, { stop: () => Promise<void> }>();
    let archiver: Archiver | null = null;
    let ringHost: MachineHost | null = null;
    for (const name of names) {
      const transport = new Transport({
        name, secretKey: secrets.get(name)!, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port: ports.get(name)! },
        acceptClients: true, frameBytesMax: 64 * 2 ** 20 + 1, log,
      });
      const store = new InstantStore();
      const host = new MachineHost(name, transport, store, log);
      const context = { nodeId: name, store, random, nowMs: Date.now() };
      if (name === 'ring-0') {
        const built = archiverBinding(context, {
          crypto: nodeCrypto, ringServers: ['ring-0'], archiveServers: archiveNames,
          archiveServerKeys: new Map(archiveNames.map((n) => [n, members.get(n)!.publicKey])),
          k, m, fallbackTimeoutMs: 1000, fallbackRanksMax: 0, storeTimeoutMs: 3000, attemptsMax: 5,
        });
        archiver = built.archiver;
        ringHost = host;
        host.add(built.binding);
      } else {
        host.add(archiveServerBinding({ context, crypto: nodeCrypto, secretKey: secrets.get(name)!, archiveServers: archiveNames, ringServers: ['ring-0'] }).binding);
      }
      await transport.start();
      host.start();
      const stop = async (): Promise<void> => {
        await host.stop();
        await transport.stop();
      };
      hosts.set(name, { stop });
      stops.push(stop);
    }
    const history = makeHistory(31, 4, 3, 40_000, 8192, nodeCrypto);
    for (const v of history.versions) ringHost!.execute(channels.archive, (nowMs) => archiver!.archive(v.newBlocks, v.vguid, v.certificate, nowMs));
    expect(await waitFor(() => archiver!.pendingCount() === 0, 30_000)).toBe(true);
    expect(archiver!.counters.archived).toBe(new Set(history.versions.flatMap((v) => v.newBlocks.map((b) => toHex(b.bguid)))).size);

    for (const name of ['archive-0', 'archive-3', 'archive-5', 'archive-6']) await hosts.get(name)!.stop();
    const source = new WsArchiveSource({ crypto: nodeCrypto, log, servers: new Map(archiveNames.map((n) => [n, members.get(n)!])), requestTimeoutMs: 700 });
    await source.start();
    stops.push(() => source.stop());
    const discovery = await discoverVersions(nodeCrypto, source, history.ringPublicKey);
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(discovery.unreachable.sort()).toEqual(['archive-0', 'archive-3', 'archive-5', 'archive-6']);
    const fetcher = new BlockFetcher(nodeCrypto, source, { k, m, ...defaultBlockFetcherOptions });
    const restored = new Map<string, Uint8Array>();
    const report = await restoreVersions(fetcher, discovery.versions, (r) => {
      restored.set(`${toHex(r.ref.aguid)}@${r.ref.version}`, r.bytes);
    });
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
  }, 60_000);
});
