/**
 * `npm run bench -- archive [--mib N] [--quick]`:
 *  1. archival throughput: a committed object's new blocks through the real archiver and archive
 *     server cores (erasure coding, Merkle paths, fragment records, verify-on-write, signed
 *     receipts checked), delivered in process; baselines in the same run: SHA-256 of the same
 *     bytes and makeFragments alone;
 *  2. restore throughput: the restore logic (discover + verified fetch + decode + tree walk) over
 *     an in-process source, with all servers up (data fragments: decoding is a copy) and with m
 *     servers down (parity decode);
 *  3. re-protection time of one lost archive server vs the number of servers (8..512), from the
 *     flow model in archive/repair-model.ts (FDS-style spread repair vs one replacement server).
 * Throughput is MB of block bytes per second of wall time on an otherwise shared machine, with the
 * CPU seconds alongside (the machine runs other jobs; CPU time is what the code itself costs).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg, tmpdir } from 'node:os';
import { signerOf } from '../core/crypto.ts';
import type { Effect } from '../core/machine.ts';
import { MemoryKvStore } from '../core/store.ts';
import { encodeFragment, makeFragments } from '../archive/erasure/index.ts';
import { ArchiveServer, defaultArchiveTiming } from '../archive/archive-server.ts';
import { Archiver } from '../archive/archiver.ts';
import { encodeArchiveFrame, type ArchiveMessage } from '../archive/messages.ts';
import { defaultRepairOptions } from '../archive/repairer.ts';
import { modelRepair } from '../archive/repair-model.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../archive/shell/block-fetcher.ts';
import type { ArchiveSource } from '../archive/shell/archive-source.ts';
import { discoverVersions, restoreVersion } from '../archive/shell/restore.ts';
import { buildHistory } from '../archive/sim/history.ts';
import { bguidOf } from '../core/version/block.ts';
import { LmdbKvStore } from '../runtime/lmdb-kv-store.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { Prng } from '../sim/prng.ts';
import { LoopbackArchive } from '../archive/shell/loopback-archive.ts';
import { WsArchiveSource } from '../archive/shell/ws-archive-source.ts';
import { pino } from 'pino';
import { machineDescription } from './_machine.ts';

const crypto = nodeCrypto;
const k = 4;
const m = 4;

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

interface Timed {
  wallSeconds: number;
  cpuSeconds: number;
}

async function timed(fn: () => Promise<void> | void): Promise<Timed> {
  const wall0 = performance.now();
  const cpu0 = cpuSeconds();
  await fn();
  return { wallSeconds: (performance.now() - wall0) / 1000, cpuSeconds: cpuSeconds() - cpu0 };
}

interface Cluster {
  servers: Map<string, ArchiveServer>;
  archiver: Archiver;
  down: Set<string>;
}

function makeCluster(serverCount: number, verifyReceipts: boolean): Cluster {
  const names = Array.from({ length: serverCount }, (_, i) => `archive-${i}`);
  const random = new Prng(7);
  const keys = new Map<string, Uint8Array>();
  const servers = new Map<string, ArchiveServer>();
  for (const name of names) {
    const secret = random.bytes(32);
    keys.set(name, crypto.ed25519PublicKey(secret));
    const context = { nodeId: name, store: new MemoryKvStore(), random, nowMs: 0 };
    servers.set(name, new ArchiveServer(context, { crypto, signer: signerOf(crypto, secret), archiveServers: names, ringServers: ['ring-0'], coding: { k, m }, ...defaultArchiveTiming, repair: defaultRepairOptions }));
  }
  const archiver = new Archiver({ nodeId: 'ring-0', store: new MemoryKvStore(), random, nowMs: 0 }, {
    crypto, ringServers: ['ring-0'], archiveServers: names, archiveServerKeys: keys, k, m,
    fallbackTimeoutMs: 1000, fallbackRanksMax: 0, storeTimeoutMs: 60_000, attemptsMax: 3, verifyReceipts,
  });
  return { servers, archiver, down: new Set() };
}

/** Delivers every send until quiet: the network is a function call. */
function drain(cluster: Cluster, first: Effect<ArchiveMessage, unknown>[], from: string): void {
  const queue: { from: string; to: string; message: ArchiveMessage }[] = [];
  const push = (sender: string, effects: Effect<ArchiveMessage, unknown>[]): void => {
    for (const e of effects) if (e.kind === 'send') queue.push({ from: sender, to: e.to, message: e.message });
  };
  push(from, first);
  for (let i = 0; i < queue.length; i++) {
    const { from: sender, to, message } = queue[i]!;
    if (to === 'ring-0') push(to, cluster.archiver.onMessage(sender, message, 0));
    else if (!cluster.down.has(to)) push(to, cluster.servers.get(to)!.onMessage(sender, message, 0));
  }
}

