/**
 * `oceanstore cluster <init|up|status|stop-node|start-node|down>` and `npm start`.
 * The config comes from --config FILE, else OCEANSTORE_CONFIG, else cluster-configs/local.json.
 */
import { ConfigError, InvalidArgumentError, OceanStoreError } from '../core/errors.ts';
import { loadClusterConfig, type ClusterConfig } from '../runtime/cluster-config.ts';
import { initCluster, isInitialized } from '../runtime/cluster-keys.ts';
import { runningNodes, spawnNode, stopAll, stopNode, waitReady } from '../runtime/cluster-launcher.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { parseArgs, stringFlag, type ParsedArgs } from './cluster-args.ts';
import { runDrill } from './cluster-drill.ts';
import { runReconfigure } from './cluster-reconfigure.ts';
import { collectStatus, currentRingNames, printStatus, statusLine } from './cluster-status.ts';

const usage = `usage: oceanstore cluster <command> [--config FILE]
  init                      make node keys, deal the ring key, write the signed ring descriptor
  up [--detach]             start every node; return when all are ready (--detach) or run until Ctrl-C
  status [--json]           view, sequence number, checkpoint, peers per node
  stop-node NAME [--kill]   stop one node (SIGTERM; --kill = SIGKILL, a crash)
  start-node NAME           start one node and wait until it is ready
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

/** Spawns every node that is not running and waits for all to be ready. Returns elapsed ms. */
export async function up(config: ClusterConfig, timeoutMs: number, signal?: AbortSignal): Promise<number> {
  if (!isInitialized(config)) throw new ConfigError(`cluster '${config.name}' is not initialised: run \`oceanstore cluster init --config ${config.file}\``);
  const startedMs = Date.now();
  for (const node of config.nodes) await spawnNode(config, node.name);
  try {
    await waitReady(config, config.nodes.map((n) => n.name), timeoutMs, signal);
  } catch (error) {
    await stopAll(config);
    throw error;
  }
  return Date.now() - startedMs;
}

/** An AbortSignal that fires on the first SIGINT/SIGTERM (so Ctrl-C during start still stops every node). */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const abort = () => controller.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  return controller.signal;
}

/** Foreground: a live status line until the signal fires (SIGINT/SIGTERM), then a clean stop of every node. */
async function foreground(config: ClusterConfig, signal: AbortSignal): Promise<number> {
  const tty = process.stdout.isTTY;
  console.log('cluster running; Ctrl-C stops every node');
  const ring = currentRingNames(config);
  const timer = setInterval(() => {
    void collectStatus(config, ring).then((rows) => {
      if (signal.aborted) return;
      const line = statusLine(rows);
      if (tty) process.stdout.write(`\r\x1b[2K${line}`);
      else console.log(line);
    });
  }, 1000);
  if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  clearInterval(timer);
  if (tty) process.stdout.write('\n');
  const stopped = await stopAll(config);
  console.log(`stopped ${stopped.length} nodes`);
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === '--help') {
    console.log(usage);
    return command ? 0 : 2;
  }
  try {
    const parsed = parseArgs(rest, ['detach', 'json', 'kill', 'scratch']);
    if (command === 'drill') {
      return await runDrill(stringFlag(parsed, 'config', process.env.OCEANSTORE_CONFIG ?? 'cluster-configs/local.json'), parsed.flags);
    }
    const config = configOf(parsed);
    switch (command) {
      case 'init':
        init(config);
        return 0;
      case 'up': {
        const signal = parsed.flags.has('detach') ? undefined : interruptSignal();
        const ms = await up(config, timeoutOf(parsed), signal);
        console.log(`${config.nodes.length} nodes ready in ${(ms / 1000).toFixed(1)} s`);
        return signal ? foreground(config, signal) : 0;
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
        await spawnNode(config, name);
        await waitReady(config, [name], timeoutOf(parsed));
        console.log(`${name} ready`);
        return 0;
      }
      case 'refresh-keys':
      case 'replace-node':
        // Resharing waits for a checkpoint interval of batches: a longer default than readiness.
        return await runReconfigure(command, config, parsed, parsed.flags.has('timeout-ms') ? timeoutOf(parsed) : 120_000);
      case 'down': {
        const stopped = await stopAll(config);
        const left = runningNodes(config);
        console.log(`stopped ${stopped.length} nodes${left.length ? `; still running: ${left.join(', ')}` : ''}`);
        return left.length === 0 ? 0 : 1;
      }
      default:
        console.error(`oceanstore cluster: unknown command '${command}'\n${usage}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof OceanStoreError) {
      console.error(`oceanstore cluster ${command}: ${error.name}: ${error.message}`);
      return error instanceof InvalidArgumentError ? 2 : 1;
    }
    if (error instanceof Error && !(error as NodeJS.ErrnoException).code) {
      console.error(`oceanstore cluster ${command}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

function nameArg(parsed: ParsedArgs): string {
  const name = parsed.positional[0];
  if (!name) throw new InvalidArgumentError('expected a node NAME');
  return name;
}

/** `npm start`: init if needed, then run the cluster in the foreground with a live status line. */
export async function start(args: string[]): Promise<number> {
  try {
    const parsed = parseArgs(args, []);
    const config = configOf(parsed);
    if (!isInitialized(config)) init(config);
    const signal = interruptSignal();
    const ms = await up(config, timeoutOf(parsed), signal);
    console.log(`${config.nodes.length} nodes ready in ${(ms / 1000).toFixed(1)} s (config ${config.file})`);
    return await foreground(config, signal);
  } catch (error) {
    if (error instanceof OceanStoreError || error instanceof Error) {
      console.error(`oceanstore start: ${error.message}`);
      return 1;
    }
    throw error;
  }
}
