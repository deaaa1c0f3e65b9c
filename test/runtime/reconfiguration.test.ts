/**
 * Key refresh on real processes (issue 10): four ring servers and two archive servers on
 * loopback; chained writers write without pause while `oceanstore cluster refresh-keys` runs.
 * No acknowledged write is lost (the next chained write demanding the last acknowledged version
 * commits), the client keeps the ring public key it started with and every certificate it
 * received verifies under it, every ring server switches to the new epoch and holds only its
 * new share, and the epoch-0 share files are retired.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPaths, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { ringReconfigurationStatus } from '../../runtime/reconfiguration-client.ts';
import type { RingSession } from '../../runtime/ring-session.ts';
import { startChainedWriting, startSmallCluster, stopSmallCluster, waitEveryWriteCertified, type SmallCluster } from './reconfiguration-cluster.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
let config: ClusterConfig;
let cluster: SmallCluster | undefined;
let session: RingSession | undefined;

beforeAll(async () => {
  cluster = await startSmallCluster('reconf', ['ring-0', 'ring-1', 'ring-2', 'ring-3', 'archive-0', 'archive-1']);
  config = cluster.config;
}, 150_000);

afterAll(async () => {
  await session?.stop();
  await stopSmallCluster(cluster);
});

describe('cluster refresh-keys on real processes', () => {
  it('refreshes every share while clients write; nothing acknowledged is lost; the ring public key and certificates hold', async () => {
    const descriptorBefore = readFileSync(clusterPaths(config).descriptor, 'utf8');
    const writing = await startChainedWriting(config, 'refresh', 7, 30_000);
    session = writing.session;
    const { writers, value, atStart } = writing;

    const startedMs = Date.now();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', 'refresh-keys', '--config', config.file], { timeout: 150_000 });
    const refreshMs = Date.now() - startedMs;
    expect(stdout).toMatch(/epoch 1 in force from seq \d+/);
    // Writes went on during the refresh.
    expect(writers.every((w, i) => w.version > atStart[i]! + 2)).toBe(true);
    const afterRefresh = writers.map((w) => w.version);
    await waitFor(() => writers.every((w, i) => w.version >= afterRefresh[i]! + 3), 30_000, 'writes after the refresh');
    await writing.stop();
    // One more chained write each: it demands the last acknowledged version, so none was lost.
    for (const w of writers) {
      const before = w.version;
      await w.write(value, 30_000);
      expect(w.version).toBe(before + 1);
    }

    const rows = await ringReconfigurationStatus(config, config.nodes.filter((n) => n.role === 'ring').map((n) => n.name));
    for (const r of rows) {
      expect(r.status?.epoch).toBe(1);
      expect(r.status?.shareEpochs).toEqual([1]);
      expect(r.status?.lastRound).toMatchObject({ epoch: 1, result: 'installed' });
      // The epoch-0 share file is retired: the old share is gone from the node's files.
      expect(JSON.parse(readFileSync(clusterPaths(config).share(r.name), 'utf8'))).toEqual({ retired: 1 });
    }
    // The client's trusted key never changed: the descriptor is untouched and every certificate
    // it received (before and after the boundary) verifies under the key it started with.
    expect(readFileSync(clusterPaths(config).descriptor, 'utf8')).toBe(descriptorBefore);
    // Writes after the refresh returned executed past the boundary, so their certificates name
    // epoch 1; the client checks each under the ring key it started with and counts failures.
    const s = session;
    await waitEveryWriteCertified(s, 30_000, 'the writes before, across and after the refresh');
    expect(s.clients.map((c) => c.counters.badCertificates)).toEqual([0, 0]);

    // A session that records certificates and checks them afterwards (as benchmarks and drills
    // do) finds each valid under the key of its batch's epoch (it once checked all as epoch 0).
    const deferred = await startChainedWriting(config, 'deferred', 9, 30_000, false, 'deferred');
    try {
      await deferred.stop();
      const written = deferred.writers.reduce((sum, w) => sum + w.version, 0);
      await waitFor(() => deferred.session.counters.certified >= written, 30_000, 'certificates of the deferred session');
      const [valid, total] = deferred.session.verifyRecordedCertificates();
      expect(total).toBeGreaterThan(0);
      expect(valid).toBe(total);
    } finally {
      await deferred.stop();
      await deferred.session.stop();
    }
    console.log(`refresh-keys: ${refreshMs} ms wall (CLI: ${stdout.trim().split('\n').pop()}); writes ${writers.map((w) => w.version).join('+')}; certified ${s.counters.certified}, completed ${s.counters.completed}`);
  }, 240_000);
});
