/**
 * Part of `npm run bench -- replica`: 4 KiB read latency against real node processes on loopback
 * (the local topology: 4 ring servers, 8 archive servers, 2 secondaries), each read verified by
 * the reader: from a secondary, from a ring server, decoded from the archive (k fragments fetched
 * from archive servers, Merkle paths checked, Reed-Solomon decode, BGUID checked), and through the
 * SDK's read; next to a 4 KiB pread of a local file in the same run. Wall time per read, the
 * reader's CPU per read (process.cpuUsage), and the serving node's CPU per read (its
 * process_cpu_seconds_total on /metrics).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { connect, newIdentity } from '../client/index.ts';
import { clusterViewOf, Session } from '../client/session.ts';
import { ringTrustOf, verifyRead } from '../client/verify.ts';
import { fromHex } from '../core/bytes.ts';
import { bguidOf } from '../core/version/block.ts';
import { BlockFetcher } from '../archive/shell/block-fetcher.ts';
import { WsArchiveSource } from '../archive/shell/ws-archive-source.ts';
import { loadDescriptor } from '../runtime/cluster-keys.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import type { PeerAddress } from '../runtime/transport.ts';
import { Prng } from '../sim/prng.ts';
import { secondaryFirstRead, startProcessCluster, type ProcessCluster } from '../test/replica/process-cluster.ts';

const readBytes = 4096;
const objectBytes = 64 * 1024;

export interface ProcessReadRow {
  path: string;
  p50Us: number;
  p99Us: number;
  samples: number;
  /** Reader (this process) CPU per read. */
  clientCpuUs: number;
  /** Serving node's CPU per read above its idle rate (null: no single serving node). */
  serverCpuUs: number | null;
  load1: number;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (x: number): number => Math.round(x * 10) / 10;

