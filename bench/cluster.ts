/**
 * `npm run bench -- cluster [--config FILE] [--quick] [--phases 1,16,256,big]`: end to end through real processes.
 * Starts a scratch copy of the config (14 processes for local.json) on loopback, then measures
 * 4 KiB update latency and throughput at 1, 16 and 256 concurrent clients and 2 MiB writes (block
 * pushed to every ring server off the agreement path, then an ordered update naming it), next to
 * raw fsync'd file writes of the same sizes on the same disk in the same run.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { chainWriter, ringServiceOf, withTimeout } from '../runtime/chain-writer.ts';
import { loadClusterConfig, type ClusterConfig } from '../runtime/cluster-config.ts';
import { initCluster, loadDescriptor } from '../runtime/cluster-keys.ts';
import { LmdbKvStore } from '../runtime/lmdb-kv-store.ts';
import { spawnNode, stopAll, waitReady } from '../runtime/cluster-launcher.ts';
import { silentLogger } from '../runtime/log.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { RingSession } from '../runtime/ring-session.ts';
import { scratchClusterConfig } from '../runtime/scratch-cluster.ts';
import { machineDescription } from './_machine.ts';

interface PhaseResult {
  name: string;
  /** CPU of all ring server processes per operation (from their /metrics), when measured. */
  ringCpuMsPerOp?: number;
  /** CPU of every other node process (archive servers, secondaries) per operation. */
  otherCpuMsPerOp?: number;
  /** CPU of this benchmark process (the clients: signing, verifying replies and certificates) per operation. */
  clientCpuMsPerOp?: number;
  /** fsync'd flushes per operation (ring servers together, other nodes together) and the ring's mean flush time. */
  flushes?: { ringPerOp: number; ringMeanMs: number; otherPerOp: number };
  /** Per ring server, the mean time from a request's receipt to its reply leaving (its /metrics histogram). */
  serverMs?: { name: string; meanMs: number }[];
  readonly clients: number;
  readonly operations: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly perSecond: number;
  readonly mbPerSecond: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(name: string, clients: number, latencies: number[], wallMs: number, bytesEach: number): PhaseResult {
  const sorted = [...latencies].sort((a, b) => a - b);
  const perSecond = latencies.length / (wallMs / 1000);
  return { name, clients, operations: latencies.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), perSecond, mbPerSecond: (perSecond * bytesEach) / 2 ** 20 };
}

/** `clients` ring clients each write `perClient` chained updates of `valueBytes` back to back. */
async function updatePhase(session: RingSession, clients: number, perClient: number, valueBytes: number): Promise<PhaseResult> {
  const value = new Uint8Array(valueBytes).fill(7);
  const writers = await Promise.all(Array.from({ length: clients }, (_, i) => chainWriter(session, i, `bench-${clients}-${valueBytes}`)));
  await Promise.all(writers.map((w) => w.prepare(120_000))); // object creation, outside the measurement
  const latencies: number[] = [];
  const startedMs = performance.now();
  await Promise.all(
    writers.map(async (w) => {
      for (let k = 0; k < perClient; k++) latencies.push(await w.write(value, 120_000));
    }),
  );
  return summarize(`${valueBytes / 1024} KiB update`, clients, latencies, performance.now() - startedMs, valueBytes);
}

/** 2 MiB writes: the block goes to every ring server (durable on 2f+1), then an ordered update names it. */
async function bigWritePhase(session: RingSession, count: number, blockBytes: number): Promise<PhaseResult> {
  const writer = await chainWriter(session, 0, 'bench-big');
  await writer.prepare(120_000);
  const latencies: number[] = [];
  const startedMs = performance.now();
  for (let k = 0; k < count; k++) {
    const block = new Uint8Array(blockBytes);
    for (let i = 0; i < block.length; i += 4096) block[i] = (k + i) & 0xff; // distinct BGUIDs
    const t0 = performance.now();
    const bguid = await withTimeout(session.putBlock(block), 120_000, 'put-block');
    await writer.writeBlock(bguid, blockBytes, 120_000);
    latencies.push(performance.now() - t0);
  }
  return summarize(`${blockBytes / 2 ** 20} MiB write`, 1, latencies, performance.now() - startedMs, blockBytes);
}

