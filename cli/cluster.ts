/**
 * `oceanstore cluster <init|up|status|stop-node|start-node|down>` and `npm start`.
 * The config comes from --config FILE, else OCEANSTORE_CONFIG, else cluster-configs/local.json.
 */
import { ConfigError, InvalidArgumentError, OceanStoreError } from '../core/errors.ts';
import { loadClusterConfig, type ClusterConfig } from '../runtime/cluster-config.ts';
import { initCluster, isInitialized } from '../runtime/cluster-keys.ts';
import { ensureNode, runningNodes, runningPid, stopAll, stopNode, waitReady, withClusterLock } from '../runtime/cluster-launcher.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { checkPositional, parseArgs, stringFlag, type ParsedArgs } from './cluster-args.ts';
import { runDrill } from './cluster-drill.ts';
import { runReconfigure } from './cluster-reconfigure.ts';
import { collectStatus, currentRingNames, printStatus, statusLine } from './cluster-status.ts';
import { fsErrorMessage, onBrokenStdout } from './fs-errors.ts';
import { interruptSignals } from './output-file.ts';

const usage = `usage: oceanstore cluster <command> [--config FILE]
  init                      make node keys, deal the ring key, write the signed ring descriptor
  up [--detach]             start every node not running; return when all are ready (--detach) or run
                            until Ctrl-C, which stops only the nodes this command started
  status [--json]           view, sequence number, checkpoint, peers per node
  stop-node NAME [--kill]   stop one node (SIGTERM; --kill = SIGKILL, a crash)
  start-node NAME           start one node and wait until it is ready (stopped again if it is not)
  down                      stop every node; no process is left behind
  refresh-keys              reshare the ring key (new shares, same ring public key); old shares deleted
  replace-node OLD --with NEW  put the spare NEW in ring server OLD's place (reshare, switch, catch up); OLD is stopped
  drill [--trials N] [--seed S] [--scratch]
                            crash drill: kill -9 random nodes during chained writes, check nothing acknowledged is lost
options: --timeout-ms N (readiness wait, default 30000)`;

function configOf(parsed: ParsedArgs): ClusterConfig {
  return loadClusterConfig(stringFlag(parsed, 'config', process.env.OCEANSTORE_CONFIG ?? 'cluster-configs/local.json'));
}

function timeoutOf(parsed: ParsedArgs): number {
  const ms = Number(stringFlag(parsed, 'timeout-ms', '30000'));
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new InvalidArgumentError('--timeout-ms: expected a positive integer');
  return ms;
}

export function init(config: ClusterConfig): void {
  const d = initCluster(config, nodeCrypto);
  console.log(`initialised cluster '${config.name}' under ${config.dataDir}`);
  console.log(`  ring id ${d.ringId.slice(0, 16)}…  f = ${d.f}, threshold ${d.threshold} of ${d.nodes.filter((n) => n.role === 'ring').length}`);
  console.log(`  ${d.nodes.length} node identities, ring descriptor signed by admin key ${d.adminPublicKey.slice(0, 16)}…`);
}

export interface UpResult {
  readonly ms: number;
  /** Nodes this call started: the only ones its failure or its Ctrl-C may stop. */
  readonly spawned: string[];
  /** Nodes that were running before: someone else's, left alone. */
  readonly alreadyRunning: string[];
}

/**
 * Spawns every node that is not running and waits for all to be ready, holding the cluster's lock
 * (a second `up` at once is refused). If some nodes already run it says so; if all do, it refuses
 * when `refuseIfRunning` (a foreground `up` would otherwise take charge of a cluster it did not
 * start), else starts nothing. On failure it stops only the nodes it spawned: a failed `up` once
 * stopped every node of a cluster that was already running.
 */
export async function up(
  config: ClusterConfig, timeoutMs: number, signal?: AbortSignal,
  options: { refuseIfRunning?: boolean; say?: (line: string) => void } = {},
): Promise<UpResult> {
  if (!isInitialized(config)) throw new ConfigError(`cluster '${config.name}' is not initialised: run \`oceanstore cluster init --config ${config.file}\``);
  const say = options.say ?? ((line: string) => console.log(line));
  return withClusterLock(config, 'up', async () => {
    const startedMs = Date.now();
    const alreadyRunning = runningNodes(config);
    const toStart = config.nodes.map((n) => n.name).filter((n) => !alreadyRunning.includes(n));
    if (toStart.length === 0) {
      if (options.refuseIfRunning) {
        throw new ConfigError(`cluster '${config.name}' is already running (${alreadyRunning.length} nodes); use \`oceanstore cluster status\` to see it or \`oceanstore cluster down\` to stop it`);
      }
      say(`cluster '${config.name}' is already running (${alreadyRunning.length} nodes); nothing to start (see \`oceanstore cluster status\`)`);
      return { ms: Date.now() - startedMs, spawned: [], alreadyRunning };
    } else if (alreadyRunning.length > 0) {
      say(`${alreadyRunning.length} nodes already running; starting the other ${toStart.length}`);
    }
    const spawned: string[] = [];
    try {
      for (const name of toStart) {
        if (signal?.aborted) throw new Error('interrupted while starting the nodes');
        if ((await ensureNode(config, name)).spawned) spawned.push(name);
      }
      await waitReady(config, config.nodes.map((n) => n.name), timeoutMs, signal);
    } catch (error) {
      await Promise.all(spawned.map((n) => stopNode(config, n).catch(() => false)));
      throw error;
    }
    return { ms: Date.now() - startedMs, spawned, alreadyRunning };
  });
}

