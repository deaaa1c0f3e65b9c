/**
 * What the launcher may stop, and when two commands meet (runtime/cluster-launcher.ts, cli/cluster.ts up):
 * - a failed `up` stops only the nodes it spawned (it stopped a whole running cluster);
 * - `up` says which nodes were already running, refuses in the foreground when all are;
 * - an exclusive lock keeps two `up`/`start-node`/`down` apart; a dead holder's lock is taken over;
 * - a pid file without a pid is settled by finding the node's process (never taken for "not running");
 * - `stop-node` takes only node names of the config (`../../victim` deleted a file outside it);
 * - a node that fails at start-up exits (it stayed alive holding its store), and the error says why.
 * Running nodes are stand-in processes with a node's command line; two real node processes are
 * started, each failing at once (a held port, a corrupt key share). Loopback only; all stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { up } from '../../cli/cluster.ts';
import { clusterPaths, loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { initCluster } from '../../runtime/cluster-keys.ts';
import {
  acquireClusterLock, ensureNode, healthOf, isNodeProcess, readPidFile, runningPid, stopAll, stopNode, waitReady, writePidFile,
} from '../../runtime/cluster-launcher.ts';
import { nodeEntrySource } from '../../runtime/node-bundle.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { tempClusterConfig } from './cluster-fixture.ts';

let dir: string;
let config: ClusterConfig;
const standIns: ChildProcess[] = [];
let held: Server | null = null;

/** A process with a node's command line that does nothing, its pid in the node's pid file. */
async function standIn(name: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', nodeEntrySource, '--config', config.file, '--node', name], { stdio: 'ignore' });
  standIns.push(child);
  const pid = child.pid!;
  for (let i = 0; i < 200 && !isNodeProcess(pid, name, config.file); i++) await new Promise((r) => setTimeout(r, 10));
  mkdirSync(clusterPaths(config).runDir, { recursive: true });
  writePidFile(clusterPaths(config).pid(name), pid);
  return pid;
}

beforeAll(async () => {
  const temp = await tempClusterConfig('cluster-configs/local.json');
  dir = temp.dir;
  config = loadClusterConfig(temp.file);
  initCluster(config, nodeCrypto);
}, 60_000);

afterAll(async () => {
  for (const c of standIns) c.kill('SIGKILL');
  held?.close();
  if (config) await stopAll(config, { kill: true });
  rmSync(dir, { recursive: true, force: true });
});

describe('cluster launcher: pid files', () => {
  it('an empty or garbled pid file is settled by looking for the node: none running → removed; running → found and rewritten', async () => {
    const file = clusterPaths(config).pid('archive-5');
    mkdirSync(clusterPaths(config).runDir, { recursive: true });
    writeFileSync(file, '');
    expect(readPidFile(file)).toBe('unknown');
    expect(runningPid(config, 'archive-5')).toBe(null);
    expect(existsSync(file)).toBe(false);
    writePidFile(file, 4242);
    expect(readFileSync(file, 'utf8')).toBe('4242\n');
    expect(readPidFile(file)).toBe(4242);
    rmSync(file);
    expect(readPidFile(file)).toBe(null);
    // A live node behind a garbled pid file: `down` skipped it and `up` started a second one beside it.
    const pid = await standIn('archive-5');
    writeFileSync(file, 'garbage');
    expect(runningPid(config, 'archive-5')).toBe(pid);
    expect(readPidFile(file)).toBe(pid);
    expect(await healthOf(config, 'archive-5')).toMatchObject({ pid, alive: true });
    expect(await stopNode(config, 'archive-5', { kill: true })).toBe(true);
  });

  it('stop-node takes only names of the config: nothing outside the data dir is touched', async () => {
    const victim = join(dir, 'victim.pid');
    writeFileSync(victim, '999999\n');
    await expect(stopNode(config, '../../victim')).rejects.toThrow(/no node named '..\/..\/victim'/);
    await expect(stopNode(config, 'bogus')).rejects.toThrow(ConfigError);
    expect(existsSync(victim)).toBe(true);
  });
});