/** The physical limit: write + fsync of the same sizes, sequentially, in the cluster's data directory. */
function fsyncBaseline(dir: string, count: number, bytes: number): PhaseResult {
  const file = join(dir, `baseline-${bytes}.bin`);
  const buffer = new Uint8Array(bytes).fill(3);
  const fd = openSync(file, 'w');
  const latencies: number[] = [];
  const startedMs = performance.now();
  try {
    for (let k = 0; k < count; k++) {
      const t0 = performance.now();
      writeSync(fd, buffer, 0, bytes, k * bytes);
      fsyncSync(fd);
      latencies.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return summarize(`raw write+fsync ${bytes >= 2 ** 20 ? `${bytes / 2 ** 20} MiB` : `${bytes / 1024} KiB`}`, 1, latencies, performance.now() - startedMs, bytes);
}

/**
 * The store alone: one 4 KiB put + flush at a time (one fsync'd lmdb transaction each), then
 * `concurrency` writers staging and flushing at once, which group commit folds into few fsyncs.
 */
async function storePhases(dir: string, count: number, concurrency: number): Promise<PhaseResult[]> {
  const sync = new LmdbKvStore({ path: join(dir, 'store-bench-sync'), syncCommit: true });
  const value4k = new Uint8Array(4096).fill(5);
  const syncLatencies: number[] = [];
  const syncStartedMs = performance.now();
  for (let k = 0; k < count; k++) {
    const t0 = performance.now();
    sync.put(`s/${k}`, value4k);
    await sync.flush();
    syncLatencies.push(performance.now() - t0);
  }
  const syncOne = summarize('lmdb put+flush 4K (sync)', 1, syncLatencies, performance.now() - syncStartedMs, 4096);
  await sync.close();
  const store = new LmdbKvStore({ path: join(dir, 'store-bench') });
  const value = new Uint8Array(4096).fill(5);
  const serial: number[] = [];
  let startedMs = performance.now();
  for (let k = 0; k < count; k++) {
    const t0 = performance.now();
    store.put(`s/${k}`, value);
    await store.flush();
    serial.push(performance.now() - t0);
  }
  const one = summarize('lmdb put+flush 4K (async)', 1, serial, performance.now() - startedMs, 4096);
  const grouped: number[] = [];
  const flushesBefore = store.flushStats().flushCount;
  startedMs = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let k = 0; k < count; k++) {
        const t0 = performance.now();
        store.put(`g/${w}/${k}`, value);
        await store.flush();
        grouped.push(performance.now() - t0);
      }
    }),
  );
  const many = summarize(`lmdb async group x${concurrency}`, concurrency, grouped, performance.now() - startedMs, 4096);
  const flushes = store.flushStats().flushCount - flushesBefore;
  await store.close();
  console.log(`group commit: ${grouped.length} flush() calls from ${concurrency} writers took ${flushes} fsync'd transactions`);
  return [syncOne, one, many];
}

interface NodeCounters {
  ring: number;
  other: number;
  client: number;
  /** Ring servers' group-commit flushes (each one fsync'd lmdb transaction) and their total seconds. */
  ringFlushes: number;
  ringFlushSeconds: number;
  otherFlushes: number;
  /** Per ring server: requests answered and the summed seconds from receipt to reply. */
  requests: Map<string, { count: number; seconds: number }>;
}

/** Counters of every node, read from its Prometheus endpoint, summed per kind (ring / other). */
async function nodeCounters(config: ClusterConfig): Promise<NodeCounters> {
  const usage = process.cpuUsage();
  const totals: NodeCounters = {
    ring: 0, other: 0, client: (usage.user + usage.system) / 1e6, ringFlushes: 0, ringFlushSeconds: 0, otherFlushes: 0, requests: new Map(),
  };
  for (const n of config.nodes) {
    const lines = (await (await fetch(`http://127.0.0.1:${n.adminPort}/metrics`)).text()).split('\n');
    const value = (prefix: string) => Number(lines.find((l) => l.startsWith(prefix))?.split(' ').pop() ?? 0);
    const ring = n.role === 'ring';
    totals[ring ? 'ring' : 'other'] += value('process_cpu_seconds_total');
    if (ring) totals.ringFlushSeconds += value('oceanstore_store_flush_seconds_sum');
    if (ring) totals.requests.set(n.name, { count: value('oceanstore_request_latency_seconds_count'), seconds: value('oceanstore_request_latency_seconds_sum') });
    totals[ring ? 'ringFlushes' : 'otherFlushes'] += value('oceanstore_store_flush_seconds_count');
  }
  return totals;
}