function sourceOf(cluster: Cluster): ArchiveSource {
  return {
    servers: [...cluster.servers.keys()],
    request: async (server, message) => {
      if (cluster.down.has(server)) return null;
      const effects = cluster.servers.get(server)!.onMessage('restore', message, 0);
      const reply = effects.find((e) => e.kind === 'send');
      return reply && reply.kind === 'send' ? reply.message : null;
    },
  };
}

/**
 * One archive server answering restore fetches from a real lmdb store: the first fragment of each
 * of `blockCount` random blocks stored there (1 MiB blocks, as `put` makes them: 256 KiB fragments),
 * then fetched back `rounds` times, 4 blocks a request, each reply packed as the frame the host
 * sends. The baseline in the same run is SHA-256 of the same fragment bytes, which a server must
 * hash anyway (it verifies every fragment it reads).
 */
async function serveFromLmdb(blockCount: number, blockBytes: number, rounds: number): Promise<{ hash: Timed; serve: Timed; bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-serve-'));
  const store = new LmdbKvStore({ path: dir, mapBytes: 2 ** 31 });
  try {
    const random = new Prng(11);
    const names = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
    const server = new ArchiveServer({ nodeId: 'archive-0', store, random, nowMs: 0 }, {
      crypto, signer: signerOf(crypto, random.bytes(32)), archiveServers: names, ringServers: ['ring-0'], coding: { k, m }, ...defaultArchiveTiming, repair: defaultRepairOptions,
    });
    const bguids: Uint8Array[] = [];
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < blockCount; i++) {
      const block = random.bytes(blockBytes);
      const bguid = bguidOf(crypto, 'data', block);
      const set = makeFragments(crypto, k, m, bguid, block);
      bguids.push(bguid);
      payloads.push(set.fragments[0]!.payload.slice());
      server.onMessage('ring-0', { type: 'store', requestId: i + 1, items: [{ fragment: encodeFragment(set.fragments[0]!), fragmentRoot: set.fragmentRoot, certificate: null }] }, 0);
    }
    await store.flush();
    const hash = await timed(() => {
      for (let r = 0; r < rounds; r++) for (const p of payloads) crypto.sha256([p]);
    });
    let bytes = 0;
    const serve = await timed(() => {
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < blockCount; i += 4) {
          const effects = server.onMessage('restore', { type: 'fetch', requestId: r * blockCount + i + 1, bguids: bguids.slice(i, i + 4) }, 0);
          for (const e of effects) {
            if (e.kind !== 'send' || e.message.type !== 'fetchReply') continue;
            encodeArchiveFrame(e.message, 1);
            for (const b of e.message.blocks) for (const fragment of b.fragments) bytes += fragment.length;
          }
        }
      }
    });
    if (bytes < rounds * blockCount * (blockBytes / k)) throw new Error('the server did not serve every fragment');
    return { hash, serve, bytes };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The same object archived and restored through the real transport on loopback (all in this process). */
