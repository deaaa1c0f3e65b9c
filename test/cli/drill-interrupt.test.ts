/**
 * `cluster drill` and Ctrl-C (session-22 review, finding 3): with --scratch, SIGINT stops and removes
 * the scratch cluster (its 14 detached nodes and data folder were left behind); on a cluster that
 * was up before, SIGINT while the drill has a node killed starts that node again before exiting.
 * Real processes on loopback; everything started here is stopped in afterAll.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadClusterConfig } from '../../runtime/cluster-config.ts';
import { runningNodes, stopAll } from '../../runtime/cluster-launcher.ts';
import { Prng } from '../../sim/prng.ts';
import { runCli } from '../client/sdk-cluster.ts';
import { initAndUpWithCli, removeScratchCluster, startScratchCluster, type ScratchCluster } from '../runtime/cluster-fixture.ts';

const temp = mkdtempSync(join(tmpdir(), 'oceanstore-drill-interrupt-'));
let cluster: ScratchCluster | undefined;

afterAll(async () => {
  // Whatever a failed run left: scratch clusters under `temp` (the old code's orphans), and ours.
  for (const entry of existsSync(temp) ? readdirSync(temp) : []) {
    const file = join(temp, entry, 'cluster.json');
    if (existsSync(file)) await stopAll(loadClusterConfig(file), { kill: true }).catch(() => []);
  }
  await removeScratchCluster(cluster);
  rmSync(temp, { recursive: true, force: true });
}, 120_000);

/** The drill as a process, its stdout collected; TMPDIR points its scratch folder into `temp`. */
function startDrill(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, ['bin/oceanstore.js', 'cluster', 'drill', ...args], { env: { ...process.env, TMPDIR: temp }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal === 'SIGINT' ? 130 : null));
    });
  });
  return { child, output: () => output, exited };
}

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return condition();
}

/** Processes whose command line names `path` (the scratch nodes carry their config's path). */
function processesUnder(path: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(path)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('cluster drill and Ctrl-C', () => {
  it('--scratch: SIGINT after the first trial stops every scratch node and removes the folder', async () => {
    const drill = startDrill(['--scratch', '--trials', '50']);
    expect(await waitFor(() => /trial 1\/50/.test(drill.output()), 200_000)).toBe(true);
    drill.child.kill('SIGINT');
    expect(await drill.exited).toBe(130);
    expect(readdirSync(temp).filter((e) => e.startsWith('oceanstore-drill-'))).toEqual([]);
    expect(processesUnder(temp)).toEqual([]);
    expect(drill.output()).toMatch(/interrupted by SIGINT/);
  }, 300_000);

  it('on a running cluster: SIGINT while a node is killed starts it again before exiting', async () => {
    cluster = await startScratchCluster('cluster-configs/local.json', async (c) => {
      await initAndUpWithCli((args) => runCli(c.config, args), 60_000);
    });
    const config = cluster.config;
    // A seed whose first trial keeps its node down for at least 700 ms (the drill's draws, in order).
    let seed = 1;
    for (; seed < 10_000; seed++) {
      const random = new Prng(seed);
      random.int(config.nodes.length);
      random.int(1500);
      if (random.int(1000) >= 700) break;
    }
    const drill = startDrill(['--trials', '5', '--seed', String(seed), '--config', config.file]);
    expect(await waitFor(() => runningNodes(config).length < config.nodes.length, 200_000)).toBe(true);
    drill.child.kill('SIGINT');
    expect(await drill.exited).toBe(130);
    expect(runningNodes(config)).toHaveLength(config.nodes.length);
    expect(drill.output()).toMatch(/starting .* again/);
  }, 400_000);
});
