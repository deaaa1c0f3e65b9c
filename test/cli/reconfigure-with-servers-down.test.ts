/**
 * `cluster replace-node` and `cluster refresh-keys` with ring servers down, on real processes
 * (four ring servers, a spare, two archive servers on loopback). docs/reconfiguration.md: a
 * replacement needs 2f+1 ring servers besides OLD up, a refresh 2f+1 ring servers up.
 *
 * OLD crashed before the replacement (the usual reason to replace it): the command succeeds once
 * 2f+1 of the new ring, NEW among them, run the new list with shares of the new epoch, says that
 * OLD did not answer so its share could not be confirmed deleted, and tells the operator to wipe
 * OLD's data directory (it failed before, waiting for the down OLD to report). Then a refresh with
 * one more ring server down succeeds on the other 2f+1 (NEW's vote is needed for it) and names
 * the server it could not confirm (it waited for every ring server before, and failed).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPaths, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { loadDescriptor } from '../../runtime/cluster-keys.ts';
import { runningPid, stopNode } from '../../runtime/cluster-launcher.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { ringReconfigurationStatus } from '../../runtime/reconfiguration-client.ts';
import { startSmallCluster, stopSmallCluster, type SmallCluster } from '../runtime/reconfiguration-cluster.ts';

const run = promisify(execFile);
let config: ClusterConfig;
let cluster: SmallCluster | undefined;

beforeAll(async () => {
  cluster = await startSmallCluster('servers-down', ['ring-0', 'ring-1', 'ring-2', 'ring-3', 'spare-0', 'archive-0', 'archive-1']);
  config = cluster.config;
}, 150_000);

afterAll(async () => {
  await stopSmallCluster(cluster);
});

/** Runs the CLI; resolves with its exit code and output whatever the code. */
async function cli(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', ...args, '--config', config.file], { timeout: timeoutMs });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('cluster reconfiguration with ring servers down (real processes)', () => {
  it('replace-node succeeds with OLD down: it says OLD did not answer and its share could not be confirmed deleted', async () => {
    await stopNode(config, 'ring-3', { kill: true }); // a crash: OLD is gone before the command
    expect(runningPid(config, 'ring-3')).toBeNull();

    const r = await cli(['replace-node', 'ring-3', '--with', 'spare-0', '--timeout-ms', '150000'], 200_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/ring members \[ring-0, ring-1, ring-2, spare-0\]; ring-3 stopped \(it was not running\), its share not confirmed deleted \(it did not answer: wipe its data directory\)/);
    expect(r.stdout).toContain(`ring-3 did not answer /status, so its share could not be confirmed deleted (it was not running here)`);
    expect(r.stdout).toContain(`wipe ${clusterPaths(config).nodeDir('ring-3')} on its host`);

    // The new ring runs: every staying server and NEW on the new list with only epoch-1 shares.
    for (const row of await ringReconfigurationStatus(config, ['ring-0', 'ring-1', 'ring-2', 'spare-0'])) {
      expect(row.status?.members).toEqual(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
      expect(row.status?.epoch).toBeGreaterThanOrEqual(1);
      expect(row.status?.shareEpochs).toEqual([1]);
    }
    expect(loadDescriptor(config, nodeCrypto).ring).toEqual({ epoch: 1, members: ['ring-0', 'ring-1', 'ring-2', 'spare-0'] });
    // What the command warns of: the down OLD never retired its epoch-0 share file.
    expect(JSON.parse(readFileSync(clusterPaths(config).share('ring-3'), 'utf8'))).toHaveProperty('secretKey');
    expect(runningPid(config, 'ring-3')).toBeNull();
    console.log(`replace-node with ring-3 down:\n${r.stdout.trim()}`);
  }, 240_000);

  it('refresh-keys succeeds with one ring server down and names it', async () => {
    await stopNode(config, 'ring-1', { kill: true });
    const r = await cli(['refresh-keys', '--timeout-ms', '120000'], 160_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/epoch 2 in force from seq \d+ .*; old shares deleted on 3 of 4 ring servers \(not confirmed: ring-1\)/);
    expect(r.stdout).toMatch(/ring-1 did not answer: its old share could not be confirmed deleted/);
    // The refresh ran on ring-0, ring-2 and spare-0: NEW votes and holds its share of epoch 2.
    for (const row of await ringReconfigurationStatus(config, ['ring-0', 'ring-2', 'spare-0'])) expect(row.status?.shareEpochs).toEqual([2]);
    console.log(`refresh-keys with ring-1 down:\n${r.stdout.trim()}`);
  }, 200_000);
});