// Signals that end a foreground cluster: Ctrl-C, `kill`, and the terminal closing (SIGHUP).
export { interruptSignals };

/**
 * An AbortSignal that fires on the first of interruptSignals (so Ctrl-C during start still stops the
 * nodes). The handlers stay: a second Ctrl-C (or a terminal that sends SIGINT and then SIGHUP)
 * must not fall through to the default action and end this process before the nodes are stopped.
 */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const abort = () => controller.abort();
  for (const s of interruptSignals) process.on(s, abort);
  return controller.signal;
}

/**
 * Foreground: a live status line until the signal fires (SIGINT/SIGTERM/SIGHUP), then a clean stop
 * of the nodes this command started (`spawned`); nodes that were running before are left running.
 */
async function foreground(config: ClusterConfig, signal: AbortSignal, spawned: readonly string[]): Promise<number> {
  const tty = process.stdout.isTTY;
  // After a hang-up the terminal is gone: writing to it must not end us before the nodes are stopped.
  onBrokenStdout(() => undefined);
  const others = config.nodes.length - spawned.length;
  console.log(`cluster running; Ctrl-C stops ${others > 0 ? `the ${spawned.length} nodes this command started` : 'every node'}`);
  const ring = currentRingNames(config);
  const timer = setInterval(() => {
    void collectStatus(config, ring).then((rows) => {
      if (signal.aborted) return;
      const line = statusLine(rows);
      if (tty) process.stdout.write(`\r\x1b[2K${line}`);
      else console.log(line);
    });
  }, 1000);
  // On the signal, SIGTERM goes to every node at once, inside the handler, so the nodes stop even if
  // this process is killed before it has waited for them (stopNode below waits, then SIGKILLs).
  // A node signalled here counts as stopped even if it has exited before stopNode looks at it
  // (most have: "stopped 4 nodes" was printed for 14).
  const signalled = new Set<string>();
  const terminate = (): void => {
    for (const name of spawned) {
      const pid = runningPid(config, name);
      if (pid === null) continue;
      try {
        process.kill(pid, 'SIGTERM');
        signalled.add(name);
      } catch {
        // gone already
      }
    }
  };
  if (signal.aborted) terminate();
  else await new Promise<void>((resolve) => signal.addEventListener('abort', () => (terminate(), resolve()), { once: true }));
  clearInterval(timer);
  if (tty) process.stdout.write('\n');
  const stopped = (await Promise.all(spawned.map(async (n) => ((await stopNode(config, n)) || signalled.has(n) ? n : null)))).filter((n) => n !== null);
  console.log(`stopped ${stopped.length} nodes${others > 0 ? ` (${others} started before this command left running)` : ''}`);
  return 0;
}

/** Per command: the flags taking a value, the bare flags, and how many positional arguments. */
const commandArgs: Record<string, { values: string[]; booleans: string[]; positional: number }> = {
  init: { values: ['config'], booleans: [], positional: 0 },
  up: { values: ['config', 'timeout-ms'], booleans: ['detach'], positional: 0 },
  status: { values: ['config'], booleans: ['json'], positional: 0 },
  'stop-node': { values: ['config'], booleans: ['kill'], positional: 1 },
  'start-node': { values: ['config', 'timeout-ms'], booleans: [], positional: 1 },
  down: { values: ['config'], booleans: [], positional: 0 },
  'refresh-keys': { values: ['config', 'timeout-ms'], booleans: [], positional: 0 },
  'replace-node': { values: ['config', 'timeout-ms', 'with'], booleans: [], positional: 1 },
  drill: { values: ['config', 'trials', 'seed'], booleans: ['scratch'], positional: 0 },
};

/** Parses `args` for `command` (exported for tests): unknown options and extra arguments are usage errors. */
export function parseCommandArgs(command: string, args: readonly string[]): ParsedArgs {
  const spec = commandArgs[command]!;
  const parsed = parseArgs(args, spec.booleans, spec.values);
  checkPositional(parsed, spec.positional, `cluster ${command}`);
  return parsed;
}

