/** Process-test helpers: a scratch cluster config in a temp dir, and a node's parsed log. */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { stopAll } from '../../runtime/cluster-launcher.ts';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

/** `overrides` are merged into the top level of the copied config (e.g. `ring` timeouts). */
export async function tempClusterConfig(shipped: string, overrides: Record<string, unknown> = {}): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-cluster-'));
  const file = await scratchClusterConfig(shipped, dir);
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...overrides }, null, 2));
  return { file, dir };
}

export interface ScratchCluster {
  readonly config: ClusterConfig;
  readonly dir: string;
}

/**
 * A scratch copy of `shipped` brought up by `start` (e.g. the CLI's `cluster init` + `up`). A node
 * can still lose its start on a busy machine, so a failed start is stopped, removed, and tried once
 * more with fresh ports and data; a second failure throws.
 */
export async function startScratchCluster(shipped: string, start: (cluster: ScratchCluster) => Promise<void>): Promise<ScratchCluster> {
  for (let attempt = 0; ; attempt++) {
    const temp = await tempClusterConfig(shipped);
    const cluster = { config: loadClusterConfig(temp.file), dir: temp.dir };
    try {
      await start(cluster);
      return cluster;
    } catch (error) {
      await removeScratchCluster(cluster);
      if (attempt > 0) throw error;
    }
  }
}

/**
 * Stops every node of the cluster (kill -9) and removes its directory. With OCEANSTORE_KEEP_CLUSTERS=DIR
 * set, the directory (config, keys, data, logs) is first copied to DIR/<its name>/, to read a
 * failure that happened under load after the fact, or start the cluster again from its disks.
 */
export async function removeScratchCluster(cluster: ScratchCluster | undefined): Promise<void> {
  if (!cluster) return;
  await stopAll(cluster.config, { kill: true });
  const keep = process.env.OCEANSTORE_KEEP_CLUSTERS;
  if (keep && existsSync(cluster.dir)) cpSync(cluster.dir, join(keep, basename(cluster.dir)), { recursive: true });
  rmSync(cluster.dir, { recursive: true, force: true });
}

/** Parsed JSON lines of a node's pino log. */
export function logLines(file: string): Record<string, unknown>[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}

/** Starts a scratch cluster the way a user does, through the CLI: `cluster init`, then `cluster up --detach`. */
export async function initAndUpWithCli(cli: (args: string[]) => Promise<{ code: number; stderr: string }>, upTimeoutMs: number): Promise<void> {
  const init = await cli(['cluster', 'init']);
  if (init.code !== 0) throw new Error(`cluster init failed: ${init.stderr}`);
  const up = await cli(['cluster', 'up', '--detach', '--timeout-ms', String(upTimeoutMs)]);
  if (up.code !== 0) throw new Error(`cluster up failed: ${up.stderr}`);
}
