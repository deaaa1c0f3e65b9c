/**
 * `oceanstore cluster drill [--trials N] [--seed S] [--scratch]`: crash drill on real processes.
 * While chained writers stream updates, each trial SIGKILLs one node chosen at random (any role,
 * the primary included) at a random moment, restarts it after a random pause, and waits until the
 * writers make progress again. At the end every chain must accept one more write demanding its
 * last acknowledged version (so no acknowledged update was lost or reordered), the ring servers
 * must converge on one sequence number, and every certificate received must verify.
 * With --scratch the drill runs on a fresh copy of the config (free ports, temp data) it removes after.
 * Ctrl-C (or SIGTERM, SIGHUP) stops the drill cleanly: a scratch cluster is stopped and removed; on
 * a cluster that was already up, the node the drill had killed is started again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.ts';
import { Prng } from '../sim/prng.ts';
import { chainWriter } from '../runtime/chain-writer.ts';
import { loadClusterConfig, type ClusterConfig } from '../runtime/cluster-config.ts';
import { initCluster, loadDescriptor } from '../runtime/cluster-keys.ts';
import { fetchJson, spawnNode, stopAll, stopNode, waitReady } from '../runtime/cluster-launcher.ts';
import { silentLogger } from '../runtime/log.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { RingSession } from '../runtime/ring-session.ts';
import { scratchClusterConfig } from '../runtime/scratch-cluster.ts';
import { interruptSignals, signalExitCode } from './output-file.ts';

export interface DrillOptions {
  readonly trials: number;
  readonly seed: number;
  readonly writers: number;
  readonly log: (line: string) => void;
  /** Aborted by Ctrl-C: the drill stops at once wherever it waits. */
  readonly signal?: AbortSignal;
  /** Start again a node this drill killed if it stops before restarting it (false: the cluster is thrown away). */
  readonly restartKilled?: boolean;
}

export interface DrillResult {
  readonly trials: { node: string; killAfterMs: number; downMs: number; recoveredMs: number }[];
  readonly acknowledged: number;
  readonly certificates: [number, number];
  readonly finalSeq: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The drill was stopped by a signal (Ctrl-C): not a failure of the cluster. */
class DrillInterrupted extends Error {}

/** `work`, or a DrillInterrupted as soon as `signal` aborts (the work itself goes on unawaited). */
function abortable<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new DrillInterrupted(`interrupted (${String(signal.reason)})`));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => (signal.removeEventListener('abort', onAbort), resolve(value)),
      (error: unknown) => (signal.removeEventListener('abort', onAbort), reject(error)),
    );
  });
}

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
  const step = <T>(work: Promise<T>): Promise<T> => abortable(work, options.signal);
  const random = new Prng(options.seed);
  const session = new RingSession({ descriptor: loadDescriptor(config, nodeCrypto), crypto: nodeCrypto, log: silentLogger(), clientCount: options.writers, certificates: 'deferred' });
  /** A node killed and not yet started again: a drill stopped then must not leave it down. */
  let down: string | null = null;
  try {
    await step(session.start());
    const writers = await step(Promise.all(Array.from({ length: options.writers }, (_, i) => chainWriter(session, i, `drill-${options.seed}`))));
    await step(Promise.all(writers.map((w) => w.prepare(60_000))));
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
      await step(until(() => writers.every((w) => w.acknowledged >= 2) || failure !== null, 60_000, 'first writes'));
      for (let t = 0; t < options.trials && !failure; t++) {
        const node = config.nodes[random.int(config.nodes.length)]!.name;
        const killAfterMs = random.int(1500);
        const downMs = random.int(1000);
        await step(sleep(killAfterMs));
        down = node;
        await stopNode(config, node, { kill: true });
        await step(sleep(downMs));
        const t0 = Date.now();
        await spawnNode(config, node);
        down = null;
        await waitReady(config, [node], 60_000, options.signal);
        const acked = writers.map((w) => w.acknowledged);
        await step(until(() => failure !== null || writers.every((w, i) => w.acknowledged > acked[i]!), 90_000, `progress after restarting ${node}`));
        trials.push({ node, killAfterMs, downMs, recoveredMs: Date.now() - t0 });
        options.log(`trial ${t + 1}/${options.trials}: kill -9 ${node} after ${killAfterMs} ms, down ${downMs} ms, writes flowing again ${Date.now() - t0} ms after restart`);
      }
    } finally {
      running = false;
      // Interrupted, the writes in flight are not waited for (each may wait out its 120 s).
      if (!options.signal?.aborted) await Promise.all(loops);
    }
    if (failure) throw failure;
    // Nothing acknowledged lost: each chain accepts the write that demands its last acknowledged version.
    for (const w of writers) await step(w.write(new Uint8Array(16), 60_000));
    let finalSeq = -1;
    await step(until(async () => {
      const seqs = await ringSeqs(config);
      finalSeq = Math.max(...seqs);
      return seqs.every((s) => s === finalSeq);
    }, 60_000, 'ring servers converging on one sequence number'));
    const certificates = session.verifyRecordedCertificates();
    if (certificates[0] !== certificates[1]) throw new Error(`drill: ${certificates[1] - certificates[0]} certificates failed to verify`);
    return { trials, acknowledged: writers.reduce((s, w) => s + w.acknowledged, 0), certificates, finalSeq };
  } finally {
    if (down !== null && options.restartKilled !== false) await restart(config, down, options.log);
    await session.stop();
  }
}

