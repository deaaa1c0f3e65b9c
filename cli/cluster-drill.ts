/**
 * `oceanstore cluster drill [--trials N] [--seed S] [--scratch]`: crash drill on real processes.
 * While chained writers stream updates, each trial SIGKILLs one node chosen at random (any role,
 * the primary included) at a random moment, restarts it after a random pause, and waits until the
 * writers make progress again. At the end every chain must accept one more write demanding its
 * last acknowledged version (so no acknowledged update was lost or reordered), the ring servers
 * must converge on one sequence number, and every certificate received must verify.
 * With --scratch the drill runs on a fresh copy of the config (free ports, temp data) it removes after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Prng } from '../sim/prng.ts';
import { chainWriter } from '../runtime/chain-writer.ts';
import { loadClusterConfig, type ClusterConfig } from '../runtime/cluster-config.ts';
import { initCluster, loadDescriptor } from '../runtime/cluster-keys.ts';
import { fetchJson, spawnNode, stopAll, stopNode, waitReady } from '../runtime/cluster-launcher.ts';
import { silentLogger } from '../runtime/log.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { RingSession } from '../runtime/ring-session.ts';
import { scratchClusterConfig } from '../runtime/scratch-cluster.ts';

export interface DrillOptions {
  readonly trials: number;
  readonly seed: number;
  readonly writers: number;
  readonly log: (line: string) => void;
}

export interface DrillResult {
  readonly trials: { node: string; killAfterMs: number; downMs: number; recoveredMs: number }[];
  readonly acknowledged: number;
  readonly certificates: [number, number];
  readonly finalSeq: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1_000_000; i++) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`drill: ${what} did not happen within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function ringSeqs(config: ClusterConfig): Promise<number[]> {
  const ring = config.nodes.filter((n) => n.role === 'ring');
  return Promise.all(ring.map(async (n) => Number((await fetchJson(`http://127.0.0.1:${n.adminPort}/status`, 2000))?.seq ?? -1)));
}

/** Runs the drill against a cluster that is already up. */
export async function drill(config: ClusterConfig, options: DrillOptions): Promise<DrillResult> {
  const random = new Prng(options.seed);
  const session = new RingSession({ descriptor: loadDescriptor(config, nodeCrypto), crypto: nodeCrypto, log: silentLogger(), clientCount: options.writers, certificates: 'deferred' });
  await session.start();
  const writers = await Promise.all(Array.from({ length: options.writers }, (_, i) => chainWriter(session, i, `drill-${options.seed}`)));
  await Promise.all(writers.map((w) => w.prepare(60_000)));
  let running = true;
  let failure: Error | null = null;
  const loops = writers.map(async (w) => {
    for (let i = 0; i < 1_000_000 && running; i++) {
      const v = new Uint8Array(4096).fill(w.version & 0xff);
      await w.write(v, 120_000).catch((error: Error) => {
        failure ??= error;
        running = false;
      });
    }
  });
  const trials: DrillResult['trials'] = [];
  try {
    await until(() => writers.every((w) => w.acknowledged >= 2) || failure !== null, 60_000, 'first writes');
    for (let t = 0; t < options.trials && !failure; t++) {
      const node = config.nodes[random.int(config.nodes.length)]!.name;
      const killAfterMs = random.int(1500);
      const downMs = random.int(1000);
      await sleep(killAfterMs);
      await stopNode(config, node, { kill: true });
      await sleep(downMs);
      const t0 = Date.now();
      await spawnNode(config, node);
      await waitReady(config, [node], 60_000);
      const acked = writers.map((w) => w.acknowledged);
      await until(() => failure !== null || writers.every((w, i) => w.acknowledged > acked[i]!), 90_000, `progress after restarting ${node}`);
      trials.push({ node, killAfterMs, downMs, recoveredMs: Date.now() - t0 });
      options.log(`trial ${t + 1}/${options.trials}: kill -9 ${node} after ${killAfterMs} ms, down ${downMs} ms, writes flowing again ${Date.now() - t0} ms after restart`);
    }
  } finally {
    running = false;
    await Promise.all(loops);
  }
  if (failure) throw failure;
  // Nothing acknowledged lost: each chain accepts the write that demands its last acknowledged version.
  for (const w of writers) await w.write(new Uint8Array(16), 60_000);
  let finalSeq = -1;
  await until(async () => {
    const seqs = await ringSeqs(config);
    finalSeq = Math.max(...seqs);
    return seqs.every((s) => s === finalSeq);
  }, 60_000, 'ring servers converging on one sequence number');
  const certificates = session.verifyRecordedCertificates();
  await session.stop();
  if (certificates[0] !== certificates[1]) throw new Error(`drill: ${certificates[1] - certificates[0]} certificates failed to verify`);
  return { trials, acknowledged: writers.reduce((s, w) => s + w.acknowledged, 0), certificates, finalSeq };
}

/** The CLI sub-verb: parses its flags, optionally on a scratch cluster. */
export async function runDrill(configFile: string, flags: Map<string, string | true>): Promise<number> {
  const trials = Number(flags.get('trials') ?? 20);
  const seed = Number(flags.get('seed') ?? Date.now() % 1_000_000);
  let dir: string | null = null;
  let file = configFile;
  if (flags.has('scratch')) {
    dir = mkdtempSync(join(tmpdir(), 'oceanstore-drill-'));
    file = await scratchClusterConfig(configFile, dir);
  }
  const config = loadClusterConfig(file);
  try {
    if (dir) {
      initCluster(config, nodeCrypto);
      for (const n of config.nodes) await spawnNode(config, n.name);
      await waitReady(config, config.nodes.map((n) => n.name), 60_000);
    }
    console.log(`drill: ${trials} trials, seed ${seed} (repeat with --seed ${seed})`);
    const result = await drill(config, { trials, seed, writers: 4, log: (l) => console.log(l) });
    console.log(`drill passed: ${result.trials.length} kills, ${result.acknowledged} acknowledged writes all present, ring at seq ${result.finalSeq}, certificates ${result.certificates[0]}/${result.certificates[1]} valid`);
    return 0;
  } finally {
    if (dir) {
      await stopAll(config, { kill: true });
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
