/**
 * A scratch cluster of real processes (cluster-configs/local.json topology, free loopback ports),
 * brought up through the CLI as a user does, with an owner store connected to it: registers the
 * file's beforeAll/afterAll and returns the state they fill in.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import { connect, newIdentity, type OceanStore } from '../../client/index.ts';
import { type ClusterConfig } from '../../runtime/cluster-config.ts';
import { initAndUpWithCli, removeScratchCluster, startScratchCluster } from '../runtime/cluster-fixture.ts';

export interface SdkCluster {
  config: ClusterConfig;
  dir: string;
  owner: OceanStore;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI through tsx and cli/main.ts, or (launch) through cli/launch.mjs, which loads the object verbs' bundle without tsx. */
export async function runCli(config: ClusterConfig, args: string[], identity?: string, launch = false): Promise<CliResult> {
  const extra = identity ? ['--identity', identity] : [];
  const entry = launch ? ['cli/launch.mjs'] : ['--import', 'tsx', 'cli/main.ts'];
  const startedMs = Date.now();
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [...entry, ...args, '--config', config.file, ...extra], {
      timeout: 120_000,
      maxBuffer: 64 * 2 ** 20,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; killed?: boolean; signal?: string };
    // Killed at the timeout (or by a signal): say so, not exit 1 with nothing printed (two CI runs
    // saw only that from a racing put, sessions 24 and 28).
    const killed = e.killed || e.signal ? `\n[test] the CLI was killed (${e.signal ?? 'timeout'}) after ${Date.now() - startedMs} ms` : '';
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: (e.stderr ?? '') + killed };
  }
}

export function sdkCluster(): SdkCluster {
  const state = {} as SdkCluster;
  beforeAll(async () => {
    const cluster = await startScratchCluster('cluster-configs/local.json', async (c) => {
      await initAndUpWithCli((args) => runCli(c.config, args), 60_000);
    });
    state.config = cluster.config;
    state.dir = cluster.dir;
    state.owner = await connect({ config: cluster.config.file, identity: newIdentity(), connectTimeoutMs: 30_000 });
  }, 240_000);
  afterAll(async () => {
    await state.owner?.close();
    if (state.config) await removeScratchCluster(state);
  }, 60_000);
  return state;
}
