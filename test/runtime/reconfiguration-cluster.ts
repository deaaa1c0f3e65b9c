/**
 * The small real-process cluster both reconfiguration tests run (4 ring servers, 2 archive
 * servers, optionally a spare) with a short checkpoint interval, so a new epoch starts and old
 * shares go within seconds. One fresh attempt (new ports, new data) if a node fails to start on
 * a busy machine.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { initCluster } from '../../runtime/cluster-keys.ts';
import { spawnNode, stopAll, waitReady } from '../../runtime/cluster-launcher.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { freeLoopbackPorts } from '../../runtime/scratch-cluster.ts';

export interface SmallCluster {
  readonly config: ClusterConfig;
  readonly dir: string;
}

async function startOnce(name: string, names: readonly string[]): Promise<SmallCluster> {
  const dir = mkdtempSync(join(tmpdir(), `oceanstore-${name}-`));
  const ports = await freeLoopbackPorts(2 * names.length);
  const nodes = names.map((node, i) => ({ name: node, role: node.split('-')[0], host: '127.0.0.1', port: ports[2 * i]!, adminPort: ports[2 * i + 1]! }));
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify({ name, dataDir: join(dir, 'data'), f: 1, erasure: { k: 1, m: 1 }, tickMs: 10, ring: { checkpointInterval: 8, watermarkWindow: 32 }, nodes }));
  const config = loadClusterConfig(file);
  initCluster(config, nodeCrypto);
  try {
    for (const n of config.nodes) await spawnNode(config, n.name);
    await waitReady(config, config.nodes.map((n) => n.name), 60_000);
  } catch (error) {
    await stopSmallCluster({ config, dir });
    throw error;
  }
  return { config, dir };
}

export async function startSmallCluster(name: string, names: readonly string[]): Promise<SmallCluster> {
  try {
    return await startOnce(name, names);
  } catch {
    return startOnce(name, names);
  }
}

export async function stopSmallCluster(cluster: SmallCluster | undefined): Promise<void> {
  if (!cluster) return;
  await stopAll(cluster.config, { kill: true });
  rmSync(cluster.dir, { recursive: true, force: true });
}