export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === '--help') {
    console.log(usage);
    return command ? 0 : 2;
  }
  if (rest.includes('--help')) {
    console.log(usage);
    return 0;
  }
  if (!commandArgs[command]) {
    console.error(`oceanstore cluster: unknown command '${command}'\n${usage}`);
    return 2;
  }
  try {
    const parsed = parseCommandArgs(command, rest);
    if (command === 'drill') {
      return await runDrill(stringFlag(parsed, 'config', process.env.OCEANSTORE_CONFIG ?? 'cluster-configs/local.json'), parsed.flags);
    }
    const timeoutMs = timeoutOf(parsed);
    const config = configOf(parsed);
    switch (command) {
      case 'init':
        init(config);
        return 0;
      case 'up': {
        const detach = parsed.flags.has('detach');
        const signal = detach ? undefined : interruptSignal();
        const result = await up(config, timeoutMs, signal, { refuseIfRunning: !detach });
        if (result.spawned.length > 0) console.log(`${config.nodes.length} nodes ready in ${(result.ms / 1000).toFixed(1)} s`);
        return signal ? foreground(config, signal, result.spawned) : 0;
      }
      case 'status': {
        const rows = await collectStatus(config);
        if (parsed.flags.has('json')) console.log(JSON.stringify(rows, null, 2));
        else printStatus(rows);
        // A ring server that a replacement took out is expected to be down.
        return rows.every((r) => r.state === 'up' || (r.state === 'down' && r.role === 'ring' && !r.ringMember)) ? 0 : 1;
      }
      case 'stop-node': {
        const name = nameArg(parsed);
        const wasRunning = await stopNode(config, name, { kill: parsed.flags.has('kill') });
        console.log(wasRunning ? `${name} ${parsed.flags.has('kill') ? 'killed' : 'stopped'}` : `${name} was not running`);
        return 0;
      }
      case 'start-node': {
        const name = nameArg(parsed);
        return await withClusterLock(config, 'start-node', async () => {
          const { pid, spawned } = await ensureNode(config, name);
          if (!spawned) {
            console.log(`${name} is already running (pid ${pid})`);
            return 0;
          }
          try {
            await waitReady(config, [name], timeoutMs);
          } catch (error) {
            // A node that never became ready is not left running behind the error.
            await stopNode(config, name).catch(() => false);
            throw error;
          }
          console.log(`${name} ready`);
          return 0;
        });
      }
      case 'refresh-keys':
      case 'replace-node':
        // Resharing waits for a checkpoint interval of batches: a longer default than readiness.
        return await runReconfigure(command, config, parsed, parsed.flags.has('timeout-ms') ? timeoutMs : 120_000);
      case 'down': {
        return await withClusterLock(config, 'down', async () => {
          const stopped = await stopAll(config);
          const left = runningNodes(config);
          console.log(`stopped ${stopped.length} nodes${left.length ? `; still running: ${left.join(', ')}` : ''}`);
          return left.length === 0 ? 0 : 1;
        });
      }
      default:
        return 2;
    }
  } catch (error) {
    // `status --json` feeds scripts: its failure is JSON on stdout too, as the object verbs' are.
    return reportError(`oceanstore cluster ${command}`, error, rest.includes('--json'));
  }
}

/**
 * One line for any error: exit 2 for usage, 1 otherwise; a file-system error names the path. With
 * `json`, also {"error": {name, message, exitCode}} on stdout.
 */
function reportError(prefix: string, error: unknown, json = false): number {
  let name: string;
  let message: string;
  let code = 1;
  const fs = fsErrorMessage(error);
  if (error instanceof OceanStoreError) {
    [name, message] = [error.name, error.message];
    if (error instanceof InvalidArgumentError) code = 2;
    console.error(`${prefix}: ${name}: ${message}`);
  } else if (fs !== null) {
    [name, message] = ['FileError', fs];
    console.error(`${prefix}: ${fs}`);
  } else if (error instanceof Error) {
    [name, message] = [error.name, error.message];
    console.error(`${prefix}: ${message}`);
  } else throw error;
  if (json) console.log(JSON.stringify({ error: { name, message, exitCode: code } }));
  return code;
}

function nameArg(parsed: ParsedArgs): string {
  const name = parsed.positional[0];
  if (!name) throw new InvalidArgumentError('expected a node NAME');
  return name;
}

/** `npm start`: init if needed, then run the cluster in the foreground with a live status line. */
export async function start(args: string[]): Promise<number> {
  try {
    const parsed = parseArgs(args, [], ['config', 'timeout-ms']);
    checkPositional(parsed, 0, 'start');
    const timeoutMs = timeoutOf(parsed);
    const config = configOf(parsed);
    if (!isInitialized(config)) init(config);
    const signal = interruptSignal();
    const result = await up(config, timeoutMs, signal, { refuseIfRunning: true });
    console.log(`${config.nodes.length} nodes ready in ${(result.ms / 1000).toFixed(1)} s (config ${config.file})`);
    return await foreground(config, signal, result.spawned);
  } catch (error) {
    return reportError('oceanstore start', error);
  }
}