describe('cluster launcher: the lock', () => {
  it('a second holder is refused while the first is alive; a dead holder\'s lock is taken over', async () => {
    const release = acquireClusterLock(config, 'up');
    const lock = join(clusterPaths(config).runDir, 'cluster.lock');
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${process.pid} up \\S+\n$`));
    release();
    expect(existsSync(lock)).toBe(false);

    const holder = await standIn('replica-1');
    writeFileSync(lock, `${holder} up\n`);
    await expect(up(config, 1000, undefined, { say: () => undefined })).rejects.toThrow(new RegExp(`another oceanstore command \\(pid ${holder}, cluster up\\)`));
    expect(() => acquireClusterLock(config, 'down')).toThrow(ConfigError);

    writeFileSync(lock, '999999999 up\n'); // no such process
    acquireClusterLock(config, 'down')();
    expect(existsSync(lock)).toBe(false);

    // A live process that is no node, npm or tsx program holds a reused pid, not the lock.
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(`/proc/${sleeper.pid}/cmdline`); i++) await new Promise((r) => setTimeout(r, 10));
      writeFileSync(lock, `${sleeper.pid} up\n`);
      acquireClusterLock(config, 'down')();
      expect(existsSync(lock)).toBe(false);
    } finally {
      sleeper.kill('SIGKILL');
    }
    await stopNode(config, 'replica-1', { kill: true });
  });
});

describe('cluster up with nodes already running', () => {
  it('refuses in the foreground when all run, and a detached up starts nothing', async () => {
    for (const n of config.nodes) await standIn(n.name);
    await expect(up(config, 1000, undefined, { refuseIfRunning: true, say: () => undefined })).rejects.toThrow(/is already running \(14 nodes\); use `oceanstore cluster status`/);
    const lines: string[] = [];
    const result = await up(config, 1000, undefined, { say: (l) => lines.push(l) });
    expect(result.spawned).toEqual([]);
    expect(lines.join('\n')).toMatch(/already running \(14 nodes\); nothing to start/);
  });

  it('a failed up stops only the node it started; the running ones stay', async () => {
    const victim = 'ring-3';
    for (const n of config.nodes) if (n.name !== victim && runningPid(config, n.name) === null) await standIn(n.name);
    await stopNode(config, victim, { kill: true });
    // Another program holds the node's port: the node cannot start.
    const port = config.nodes.find((n) => n.name === victim)!.port;
    held = createServer();
    await new Promise<void>((resolve) => held!.listen(port, '127.0.0.1', () => resolve()));
    const lines: string[] = [];
    const failed = await up(config, 30_000, undefined, { say: (l) => lines.push(l) }).then(() => null, (e: Error) => e);
    expect(lines).toEqual([`${config.nodes.length - 1} nodes already running; starting the other 1`]);
    expect(failed?.message).toMatch(/node ring-3 exited during start/);
    expect(runningPid(config, victim)).toBe(null);
    // Every other node is still running (it was: all of them were stopped).
    const others = config.nodes.filter((n) => n.name !== victim);
    expect(others.filter((n) => runningPid(config, n.name) === null).map((n) => n.name)).toEqual([]);
    held.close();
    held = null;
  }, 60_000);
});

describe('a node that fails at start-up', () => {
  it('exits, and the error says why (it stayed alive; the launcher only timed out)', async () => {
    const name = 'ring-2';
    await stopNode(config, name, { kill: true });
    writeFileSync(clusterPaths(config).share(name), '{ not json');
    const { spawned } = await ensureNode(config, name);
    expect(spawned).toBe(true);
    const startedMs = Date.now();
    const error = await waitReady(config, [name], 30_000).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/node ring-2 exited during start/);
    expect(error?.message).toMatch(/start failed: ConfigError: cannot read key share of ring-2/);
    expect(Date.now() - startedMs).toBeLessThan(30_000);
  }, 60_000);

  it("refuses to run beside a live process of the same node, before it opens the store; a dead holder's lock is taken over", async () => {
    const name = 'ring-1';
    const paths = clusterPaths(config);
    const holder = await standIn(name);
    rmSync(paths.pid(name)); // a node started by hand: no pid file, so the launcher starts a second one
    const lock = join(paths.nodeDir(name), 'node.lock');
    writeFileSync(lock, `${holder} ${name}\n`);
    expect((await ensureNode(config, name)).spawned).toBe(true);
    const error = await waitReady(config, [name], 30_000).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(new RegExp(`start failed: ConfigError: node ring-1 already runs \\(pid ${holder}\\)`));
    expect(existsSync(paths.db(name))).toBe(false);
    expect(readFileSync(lock, 'utf8')).toBe(`${holder} ${name}\n`);

    standIns.at(-1)!.kill('SIGKILL');
    for (let i = 0; i < 200 && isNodeProcess(holder, name); i++) await new Promise((r) => setTimeout(r, 10));
    const { spawned } = await ensureNode(config, name);
    expect(spawned).toBe(true);
    const pid = runningPid(config, name);
    for (let i = 0; i < 600 && !existsSync(paths.db(name)); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(paths.db(name))).toBe(true);
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${pid} ${name} \\S+/\\S+/\\d+\n$`));
    // Started (its admin port answers): a clean stop lets the lock go.
    const health = `http://127.0.0.1:${config.nodes.find((n) => n.name === name)!.adminPort}/health`;
    const answers = () => fetch(health, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    for (let i = 0; i < 300 && !(await answers()); i++) await new Promise((r) => setTimeout(r, 100));
    await stopNode(config, name);
    expect(existsSync(lock)).toBe(false);
  }, 60_000);
});