async function nodeCpuSeconds(cluster: ProcessCluster, name: string): Promise<number> {
  const node = cluster.config.nodes.find((n) => n.name === name)!;
  const text = await (await fetch(`http://127.0.0.1:${node.adminPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const line = text.split('\n').find((l) => l.startsWith('process_cpu_seconds_total'));
  return Number(line?.split(' ').pop() ?? NaN);
}

/** Times `samples` sequential calls of `read` after `warmups`; `server` names the node whose CPU is charged. */
async function measure(path: string, samples: number, read: (i: number) => Promise<void>, cluster: ProcessCluster | null, server: string | null): Promise<ProcessReadRow> {
  for (let i = 0; i < Math.min(30, samples); i++) await read(i);
  // The serving node also ticks (tree, Tapestry, heartbeats): charge reads only what exceeds its idle rate.
  let idleCpuPerMs = 0;
  if (cluster && server) {
    const idleStart = await nodeCpuSeconds(cluster, server);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 2000));
    idleCpuPerMs = (await nodeCpuSeconds(cluster, server)) - idleStart;
    idleCpuPerMs /= performance.now() - t0;
  }
  const startedMs = performance.now();
  const serverBefore = cluster && server ? await nodeCpuSeconds(cluster, server) : 0;
  const cpuBefore = process.cpuUsage();
  const us: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await read(i);
    us.push((performance.now() - t0) * 1000);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const serverAfter = cluster && server ? (await nodeCpuSeconds(cluster, server)) - idleCpuPerMs * (performance.now() - startedMs) : 0;
  us.sort((a, b) => a - b);
  return {
    path, p50Us: round(percentile(us, 0.5)), p99Us: round(percentile(us, 0.99)), samples,
    clientCpuUs: round((cpu.user + cpu.system) / samples),
    serverCpuUs: cluster && server ? round(((serverAfter - serverBefore) * 1e6) / samples) : null,
    load1: round(loadavg()[0]!),
  };
}

async function until(what: string, timeoutMs: number, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100_000; i++) {
    if (await condition().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function processReads(quick: boolean): Promise<ProcessReadRow[]> {
  const samples = quick ? 200 : 1000;
  const cluster = await startProcessCluster();
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-replica-'));
  const store = await connect({ config: cluster.config.file, identity: newIdentity(), connectTimeoutMs: 30_000 });
  const descriptor = loadDescriptor(cluster.config, nodeCrypto);
  const view = clusterViewOf(descriptor);
  const trust = ringTrustOf(nodeCrypto, view.ringId, view.ringPublicKey);
  const session = await Session.open(view, newIdentity(), nodeCrypto);
  const servers = new Map<string, PeerAddress>(descriptor.nodes.filter((n) => n.role === 'archive').map((n) => [n.name, { url: n.url, publicKey: fromHex(n.publicKey) }]));
  const source = new WsArchiveSource({ crypto: nodeCrypto, log: pino({ level: 'silent' }), servers, requestTimeoutMs: 5000 });
  try {
    // 64 KiB in 4 KiB blocks: a 4 KiB aligned read is one data block (plus the root block as proof).
    const data = new Uint8Array(randomBytes(objectBytes));
    const obj = await store.create('bench-reads', { blockBytes: readBytes });
    const written = await obj.write(data);
    const random = new Prng(21);
    const offsets = Array.from({ length: samples + 50 }, () => random.int(objectBytes / readBytes) * readBytes);
    const request = (i: number) => ({ aguid: obj.aguid, version: null, offset: offsets[i % offsets.length]!, length: readBytes, maxAgeMs: 0 });
    const check = (member: string) => async (i: number): Promise<void> => {
      const r = request(i);
      const reply = await session.read(member, r, { timeoutMs: 5000 });
      const checked = verifyRead(nodeCrypto, trust, { type: 'read', ...r, requestId: reply.requestId }, reply, Date.now());
      if (!checked.ok || checked.value.version < written.version) throw new Error(`${member}: ${checked.ok ? 'behind' : checked.reason}`);
    };
    // The secondary joins on the first read through it, then catches up.
    await until('replica-0 to serve the object', 60_000, async () => (await secondaryFirstRead(session, trust, request(0), written.version)).member === 'replica-0');
    const rows: ProcessReadRow[] = [];
    rows.push(await measure('secondary (replica-0) over loopback, verified', samples, check('replica-0'), cluster, 'replica-0'));
    rows.push(await measure('ring server (ring-0) over loopback, verified', samples, check('ring-0'), cluster, 'ring-0'));
    rows.push(await measure('SDK obj.read({offset, length: 4096})', quick ? 100 : 300, async (i) => void (await obj.read({ offset: offsets[i % offsets.length]!, length: readBytes })), cluster, null));

    // The data blocks' BGUIDs, from a verified proof; then wait until the archive holds them.
    const dataBguids: Uint8Array[] = [];
    for (let offset = 0; offset < objectBytes; offset += readBytes) {
      const r = { aguid: obj.aguid, version: written.version, offset, length: readBytes, maxAgeMs: 0 };
      const reply = await session.read('ring-0', r, { timeoutMs: 5000 });
      if (!verifyRead(nodeCrypto, trust, { type: 'read', ...r, requestId: reply.requestId }, reply, Date.now()).ok) throw new Error('ring-0 read failed');
      const block = reply.blocks.filter((b) => b.kind === 'data').pop()!;
      dataBguids.push(bguidOf(nodeCrypto, 'data', block.bytes));
    }
    await source.start();
    // No decoded-block cache: every read fetches k fragments and decodes.
    const fetcher = new BlockFetcher(nodeCrypto, source, { k: cluster.config.erasure.k, m: cluster.config.erasure.m, windowExtra: 8, cacheBytesMax: 0 });
    await until('the archive to hold every data block', 60_000, async () => {
      const results = await fetcher.fetchBlocks(dataBguids.map((bguid) => ({ bguid, kind: 'data' as const })));
      return results.every((r) => r instanceof Uint8Array);
    });
    rows.push(
      await measure('archive: k fragments over loopback, paths checked, decoded, BGUID checked', samples, async (i) => {
        const at = offsets[i % offsets.length]! / readBytes;
        const block = await fetcher.fetchBlock(dataBguids[at]!, 'data');
        if (block.length !== readBytes) throw new Error('short block');
      }, null, null),
    );

    // Baseline in the same run: the same bytes from a local file (page cache).
    const file = join(dir, 'object.bin');
    writeFileSync(file, data);
    const fd = openSync(file, 'r');
    const buffer = new Uint8Array(readBytes);
    rows.push(await measure('local file, pread of an open file (page cache, no verification)', samples, async (i) => void readSync(fd, buffer, 0, readBytes, offsets[i % offsets.length]!), null, null));
    closeSync(fd);
    return rows;
  } finally {
    await source.stop();
    await session.close();
    await store.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