async function measured(config: ClusterConfig, phase: () => Promise<PhaseResult>): Promise<PhaseResult> {
  const before = await nodeCounters(config);
  const result = await phase();
  const after = await nodeCounters(config);
  const perOp = (k: Exclude<keyof NodeCounters, 'requests'>, scale: number) => ((after[k] - before[k]) * scale) / result.operations;
  result.serverMs = [...after.requests].map(([name, a]) => {
    const b = before.requests.get(name) ?? { count: 0, seconds: 0 };
    return { name, meanMs: a.count > b.count ? ((a.seconds - b.seconds) * 1000) / (a.count - b.count) : NaN };
  });
  result.ringCpuMsPerOp = perOp('ring', 1000);
  result.otherCpuMsPerOp = perOp('other', 1000);
  result.clientCpuMsPerOp = perOp('client', 1000);
  const flushes = after.ringFlushes - before.ringFlushes;
  result.flushes = {
    ringPerOp: perOp('ringFlushes', 1),
    ringMeanMs: flushes > 0 ? ((after.ringFlushSeconds - before.ringFlushSeconds) * 1000) / flushes : NaN,
    otherPerOp: perOp('otherFlushes', 1),
  };
  return result;
}

async function startCluster(config: ClusterConfig): Promise<number> {
  const t0 = Date.now();
  for (const n of config.nodes) await spawnNode(config, n.name);
  await waitReady(config, config.nodes.map((n) => n.name), 60_000);
  return Date.now() - t0;
}

const allPhases = ['1', '16', '256', 'big'];

function phasesOf(args: string[]): Set<string> {
  const at = args.indexOf('--phases');
  if (at < 0) return new Set(allPhases);
  const chosen = (args[at + 1] ?? '').split(',');
  for (const p of chosen) if (!allPhases.includes(p)) throw new Error(`--phases: unknown phase '${p}' (choose from ${allPhases.join(', ')})`);
  return new Set(chosen);
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const at = args.indexOf('--config');
  const shipped = at >= 0 && args[at + 1] ? args[at + 1]! : 'cluster-configs/local.json';
  // Under the repository's data/ so the baseline and the nodes write to the same disk.
  const dir = resolve('data', `bench-cluster-${process.pid}`);
  const config = loadClusterConfig(await scratchClusterConfig(shipped, dir));
  initCluster(config, nodeCrypto);
  const n = (full: number) => (quick ? Math.max(1, Math.ceil(full / 8)) : full);
  const results: PhaseResult[] = [];
  let session: RingSession | null = null;
  let upMs = 0;
  let service = 'unknown';
  let certificates: [number, number] = [0, 0];
  // The disk baseline runs before and after the cluster (other load on a shared machine moves it
  // a lot); the table shows both and the goal uses their mean.
  mkdirSync(dir, { recursive: true });
  const before = [fsyncBaseline(dir, n(200), 4096), fsyncBaseline(dir, n(12), 2 * 2 ** 20)];
  try {
    upMs = await startCluster(config);
    session = new RingSession({ descriptor: loadDescriptor(config, nodeCrypto), crypto: nodeCrypto, log: silentLogger(), clientCount: 256, certificates: 'deferred', retransmitMs: 2000 });
    await session.start();
    service = await ringServiceOf(session);
    await updatePhase(session, 4, 5, 4096); // warm-up: connections, JIT, first view
    const s = session;
    // --phases 256,big runs only those (for profiling one load level); the table needs all four.
    const phases = phasesOf(args);
    if (phases.has('1')) results.push(await measured(config, () => updatePhase(s, 1, n(200), 4096)));
    if (phases.has('16')) results.push(await measured(config, () => updatePhase(s, 16, n(40), 4096)));
    if (phases.has('256')) results.push(await measured(config, () => updatePhase(s, 256, n(8), 4096)));
    if (phases.has('big')) results.push(await measured(config, () => bigWritePhase(s, n(12), 2 * 2 ** 20)));
    certificates = session.verifyRecordedCertificates();
  } finally {
    await session?.stop();
    await stopAll(config);
  }
  const after = [fsyncBaseline(dir, n(200), 4096), fsyncBaseline(dir, n(12), 2 * 2 ** 20)];
  const store = await storePhases(dir, n(200), 64);
  rmSync(dir, { recursive: true, force: true });
  for (const b of before) b.name += ' (before)';
  for (const b of after) b.name += ' (after)';
  report(config, [...results, ...store], [before[0]!, after[0]!, before[1]!, after[1]!], upMs, certificates, quick, service);
}

