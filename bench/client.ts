/**
 * `npm run bench -- client [--mib N] [--small N]`: a put and a get of an N MiB file through the CLI
 * (separate processes, as a user runs them) against a scratch local cluster, next to `cp` of the
 * same file on the same disk in the same run; then small-object (4 KiB) write and read latency
 * through the SDK.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, newIdentity } from '../client/index.ts';
import { loadClusterConfig } from '../runtime/cluster-config.ts';
import { stopAll } from '../runtime/cluster-launcher.ts';
import { scratchClusterConfig } from '../runtime/scratch-cluster.ts';
import { machineDescription } from './_machine.ts';

const run = promisify(execFile);

function arg(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function run_(args: string[]): Promise<void> {
  const mib = arg(args, '--mib', 256);
  const smallCount = arg(args, '--small', 50);
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-client-'));
  const file = await scratchClusterConfig('cluster-configs/local.json', dir);
  const config = loadClusterConfig(file);
  const cli = (...a: string[]) => run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...a, '--config', file], { timeout: 3_600_000, maxBuffer: 1 << 20 });
  try {
    await cli('cluster', 'init');
    await cli('cluster', 'up', '--detach', '--timeout-ms', '60000');
    const input = join(dir, 'input.bin');
    mkdirSync(dir, { recursive: true });
    const chunk = randomBytes(1 << 20);
    writeFileSync(input, Buffer.alloc(0));
    for (let i = 0; i < mib; i++) writeFileSync(input, chunk.map((b) => (b + i) & 255), { flag: 'a' });
    let t = performance.now();
    execFileSync('cp', [input, join(dir, 'copy.bin')]);
    execFileSync('sync');
    const cpMs = performance.now() - t;
    const identity = join(dir, 'identity.json');
    t = performance.now();
    await cli('put', 'big', input, '--identity', identity, '--quiet');
    const putMs = performance.now() - t;
    t = performance.now();
    await cli('get', 'big', '-o', join(dir, 'out.bin'), '--identity', identity);
    const getMs = performance.now() - t;
    execFileSync('cmp', [input, join(dir, 'out.bin')]);

    const store = await connect({ config: file, identity: newIdentity() });
    const obj = await store.create('small');
    const writes: number[] = [];
    const reads: number[] = [];
    for (let i = 0; i < smallCount; i++) {
      const data = new Uint8Array(randomBytes(4096));
      t = performance.now();
      await obj.write(data);
      writes.push(performance.now() - t);
      t = performance.now();
      await obj.read();
      reads.push(performance.now() - t);
    }
    await store.close();
    const rows = [
      { what: `cp ${mib} MiB + sync (baseline)`, mbPerS: mib / (cpMs / 1000) },
      { what: `CLI put ${mib} MiB (archiving on)`, mbPerS: mib / (putMs / 1000) },
      { what: `CLI get ${mib} MiB (verified)`, mbPerS: mib / (getMs / 1000) },
    ];
    const small = {
      writeP50Ms: percentile(writes, 50),
      writeP99Ms: percentile(writes, 99),
      readP50Ms: percentile(reads, 50),
      readP99Ms: percentile(reads, 99),
    };
    console.log('| what | MB/s |\n|---|---:|');
    for (const r of rows) console.log(`| ${r.what} | ${r.mbPerS.toFixed(1)} |`);
    console.log(`\n4 KiB objects (${smallCount} ops): write p50 ${small.writeP50Ms.toFixed(1)} ms, p99 ${small.writeP99Ms.toFixed(1)} ms; read p50 ${small.readP50Ms.toFixed(1)} ms, p99 ${small.readP99Ms.toFixed(1)} ms`);
    const machine = machineDescription();
    console.log(`\nmachine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}`);
    mkdirSync('bench/results', { recursive: true });
    writeFileSync('bench/results/client.json', JSON.stringify({ machine, mib, rows, small }, null, 2));
  } finally {
    await stopAll(config, { kill: true });
    rmSync(dir, { recursive: true, force: true });
  }
}

export { run_ as run };