/** Starts `node` again after the drill stopped with it killed; a failure is reported, not thrown over the drill's own outcome. */
async function restart(config: ClusterConfig, node: string, log: (line: string) => void): Promise<void> {
  log(`drill: starting ${node} again (it was killed by the drill)`);
  try {
    await spawnNode(config, node);
    await waitReady(config, [node], 60_000);
    log(`drill: ${node} is up again`);
  } catch (error) {
    log(`drill: could not start ${node} again (${(error as Error).message}); start it with \`oceanstore cluster start-node ${node}\``);
  }
}

/** A flag's whole-number value (`--trials abc` ran a vacuous drill of NaN trials and passed). */
function integerFlag(flags: Map<string, string | true>, key: string, fallback: number, min: number): number {
  const value = flags.get(key);
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new InvalidArgumentError(`--${key} takes ${min > 0 ? 'a positive' : 'a non-negative'} integer, got '${String(value)}'`);
  }
  return n;
}

/**
 * The CLI sub-verb: parses its flags (before anything starts: a bad one is exit 2), optionally on a
 * scratch cluster. SIGINT/SIGTERM/SIGHUP stop the drill and clean up before exiting with 128 + the
 * signal's number (Ctrl-C of a scratch drill left its 14 detached nodes and data folder behind;
 * session-22 review, finding 3); the handlers stay until then, so a second Ctrl-C does not cut the
 * cleanup short.
 */
export async function runDrill(configFile: string, flags: Map<string, string | true>): Promise<number> {
  const trials = integerFlag(flags, 'trials', 20, 1);
  const seed = integerFlag(flags, 'seed', Date.now() % 1_000_000, 0);
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupt.signal.aborted) return;
    console.error(`drill: ${signal}: stopping${flags.has('scratch') ? ' and removing the scratch cluster' : ''}…`);
    interrupt.abort(signal);
  };
  for (const s of interruptSignals) process.on(s, onSignal);
  let dir: string | null = null;
  let config: ClusterConfig | null = null;
  let interruptedCode: number | null = null;
  try {
    let file = configFile;
    if (flags.has('scratch')) {
      dir = mkdtempSync(join(tmpdir(), 'oceanstore-drill-'));
      file = await scratchClusterConfig(configFile, dir);
    }
    config = loadClusterConfig(file);
    if (dir) {
      initCluster(config, nodeCrypto);
      for (const n of config.nodes) if (!interrupt.signal.aborted) await spawnNode(config, n.name);
      await waitReady(config, config.nodes.map((n) => n.name), 60_000, interrupt.signal);
    }
    console.log(`drill: ${trials} trials, seed ${seed} (repeat with --seed ${seed})`);
    const result = await drill(config, { trials, seed, writers: 4, log: (l) => console.log(l), signal: interrupt.signal, restartKilled: dir === null });
    console.log(`drill passed: ${result.trials.length} kills, ${result.acknowledged} acknowledged writes all present, ring at seq ${result.finalSeq}, certificates ${result.certificates[0]}/${result.certificates[1]} valid`);
    return 0;
  } catch (error) {
    if (!interrupt.signal.aborted) throw error;
    console.error(`drill: interrupted by ${String(interrupt.signal.reason)}; not a verdict on the cluster`);
    interruptedCode = signalExitCode(interrupt.signal.reason as NodeJS.Signals);
    return interruptedCode;
  } finally {
    if (dir) {
      if (config) await stopAll(config, { kill: true });
      rmSync(dir, { recursive: true, force: true });
    }
    for (const s of interruptSignals) process.off(s, onSignal);
    // Once cleaned up: writes abandoned in flight may hold timers and sockets; end shortly whatever they do.
    if (interruptedCode !== null) setTimeout(() => process.exit(interruptedCode), 2_000).unref();
  }
}