function report(
  config: ClusterConfig, results: PhaseResult[], baselines: PhaseResult[], upMs: number, certificates: [number, number], quick: boolean, service: string,
): void {
  const ringCount = config.nodes.filter((x) => x.role === 'ring').length;
  const expansion = (config.erasure.k + config.erasure.m) / config.erasure.k;
  const amplification = ringCount + expansion;
  const rows = [...results, ...baselines];
  const fmt = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '-');
  console.log(`\ncluster benchmark: ${config.nodes.length} processes (${ringCount} ring, f = ${config.f}), real ed25519 + BLS + lmdb fsync, loopback ws, ring service '${service}'${quick ? ' [--quick]' : ''}`);
  console.log(`cluster ready in ${(upMs / 1000).toFixed(1)} s; certificates checked after the run: ${certificates[0]}/${certificates[1]} valid`);
  console.log(`load average at the end (1/5/15 min): ${loadavg().map((x) => x.toFixed(1)).join(' / ')} on ${machineDescription().cores} cores\n`);
  console.log(`${'phase'.padEnd(32)} ${'clients'.padStart(7)} ${'ops'.padStart(6)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'ops/s'.padStart(9)} ${'MB/s'.padStart(8)} ${'ring CPU ms/op'.padStart(15)} ${'other'.padStart(7)} ${'client'.padStart(7)}`);
  for (const r of rows) {
    const cpu = (v: number | undefined, width: number) => (v === undefined ? '-' : fmt(v)).padStart(width);
    console.log(`${r.name.padEnd(32)} ${String(r.clients).padStart(7)} ${String(r.operations).padStart(6)} ${fmt(r.p50Ms).padStart(8)} ${fmt(r.p99Ms).padStart(8)} ${fmt(r.perSecond).padStart(9)} ${fmt(r.mbPerSecond, 2).padStart(8)} ${cpu(r.ringCpuMsPerOp, 15)} ${cpu(r.otherCpuMsPerOp, 7)} ${cpu(r.clientCpuMsPerOp, 7)}`);
  }
  console.log('(CPU ms/op during the phase, per operation: ring = all ring server processes; other = archive servers and');
  console.log(' secondaries; client = this process, which runs every client: signing, verifying replies and certificates)');
  for (const r of results) {
    if (!r.flushes) continue;
    const { ringPerOp, ringMeanMs, otherPerOp } = r.flushes;
    console.log(`fsync'd flushes in '${r.name}' x${r.clients}: ring servers ${fmt(ringPerOp, 2)} per op (mean ${fmt(ringMeanMs, 2)} ms each), other nodes ${fmt(otherPerOp, 2)} per op`);
    if (r.serverMs) console.log(`  request receipt -> reply at each ring server, mean ms: ${r.serverMs.map((x) => `${x.name} ${fmt(x.meanMs, 2)}`).join(', ')}`);
  }
  const phase = (name: string, clients: number) => results.find((r) => r.name === name && r.clients === clients);
  const one = phase('4 KiB update', 1);
  const many = phase('4 KiB update', 256);
  const big = phase('2 MiB write', 1);
  const raw2mMbPerSecond = (baselines[2]!.mbPerSecond + baselines[3]!.mbPerSecond) / 2;
  const bigGoal = (0.25 * raw2mMbPerSecond) / amplification;
  console.log(`\ngoals: p50 at 1 client ${fmt(one?.p50Ms ?? NaN)} ms (goal <= 15); ${fmt(many?.perSecond ?? NaN, 0)} updates/s at 256 clients (goal >= 1,000);`);
  console.log(`       2 MiB writes ${fmt(big?.mbPerSecond ?? NaN, 2)} MB/s vs goal ${fmt(bigGoal, 2)} MB/s = 25% of raw ${fmt(raw2mMbPerSecond, 1)} MB/s (mean of before/after) / amplification ${amplification} (${ringCount} ring copies + ${expansion}x archive)`);
  console.log('machine:', machineDescription());
  // A partial run (--phases) is for profiling: it leaves the recorded full results alone.
  if (results.length < allPhases.length) return;
  mkdirSync('bench/results', { recursive: true });
  writeFileSync(
    'bench/results/cluster.json',
    JSON.stringify({ machine: machineDescription(), loadAverage: loadavg(), service, quick, upMs, certificates, amplification, results, baselines, goals: { p50MsAt1: 15, updatesPerSecondAt256: 1000, bigWriteMbPerSecond: bigGoal } }, null, 2),
  );
}