async function restoreOverLoopback(history: ReturnType<typeof buildHistory>, version: ReturnType<typeof buildHistory>['versions'][number]): Promise<{ archive: Timed; restore: Timed }> {
  const log = pino({ level: 'silent' });
  const cluster = await LoopbackArchive.start({ crypto, random: new Prng(9), log, archiveServerCount: 8, k, m });
  try {
    let ok = false;
    const archive = await timed(async () => {
      ok = await cluster.archive(version.newBlocks, version.vguid, version.certificate, 600_000);
    });
    if (!ok) throw new Error('loopback archival did not finish');
    const source = new WsArchiveSource({ crypto, log, servers: cluster.serverAddresses(), requestTimeoutMs: 60_000 });
    await source.start();
    try {
      const discovery = await discoverVersions(crypto, source, history.ringPublicKey);
      const fetcher = new BlockFetcher(crypto, source, { k, m, ...defaultBlockFetcherOptions, cacheBytesMax: 0 });
      const restore = await timed(async () => {
        const restored = await restoreVersion(fetcher, discovery.versions[0]!);
        if (restored.bytes.length !== version.content.length) throw new Error('loopback restore length mismatch');
      });
      return { archive, restore };
    } finally {
      await source.stop();
    }
  } finally {
    await cluster.stop();
  }
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const mibAt = args.indexOf('--mib');
  const mib = mibAt >= 0 ? Number(args[mibAt + 1]) : quick ? 8 : 32;
  const blockBytes = 64 * 1024;
  console.log(`archive benchmark: one ${mib} MiB object in ${blockBytes / 1024} KiB blocks, k=${k} m=${m} over 8 archive servers (load average ${loadavg()[0]!.toFixed(1)})`);
  const history = buildHistory(crypto, new Prng(1), { objectCount: 1, versionCount: 1, sizeBytes: mib * 2 ** 20, blockBytes, fanoutMax: 64 });
  const version = history.versions[0]!;
  const blocks = version.newBlocks;
  const totalBytes = blocks.reduce((n, b) => n + b.bytes.length, 0);
  const mb = totalBytes / 1e6;

  const hashOnly = await timed(() => {
    for (const b of blocks) crypto.sha256([b.bytes]);
  });
  const fragmentsOnly = await timed(() => {
    for (const b of blocks) makeFragments(crypto, k, m, b.bguid, b.bytes);
  });
  const archiveInto = async (cluster: Cluster): Promise<Timed> => {
    const t = await timed(() => drain(cluster, cluster.archiver.archive(blocks, version.vguid, version.certificate, 0), 'ring-0'));
    if (cluster.archiver.pendingCount() !== 0 || cluster.archiver.counters.archived !== blocks.length) throw new Error('archival did not complete');
    return t;
  };
  const archivalChecked = await archiveInto(makeCluster(8, true));
  const cluster = makeCluster(8, false);
  const archival = await archiveInto(cluster);

  const source = sourceOf(cluster);
  const restoreOnce = async (): Promise<Timed> => {
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey);
    const fetcher = new BlockFetcher(crypto, source, { k, m, ...defaultBlockFetcherOptions, cacheBytesMax: 0 });
    return timed(async () => {
      const restored = await restoreVersion(fetcher, discovery.versions[0]!);
      if (restored.bytes.length !== version.content.length) throw new Error('restore length mismatch');
    });
  };
  const restoreAllUp = await restoreOnce();
  for (const s of ['archive-1', 'archive-2', 'archive-5', 'archive-6']) cluster.down.add(s);
  const restoreDegraded = await restoreOnce();

  const loopback = quick && !args.includes('--loopback') ? null : await restoreOverLoopback(history, version);
  const serveRounds = quick ? 2 : 8;
  const served = await serveFromLmdb(32, 2 ** 20, serveRounds);
  const servedMb = served.bytes / 1e6;

  const rows = [
    { what: 'SHA-256 of the blocks (baseline)', ...hashOnly },
    { what: 'makeFragments alone (encode + Merkle)', ...fragmentsOnly },
    { what: 'archive: archiver -> 8 servers, every receipt signature checked', ...archivalChecked },
    { what: 'archive: same, receipts kept unchecked (authenticated channel)', ...archival },
    { what: 'restore, all servers up', ...restoreAllUp },
    { what: `restore, ${m} of 8 servers down`, ...restoreDegraded },
    ...(loopback ? [{ what: 'restore over WebSocket loopback (8 server hosts in this process)', ...loopback.restore }] : []),
    ...(loopback ? [{ what: 'archive over WebSocket loopback (receipts checked)', ...loopback.archive }] : []),
  ].map((r) => ({ ...r, mbPerWallSecond: mb / r.wallSeconds, mbPerCpuSecond: mb / r.cpuSeconds }));
  const serveRows = [
    { what: `SHA-256 of 256 KiB fragments, ${(served.bytes / 2 ** 20).toFixed(0)} MiB (baseline for serving)`, ...served.hash },
    { what: 'one archive server serving those fragments from lmdb (read, verify, frame)', ...served.serve },
  ].map((r) => ({ what: r.what, wallSeconds: r.wallSeconds, cpuSeconds: r.cpuSeconds, mbPerWallSecond: servedMb / r.wallSeconds, mbPerCpuSecond: servedMb / r.cpuSeconds }));
  console.log('\n| path | MB/s (wall) | MB/s (CPU) |\n|---|---:|---:|');
  for (const r of [...rows, ...serveRows]) console.log(`| ${r.what} | ${r.mbPerWallSecond.toFixed(0)} | ${r.mbPerCpuSecond.toFixed(0)} |`);
  console.log(`serving runs at ${(served.hash.cpuSeconds / served.serve.cpuSeconds).toFixed(2)} of hashing's speed (1.00: nothing but the verify-on-read hash)`);

  if (args.includes('--no-model')) return;
  const repairRows = [8, 16, 32, 64, 128, 256, 512].map((serverCount) =>
    modelRepair(
      { serverCount, k, m, lostBytes: 4e12, sampleCount: quick ? 1500 : 6000, diskBytesPerSecond: 200e6, networkBytesPerSecond: 1.25e9, decodeBytesPerSecond: 1e9 },
      new Prng(serverCount),
    ),
  );
  console.log('\nre-protecting one lost server holding 4 TB (model: 200 MB/s disk, 10 Gb/s network, 1 GB/s decode per server)');
  console.log('| servers | spread repair (s) | one replacement server (s) | speed-up | bottleneck | coordinators |\n|---:|---:|---:|---:|---|---:|');
  for (const r of repairRows) {
    console.log(`| ${r.serverCount} | ${r.spreadSeconds.toFixed(0)} | ${r.singleSeconds.toFixed(0)} | ${(r.singleSeconds / r.spreadSeconds).toFixed(1)}x | ${r.bottleneck} | ${r.coordinatorCount} |`);
  }
  const machine = machineDescription();
  console.log(`\nmachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'archive.json');
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ machine, loadAverage: loadavg()[0], objectMiB: mib, blockBytes, k, m, throughput: rows, serving: serveRows, repair: repairRows }, null, 2) + '\n');
  console.log(`wrote ${out}`);
}
