/**
 * `npm run bench -- client [--mib N | --full] [--small N] [--block-bytes N]`: a put and a get of
 * an N MiB file (default 256, `--full` 1024) through the CLI, each a separate process as a user
 * runs it, against a scratch local cluster (archiving on), next to `cp` + sync of the same file on
 * the same disk in the same run; and, first, small-object (4 KiB) write and read latency through the SDK.
 * Reports the client's peak RSS and CPU (from its `--json`), the cluster's CPU seconds (summed over
 * every node's /metrics) and the load average, since wall time on a shared machine says little
 * on its own.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, loadOrCreateIdentity, newIdentity } from '../client/index.ts';
import { loadClusterConfig, type ClusterConfig } from '../runtime/cluster-config.ts';
import { stopAll } from '../runtime/cluster-launcher.ts';
import { scratchClusterConfig } from '../runtime/scratch-cluster.ts';
import { machineDescription } from './_machine.ts';

const exec = promisify(execFile);
const smallLoopMsMax = 90_000;

function arg(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** CPU seconds used so far by every node of the cluster (process_cpu_seconds_total). */
async function clusterCpuSeconds(config: ClusterConfig): Promise<number> {
  let total = 0;
  for (const node of config.nodes) {
    try {
      const text = await (await fetch(`http://127.0.0.1:${node.adminPort}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
      const line = text.split('\n').find((l) => l.startsWith('process_cpu_seconds_total'));
      total += Number(line?.split(' ').at(-1) ?? 0);
    } catch {
      return NaN; // a node too busy to answer /metrics: no figure rather than a wrong one
    }
  }
  return total;
}

/** Cores the cluster uses over 3 s (idle nodes still tick, heartbeat and certify empty batches). */
async function clusterCores(config: ClusterConfig): Promise<number> {
  const before = await clusterCpuSeconds(config);
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  return ((await clusterCpuSeconds(config)) - before) / 3;
}

/** Waits (at most 180 s) until the cluster is back within 0.3 cores of its idle use; returns the wait. */
async function waitForQuiet(config: ClusterConfig, idleCores: number): Promise<number> {
  const started = performance.now();
  let last = await clusterCpuSeconds(config);
  while (performance.now() - started < 180_000) {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const now = await clusterCpuSeconds(config);
    if ((now - last) / 3 < idleCores + 0.3) break;
    last = now;
  }
  return performance.now() - started;
}

/**
 * Samples every ring server's event-loop lag (prom-client's nodejs_eventloop_lag_max_seconds,
 * reset on each scrape, so each sample is the worst stall since the previous one) every 2 s
 * until stopped; a scrape that takes longer than 10 s counts as a stall of its own.
 */
function sampleRingLag(config: ClusterConfig): { stop(): Promise<{ maxLagS: number; slowScrapes: number }> } {
  let maxLagS = 0;
  let slowScrapes = 0;
  let running = true;
  const ring = config.nodes.filter((n) => n.role === 'ring');
  const loop = (async () => {
    while (running) {
      await Promise.all(
        ring.map(async (node) => {
          try {
            const text = await (await fetch(`http://127.0.0.1:${node.adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
            const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_max_seconds'));
            maxLagS = Math.max(maxLagS, Number(line?.split(' ').at(-1) ?? 0));
          } catch {
            slowScrapes++;
          }
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { maxLagS, slowScrapes };
    },
  };
}

interface CliUsage {
  maxRssBytes: number;
  cpuUserMs: number;
  cpuSystemMs: number;
}

/** Writes `mib` MiB of fresh random bytes (distinct blocks: content addressing must not dedupe them). */
function makeInput(file: string, mib: number): void {
  const fd = openSync(file, 'w');
  try {
    for (let i = 0; i < mib; i++) writeSync(fd, randomBytes(1 << 20));
  } finally {
    closeSync(fd);
  }
}

async function startCluster(dir: string, cli: (file: string, ...a: string[]) => Promise<unknown>): Promise<string> {
  // Free ports are picked then released before the nodes bind them; a parallel process can take
  // one in between. One fresh attempt (new ports, new data) covers that race.
  for (let attempt = 0; ; attempt++) {
    const file = await scratchClusterConfig('cluster-configs/local.json', join(dir, `cluster-${attempt}`));
    try {
      await cli(file, 'cluster', 'init');
      await cli(file, 'cluster', 'up', '--detach', '--timeout-ms', '90000');
      return file;
    } catch (error) {
      await stopAll(loadClusterConfig(file), { kill: true });
      if (attempt >= 1) throw error;
    }
  }
}

export async function run_(args: string[]): Promise<void> {
  const mib = args.includes('--full') ? 1024 : arg(args, '--mib', 256);
  const smallCount = arg(args, '--small', 50);
  const blockArgs = args.includes('--block-bytes') ? ['--block-bytes', String(arg(args, '--block-bytes', 0))] : [];
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-client-'));
  // cli/launch.mjs runs the object verbs from their bundle without tsx's loader, as a user's
  // `npx oceanstore` would once bin/ points at it; other verbs go through tsx as before.
  const cli = (file: string, ...a: string[]) =>
    exec(process.execPath, ['cli/launch.mjs', ...a, '--config', file], { timeout: 1_200_000, maxBuffer: 1 << 20 });
  let config: ClusterConfig | null = null;
  try {
    const file = await startCluster(dir, cli);
    config = loadClusterConfig(file);
    // Small objects first, on a quiet cluster: after the large put, ring servers spend a while
    // archiving it, which would measure that backlog rather than the small-object path.
    // Build the object verbs' bundle now if a source changed, so no measured call pays for it.
    await cli(file, 'get', '--help').catch(() => undefined);
    const small = await smallObjects(file, smallCount);
    console.error(`small objects done: ${JSON.stringify(small)}`);
    const input = join(dir, 'input.bin');
    makeInput(input, mib);
    const load = { start: loadavg()[0]! };

    let t = performance.now();
    execFileSync('cp', [input, join(dir, 'copy.bin')]);
    execFileSync('sync');
    const cpMs = performance.now() - t;
    rmSync(join(dir, 'copy.bin'));

    const identity = join(dir, 'identity.json');
    loadOrCreateIdentity(identity); // the CLI makes only the default identity; a named one must exist
    const idleCores = await clusterCores(config);
    console.error(`idle cluster: ${idleCores.toFixed(2)} cores`);
    let cpu0 = await clusterCpuSeconds(config);
    const lag = sampleRingLag(config);
    t = performance.now();
    const put = await cli(file, 'put', 'big', input, '--identity', identity, '--json', ...blockArgs);
    const putMs = performance.now() - t;
    const putCluster = (await clusterCpuSeconds(config)) - cpu0;
    const putUsage = JSON.parse(put.stdout.trim().split('\n').at(-1)!) as CliUsage;
    console.error(`put: ${(putMs / 1000).toFixed(1)} s, ${put.stdout.trim()}`);

    // The ring keeps archiving the put (erasure coding, fragments to archive servers) after it
    // returns; measure how long, then get from a settled cluster.
    const settleMs = await waitForQuiet(config, idleCores);
    console.error(`cluster settled ${(settleMs / 1000).toFixed(1)} s after the put`);
    // The whole write's cost to the cluster: the put, then archiving it, less what idle nodes use anyway.
    const putCycleCluster = (await clusterCpuSeconds(config)) - cpu0 - idleCores * ((putMs + settleMs) / 1000);
    cpu0 = await clusterCpuSeconds(config);
    t = performance.now();
    const get = await cli(file, 'get', 'big', '-o', join(dir, 'out.bin'), '--identity', identity, '--json');
    const getMs = performance.now() - t;
    const getCluster = (await clusterCpuSeconds(config)) - cpu0;
    const getUsage = JSON.parse(get.stdout.trim().split('\n').at(-1)!) as CliUsage;
    const ringLag = await lag.stop();
    console.error(`ring servers' event-loop lag during put, archiving and get: max ${ringLag.maxLagS.toFixed(3)} s, ${ringLag.slowScrapes} scrapes over 10 s`);
    execFileSync('cmp', [input, join(dir, 'out.bin')]); // throws unless byte-identical
    rmSync(join(dir, 'out.bin'));
    load.start = Math.max(load.start, loadavg()[0]!);
    const loadEnd = loadavg()[0]!;

    const mb = (mib * 2 ** 20) / 1e6;
    const row = (what: string, ms: number, usage?: CliUsage, clusterCpuS?: number, clusterNetCpuS?: number) => {
      const clientCpuS = usage ? (usage.cpuUserMs + usage.cpuSystemMs) / 1000 : null;
      return {
        what,
        mbPerS: mb / (ms / 1000),
        wallS: ms / 1000,
        clientCpuS,
        clientRssMiB: usage ? usage.maxRssBytes / 2 ** 20 : null,
        clusterCpuS: clusterCpuS ?? null,
        // CPU per MB is steadier than wall time on a shared machine.
        clientCpuMsPerMb: clientCpuS === null ? null : (clientCpuS * 1000) / mb,
        clusterNetCpuMsPerMb: clusterNetCpuS === undefined ? null : (clusterNetCpuS * 1000) / mb,
      };
    };
    const rows = [
      row(`cp ${mib} MiB + sync (baseline)`, cpMs),
      row(`CLI put ${mib} MiB (archiving on)`, putMs, putUsage, putCluster, putCycleCluster),
      row(`CLI get ${mib} MiB (verified)`, getMs, getUsage, getCluster, getCluster - idleCores * (getMs / 1000)),
    ];
    const fmt = (v: number | null, digits = 1) => (v === null || Number.isNaN(v) ? '–' : v.toFixed(digits));
    console.log('| what | MB/s | wall s | client CPU s | client peak RSS MiB | cluster CPU s | client CPU ms/MB | cluster CPU ms/MB (net of idle; put: until archived) |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      console.log(`| ${r.what} | ${fmt(r.mbPerS)} | ${fmt(r.wallS)} | ${fmt(r.clientCpuS)} | ${fmt(r.clientRssMiB, 0)} | ${fmt(r.clusterCpuS)} | ${fmt(r.clientCpuMsPerMb, 2)} | ${fmt(r.clusterNetCpuMsPerMb, 2)} |`);
    }
    console.log(
      `\n4 KiB objects through the SDK (${small.count} write+read pairs): write p50 ${small.writeP50Ms.toFixed(1)} ms, p99 ${small.writeP99Ms.toFixed(1)} ms; ` +
        `read-after-write p50 ${small.readP50Ms.toFixed(1)} ms, p99 ${small.readP99Ms.toFixed(1)} ms; ` +
        `read of a settled object p50 ${small.settledReadP50Ms.toFixed(1)} ms, p99 ${small.settledReadP99Ms.toFixed(1)} ms`,
    );
    const machine = machineDescription();
    console.log(`\nload average (1 min) ${load.start.toFixed(1)} during the transfers, ${loadEnd.toFixed(1)} at the end`);
    console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}`);
    mkdirSync('bench/results', { recursive: true });
    console.log(`cluster busy archiving for ${(settleMs / 1000).toFixed(1)} s after the put returned (the get starts after it)`);
    console.log(`ring servers' event-loop lag (put, archiving, get): max ${ringLag.maxLagS.toFixed(3)} s; /metrics scrapes over 10 s: ${ringLag.slowScrapes}`);
    writeFileSync('bench/results/client.json', JSON.stringify({ machine, mib, idleClusterCores: idleCores, settleAfterPutS: settleMs / 1000, loadAverage: { transfers: load.start, end: loadEnd }, ringLag, rows, small }, null, 2));
  } finally {
    if (config) await stopAll(config, { kill: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `count` pairs of (write 4 KiB, read it back) on one object, then `count` reads of an object no
 * one is writing, bounded by smallLoopMsMax in all.
 */
async function smallObjects(file: string, count: number) {
  const store = await connect({ config: file, identity: newIdentity(), connectTimeoutMs: 30_000 });
  const writes: number[] = [];
  const reads: number[] = [];
  const settled: number[] = [];
  const deadline = performance.now() + smallLoopMsMax;
  try {
    const obj = await store.create('small', { timeoutMs: 120_000 });
    for (let i = 0; i < count && performance.now() < deadline; i++) {
      let t = performance.now();
      await obj.write(new Uint8Array(randomBytes(4096)), { timeoutMs: 120_000 });
      writes.push(performance.now() - t);
      t = performance.now();
      await obj.read({ timeoutMs: 120_000 });
      reads.push(performance.now() - t);
    }
    for (let i = 0; i < count && performance.now() < deadline + smallLoopMsMax / 3; i++) {
      const t = performance.now();
      await obj.read({ timeoutMs: 120_000 });
      settled.push(performance.now() - t);
    }
  } finally {
    await store.close();
  }
  return {
    count: writes.length,
    writeP50Ms: percentile(writes, 50),
    writeP99Ms: percentile(writes, 99),
    readP50Ms: percentile(reads, 50),
    readP99Ms: percentile(reads, 99),
    settledReadP50Ms: percentile(settled, 50),
    settledReadP99Ms: percentile(settled, 99),
  };
}

export { run_ as run };
