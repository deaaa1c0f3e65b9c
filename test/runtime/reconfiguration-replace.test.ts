/**
 * Replacing a ring server on real processes (issue 10): four ring servers, a spare and two
 * archive servers on loopback; chained writers write without pause while `oceanstore cluster
 * replace-node ring-3 --with spare-0` runs. The ring reshares to the new member set, switches
 * PBFT to it at the checkpoint boundary, the spare catches up by state transfer and votes, ring-3
 * deletes its share and is stopped. No acknowledged write is lost, the client keeps the ring
 * public key it started with (and its member list: f+1 replies come from the staying servers),
 * and every certificate it received verifies under that key.
 */
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPaths, loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { initCluster, loadDescriptor } from '../../runtime/cluster-keys.ts';
import { runningPid, spawnNode, stopAll, waitReady } from '../../runtime/cluster-launcher.ts';
import { chainWriter, type ChainWriter } from '../../runtime/chain-writer.ts';
import { memoryLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { ringReconfigurationStatus } from '../../runtime/reconfiguration-client.ts';
import { RingSession } from '../../runtime/ring-session.ts';
import { freeLoopbackPorts } from '../../runtime/scratch-cluster.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
let config: ClusterConfig;
let dir: string;
let session: RingSession | undefined;

async function startCluster(): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), 'oceanstore-replace-'));
  const names = ['ring-0', 'ring-1', 'ring-2', 'ring-3', 'spare-0', 'archive-0', 'archive-1'];
  const ports = await freeLoopbackPorts(2 * names.length);
  const nodes = names.map((name, i) => ({ name, role: name.split('-')[0], host: '127.0.0.1', port: ports[2 * i]!, adminPort: ports[2 * i + 1]! }));
  // A short checkpoint interval so the new epoch starts (and old shares go) within seconds.
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify({ name: 'replace', dataDir: join(dir, 'data'), f: 1, erasure: { k: 1, m: 1 }, tickMs: 10, ring: { checkpointInterval: 8, watermarkWindow: 32 }, nodes }));
  config = loadClusterConfig(file);
  initCluster(config, nodeCrypto);
  for (const n of config.nodes) await spawnNode(config, n.name);
  await waitReady(config, config.nodes.map((n) => n.name), 60_000);
}

beforeAll(async () => {
  // One fresh attempt (new ports, new data) if a node fails to start on a busy machine.
  try {
    await startCluster();
  } catch {
    if (config) await stopAll(config, { kill: true });
    rmSync(dir, { recursive: true, force: true });
    await startCluster();
  }
}, 150_000);

afterAll(async () => {
  await session?.stop();
  if (config) await stopAll(config, { kill: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster replace-node on real processes', () => {
  it('replaces ring-3 by spare-0 while clients write; nothing acknowledged is lost; ring-3 is out; the ring key holds', async () => {
    const descriptorBefore = readFileSync(clusterPaths(config).descriptor, 'utf8');
    const descriptor = loadDescriptor(config, nodeCrypto);
    session = new RingSession({ descriptor, crypto: nodeCrypto, log: memoryLogger('client', 'warn').log, clientCount: 2, certificates: 'inline' });
    await session.start();
    const writers: ChainWriter[] = await Promise.all([0, 1].map((i) => chainWriter(session!, i, 'replace')));
    await Promise.all(writers.map((w) => w.prepare(30_000)));
    let writing = true;
    const value = new Uint8Array(1024).fill(9);
    const loops = writers.map(async (w) => {
      for (let i = 0; i < 100_000 && writing; i++) await w.write(value, 60_000);
    });
    await waitFor(() => writers.every((w) => w.version >= 3), 30_000, 'writes flowing before the replacement');
    const atStart = writers.map((w) => w.version);

    const startedMs = Date.now();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', 'replace-node', 'ring-3', '--with', 'spare-0', '--config', config.file], { timeout: 200_000 });
    const replaceMs = Date.now() - startedMs;
    expect(stdout).toMatch(/ring members \[ring-0, ring-1, ring-2, spare-0\]; ring-3 stopped/);
    expect(runningPid(config, 'ring-3')).toBeNull();
    expect(writers.every((w, i) => w.version > atStart[i]! + 2)).toBe(true); // writes went on
    const afterReplace = writers.map((w) => w.version);
    const certifiedAtReplace = session.counters.certified;
    await waitFor(() => writers.every((w, i) => w.version >= afterReplace[i]! + 3), 60_000, 'writes after the replacement');
    writing = false;
    await Promise.all(loops);
    for (const w of writers) {
      const before = w.version;
      await w.write(value, 60_000);
      expect(w.version).toBe(before + 1); // the chain demanded the last acknowledged version: none lost
    }

    const rows = await ringReconfigurationStatus(config, ['ring-0', 'ring-1', 'ring-2', 'spare-0']);
    for (const r of rows) {
      expect(r.status?.members).toEqual(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
      expect(r.status?.epoch).toBe(1);
      expect(r.status?.shareEpochs).toEqual([1]);
    }
    // ring-3's epoch-0 share file is retired; the descriptor (and so the client's key) is unchanged.
    expect(JSON.parse(readFileSync(clusterPaths(config).share('ring-3'), 'utf8'))).toEqual({ retired: 1 });
    expect(readFileSync(clusterPaths(config).descriptor, 'utf8')).toBe(descriptorBefore);
    const s = session;
    const writesAfter = writers.reduce((sum, w, i) => sum + w.version - afterReplace[i]!, 0);
    const counts = () => `certified ${s.counters.certified} (at replace ${certifiedAtReplace}), completed ${s.counters.completed}, bad ${s.clients.map((c) => c.counters.badCertificates).join('/')}`;
    await waitFor(() => s.counters.certified >= certifiedAtReplace + writesAfter, 30_000, `certificates for the ${writesAfter} writes after the replacement`).catch((error: Error) => {
      throw new Error(`${error.message}: ${counts()}`);
    });
    expect(s.clients.map((c) => c.counters.badCertificates)).toEqual([0, 0]);
    console.log(`replace-node: ${replaceMs} ms wall (CLI: ${stdout.trim().split('\n').pop()}); writes ${writers.map((w) => w.version).join('+')}; ${counts()}`);
  }, 300_000);
});
