/**
 * `npm start` as the README's quick start runs it (`cli/main.ts start`, foreground, status line),
 * on a scratch copy of cluster-configs/local.json: it initialises the cluster, brings every node up,
 * and Ctrl-C (SIGINT to the CLI alone; the nodes are in their own process groups) stops every node
 * it started and says so. It printed "stopped 4 nodes" for 14: the nodes that exited on the
 * SIGTERM before it looked were not counted. Real processes on loopback.
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { isNodeProcess, runningPid, stopAll } from '../../runtime/cluster-launcher.ts';
import { tempClusterConfig } from '../runtime/cluster-fixture.ts';
import { waitFor } from '../runtime/wait.ts';

let config: ClusterConfig | undefined;
let dir: string | undefined;

afterAll(async () => {
  if (config) await stopAll(config, { kill: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm start (foreground cluster)', () => {
  it('starts every node from nothing and Ctrl-C stops all of them, counted', async () => {
    const temp = await tempClusterConfig('cluster-configs/local.json');
    dir = temp.dir;
    config = loadClusterConfig(temp.file);
    const cluster = config;
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'start', '--timeout-ms', '40000'], {
      env: { ...process.env, OCEANSTORE_CONFIG: temp.file },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => /cluster running; Ctrl-C stops every node/.test(stdout) || child.exitCode !== null, 60_000, 'cluster running');
      expect(stdout, stderr).toMatch(/^initialised cluster/m);
      expect(stdout).toMatch(/14 nodes ready in/);
      await waitFor(() => /14\/14 up/.test(stdout), 10_000, 'a status line with every node up');
      const pids = cluster.nodes.map((n) => [n.name, runningPid(cluster, n.name)] as const);
      expect(pids.every(([, pid]) => pid !== null)).toBe(true);

      child.kill('SIGINT');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000))]);
      expect(code, stderr).toBe(0);
      expect(stdout).toMatch(/^stopped 14 nodes$/m);
      for (const [name, pid] of pids) expect(isNodeProcess(pid!, name, cluster.file), name).toBe(false);
      expect(pids.every(([name]) => runningPid(cluster, name) === null)).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});
