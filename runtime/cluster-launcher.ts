/**
 * Starts, watches and stops a cluster's node processes on this machine. Each node runs detached
 * (`node <bundle of cli/node.ts> --config FILE --node NAME`, see node-bundle.ts) with its stdio appended to
 * logs/NAME.stdio.log; its pid is kept in run/NAME.pid. Before signalling a pid we check (on Linux,
 * via /proc) that it is still our node process, so a recycled pid is never killed.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterPaths, nodeOf, type ClusterConfig } from './cluster-config.ts';
import { isNodeEntryArg, nodeEntryArgs } from './node-bundle.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface NodeHealth {
  readonly name: string;
  readonly pid: number | null;
  readonly alive: boolean;
  readonly ready: boolean;
}

function readPid(config: ClusterConfig, name: string): number | null {
  const file = clusterPaths(config).pid(name);
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/**
 * True iff `pid` is alive and (where /proc exists) is the node process for `name`, and, given
 * `configFile`, of that cluster: pids are reused, and two clusters on one host (tests run several
 * at once) may both have a node of the same name, so a stale pid file must never lead a stop or a
 * kill to another cluster's node.
 */
export function isNodeProcess(pid: number, name: string, configFile?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const cmdline = `/proc/${pid}/cmdline`;
  if (!existsSync('/proc/self/cmdline')) return true;
  try {
    const args = readFileSync(cmdline, 'utf8').split('\0');
    const at = args.indexOf('--node');
    const config = args.indexOf('--config');
    if (configFile !== undefined && (config < 0 || args[config + 1] !== configFile)) return false;
    return args.some(isNodeEntryArg) && at >= 0 && args[at + 1] === name;
  } catch {
    return false;
  }
}

/** The pid of `name` if its process is running, else null (and a stale pid file is removed). */
export function runningPid(config: ClusterConfig, name: string): number | null {
  const pid = readPid(config, name);
  if (pid === null) return null;
  if (isNodeProcess(pid, name, config.file)) return pid;
  rmSync(clusterPaths(config).pid(name), { force: true });
  return null;
}

/** How nodes this process spawned ended, by config file and name (for start-up failure reports). */
const exits = new Map<string, string>();

/** Spawns `name` detached unless it already runs; returns its pid. */
export async function spawnNode(config: ClusterConfig, name: string): Promise<number> {
  nodeOf(config, name);
  const existing = runningPid(config, name);
  if (existing !== null) return existing;
  const entry = await nodeEntryArgs();
  const paths = clusterPaths(config);
  mkdirSync(dirname(paths.stdio(name)), { recursive: true });
  mkdirSync(paths.runDir, { recursive: true });
  const out = openSync(paths.stdio(name), 'a');
  // OCEANSTORE_NODE_ARGS passes extra node flags (e.g. --cpu-prof, not allowed in NODE_OPTIONS) to every node.
  const extra = (process.env.OCEANSTORE_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...extra, ...entry, '--config', config.file, '--node', name], {
    cwd: repoRoot,
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, NODE_ENV: process.env.NODE_ENV ?? 'production' },
  });
  closeSync(out);
  if (child.pid === undefined) throw new Error(`could not spawn node ${name}`);
  // Kept for the error a waiter reports if the node dies while starting (detached: no stdio to read).
  child.on('exit', (code, signal) => exits.set(`${config.file}:${name}`, signal ? `killed by ${signal}` : `exit code ${code}`));
  writeFileSync(paths.pid(name), `${child.pid}\n`);
  child.unref();
  return child.pid;
}

export async function fetchJson(url: string, timeoutMs: number): Promise<Record<string, unknown> | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return null;
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export async function healthOf(config: ClusterConfig, name: string): Promise<NodeHealth> {
  const node = nodeOf(config, name);
  const pid = runningPid(config, name);
  if (pid === null) return { name, pid, alive: false, ready: false };
  const health = await fetchJson(`http://127.0.0.1:${node.adminPort}/health`, 1000);
  return { name, pid, alive: true, ready: health?.ready === true };
}

/** Waits until every named node reports ready; throws naming the laggards (and any that died). */
export async function waitReady(config: ClusterConfig, names: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: NodeHealth[] = [];
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    if (signal?.aborted) throw new Error('interrupted while waiting for the nodes to become ready');
    last = await Promise.all(names.map((n) => healthOf(config, n)));
    const dead = last.filter((h) => !h.alive);
    if (dead.length > 0) {
      const n = dead[0]!.name;
      const how = exits.get(`${config.file}:${n}`) ?? 'not running';
      const paths = clusterPaths(config);
      throw new Error(`node ${n} exited during start (${how}); see ${paths.stdio(n)}:\n${tail(paths.stdio(n), 15)}\nand the last lines of ${paths.log(n)}:\n${tail(paths.log(n), 5)}`);
    }
    if (last.every((h) => h.ready)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const waiting = last.filter((h) => !h.ready).map((h) => h.name);
  throw new Error(`not ready after ${timeoutMs} ms: ${waiting.join(', ')} (logs under ${dirname(clusterPaths(config).log('x'))})`);
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/**
 * Stops `name`: SIGTERM and a bounded wait for a clean exit, then SIGKILL. With `kill`, SIGKILL at
 * once (a crash, for tests and drills). Returns whether a process was running.
 */
export async function stopNode(config: ClusterConfig, name: string, options: { kill?: boolean; timeoutMs?: number } = {}): Promise<boolean> {
  const pid = runningPid(config, name);
  if (pid === null) return false;
  const signalOf = (s: NodeJS.Signals) => {
    try {
      process.kill(pid, s);
    } catch {
      // already gone
    }
  };
  signalOf(options.kill ? 'SIGKILL' : 'SIGTERM');
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (let i = 0; i < 100_000 && isNodeProcess(pid, name, config.file); i++) {
    if (Date.now() > deadline) {
      signalOf('SIGKILL');
      if (Date.now() > deadline + 2000) throw new Error(`node ${name} (pid ${pid}) did not exit`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  rmSync(clusterPaths(config).pid(name), { force: true });
  return true;
}

export async function stopAll(config: ClusterConfig, options: { kill?: boolean } = {}): Promise<string[]> {
  const stopped = await Promise.all(config.nodes.map(async (n) => ((await stopNode(config, n.name, options)) ? n.name : null)));
  return stopped.filter((n): n is string => n !== null);
}

/** Names of nodes whose process is running. */
export function runningNodes(config: ClusterConfig): string[] {
  return config.nodes.filter((n) => runningPid(config, n.name) !== null).map((n) => n.name);
}
