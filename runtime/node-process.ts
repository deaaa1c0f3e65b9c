/**
 * One node process: loads the config, the admin-signed ring descriptor and this node's keys,
 * opens its lmdb store, starts the authenticated transport, hosts the role's cores (runtime/roles.ts),
 * serves the admin port, writes a pid file, and on SIGTERM/SIGINT stops in order (stop taking
 * frames, release held effects, close the store, remove the pid file).
 */
import { useMclBls } from './mcl-bls.ts';
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { fromHex } from '../core/bytes.ts';
import { ConfigError } from '../core/errors.ts';
import type { Effect } from '../core/machine.ts';
import { startAdminServer, stopAdminServer } from './admin-server.ts';
import { readPidFile, writePidFile } from './cluster-launcher.ts';
import { acquireLockFile } from './lock-file.ts';
import { clusterPaths, loadClusterConfig, nodeOf, type ClusterConfig, type NodeConfig } from './cluster-config.ts';
import { loadIdentity, loadNodeDescriptor, ringEpochOf, ringNamesOf, saveLearnedDescriptor, type RingDescriptor } from './cluster-keys.ts';
import { DescriptorGossip, gossipBinding } from './descriptor-gossip.ts';
import { LmdbKvStore } from './lmdb-kv-store.ts';
import { fileLogger } from './log.ts';
import { MachineHost } from './machine-host.ts';
import { createMetrics, type NodeMetrics } from './metrics.ts';
import { nodeCrypto } from './node-crypto.ts';
import { buildRole, type RoleAdapter } from './roles.ts';
import { Transport, type PeerAddress } from './transport.ts';

export interface RunningNode {
  readonly name: string;
  readonly transport: Transport;
  readonly host: MachineHost;
  readonly role: RoleAdapter;
  stop(): Promise<void>;
}

/** Frames are bounded per protocol by the host; the transport's cap is the largest of those. */
const transportFrameBytesMin = 1 << 20;

export interface StartNodeOptions {
  /** Overrides the per-node log file (tests). */
  readonly log?: Logger;
  /** Write a pid file (the launcher's way to find us). */
  readonly pidFile?: boolean;
}

export async function startNode(configFile: string, name: string, options: StartNodeOptions = {}): Promise<RunningNode> {
  const config = loadClusterConfig(configFile);
  const node = nodeOf(config, name);
  await useMclBls(); // threshold signing and certificate checks on the WebAssembly BLS engine
  const paths = clusterPaths(config);
  const log = options.log ?? fileLogger(paths.log(name), name);
  // The admin's descriptor, or a later ring this node learned from its peers before a restart.
  const descriptor = loadNodeDescriptor(config, name, nodeCrypto, (reason) => log.warn({ reason }, 'learned ring descriptor ignored'));
  const secretKey = loadIdentity(config, descriptor, name, nodeCrypto);
  // Before the store opens: lmdb lets two processes share it, and two processes as one member
  // (one started by hand beside the launcher's) would interleave their views, slots and votes.
  // A lock left by a crash is stale (its pid is gone, or is no node of this name) and taken over.
  mkdirSync(paths.nodeDir(name), { recursive: true });
  checkFreeSpace(paths.nodeDir(name), startFreeBytesMin);
  const releaseLock = lockNodeDir(paths.nodeDir(name), name, () => {
    // Another process took this node's lock: this one stalled past the lease, and two processes
    // must never run as one member. Stop at once (what is acknowledged is durable).
    log.fatal('node lock taken by another process; exiting');
    process.exit(lockLostExitCode);
  });
  mkdirSync(paths.db(name), { recursive: true });
  const store = new LmdbKvStore({ path: paths.db(name), syncCommit: process.env.OCEANSTORE_ASYNC_COMMIT !== '1' });
  const metrics = createMetrics(name, node.role);
  const startedMs = Date.now();

  const members = new Map<string, PeerAddress>(descriptor.nodes.map((n) => [n.name, { publicKey: fromHex(n.publicKey), url: n.url }]));
  // The host is built after the role (it needs the role's bindings): steps the role runs later reach it through this.
  let hostOf: MachineHost | null = null;
  const execute = (channel: number, run: (nowMs: number) => Effect<unknown, unknown>[]) => hostOf?.execute(channel, run);
  const role = buildRole({ config, descriptor, node, secretKey, crypto: nodeCrypto, store, metrics, log, nowMs: Date.now(), execute });
  const frameBytesMax = Math.max(transportFrameBytesMin, ...role.bindings.map((b) => b.frameBytesMax + 1));
  const transport = new Transport({
    name, secretKey, crypto: nodeCrypto, members, listen: { host: node.listenHost.replace(/^\[(.*)\]$/, '$1'), port: node.port }, // a socket binds an IPv6 address bare
    acceptClients: true, frameBytesMax, log, clientsMax: config.clientsMax,
  });
  const host = new MachineHost(name, transport, store, log, hostEvents(metrics));
  for (const binding of role.bindings) host.add(binding);
  hostOf = host;
  const gossip = nodeGossip(config, name, descriptor, transport, role, log);
  host.add(gossip.binding);
  await transport.start();
  host.start();
  for (const step of role.startup) host.execute(step.channel, step.run);

  const admin: Server = await startAdminServer(node.adminPort, {
    registry: metrics.registry,
    beforeScrape: () => {
      metrics.bytesStored.set(store.flushStats().valueBytesWritten);
      metrics.peersConnected.set(transport.connectedPeers().length);
      metrics.handshakesRefused.set(transport.counters.handshakesRefused);
      metrics.framesBadTag.set(transport.counters.framesBadTag);
      metrics.framesOversized.set(transport.counters.framesOversized);
    },
    health: () => ({ name, role: node.role, ready: role.ready(transport.connectedPeers()), pid: process.pid }),
    status: () => statusOf(config, node, gossip.machine, transport, host, store, role, startedMs),
  });
  if (options.pidFile) {
    mkdirSync(paths.runDir, { recursive: true });
    // The launcher wrote our pid already; rewriting it in place (truncate, then write) let a
    // launcher polling the file read it empty and take the node for dead.
    if (readPidFile(paths.pid(name)) !== process.pid) writePidFile(paths.pid(name), process.pid);
  }
  log.info({ node: name, role: node.role, port: node.port, adminPort: node.adminPort, cores: role.bindings.map((b) => b.protocol) }, 'node started');

  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= (async () => {
      log.info('node stopping');
      await host.stop();
      await role.close?.();
      await transport.stop();
      await stopAdminServer(admin);
      await store.close();
      if (options.pidFile && readPidFile(paths.pid(name)) === process.pid) rmSync(paths.pid(name), { force: true });
      releaseLock();
      log.info('node stopped');
    })();
    return stopping;
  };
  return { name, transport, host, role, stop };
}

/** Below this a node does not start: lmdb creating its environment on a full disk ends the process with SIGBUS, unlogged. */
const startFreeBytesMin = 32 * 2 ** 20;

/** Throws a ConfigError naming `dir` when its filesystem has less than `bytesMin` free for this user. */
export function checkFreeSpace(dir: string, bytesMin: number): void {
  const fs = statfsSync(dir);
  const freeBytes = fs.bavail * fs.bsize;
  if (freeBytes >= bytesMin) return;
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  throw new ConfigError(`${dir}: ${mib(freeBytes)} free on its filesystem; a node needs at least ${mib(bytesMin)} to start (free some space)`);
}

/** Exit code of a node whose lock another process took (docs/operations.md). */
export const lockLostExitCode = 72;

/** How long a node's lock stays held untouched, for a process in another pid namespace (a container sharing the folder). */
const nodeLockLeaseMs = 60_000;

function lockNodeDir(dir: string, name: string, onLost: () => void): () => void {
  return acquireLockFile(join(dir, 'node.lock'), {
    what: name,
    leaseMs: nodeLockLeaseMs,
    onLost,
    holderAlive: (pid) => runsNodeNamed(pid, name),
    busy: (pid) => new ConfigError(`node ${name} already runs (pid ${pid}) on ${dir}; stop it first (lock ${join(dir, 'node.lock')})`),
  });
}

/**
 * Whether `pid` is alive and (where /proc shows it) was started with `--node NAME`, whatever its
 * entry point: the launcher's cli/node.ts or bundle, `npx oceanstore node`, tsx's child. After a
 * crash and a reboot the pid may belong to any other program, which must not hold the lock.
 */
function runsNodeNamed(pid: number, name: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let args: string[];
  try {
    args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return !existsSync('/proc/self/cmdline'); // no /proc here: cannot tell, assume it holds it
  }
  return args.some((arg, i) => arg === `--node=${name}` || (arg === '--node' && args[i + 1] === name));
}

function hostEvents(metrics: NodeMetrics) {
  return {
    onFlush: (stepCount: number, flushMs: number) => {
      metrics.flushLatency.observe(flushMs / 1000);
      metrics.stepsPerFlush.observe(stepCount);
    },
    onDrop: (protocol: string, reason: string) => metrics.framesDropped.inc({ protocol, reason: reason.split(':')[0] }),
    onMessage: (protocol: string) => metrics.messages.inc({ protocol }),
  };
}

/**
 * Channel 5: this node's part in spreading re-signed descriptors (runtime/descriptor-gossip.ts). It
 * announces its ring epoch to the members it is connected to; a later descriptor it takes is kept
 * as this node's learned descriptor (a restart starts from it) and handed to the role.
 */
function nodeGossip(config: ClusterConfig, name: string, descriptor: RingDescriptor, transport: Transport, role: RoleAdapter, log: Logger) {
  const members = new Set(descriptor.nodes.map((n) => n.name));
  const machine = new DescriptorGossip({
    crypto: nodeCrypto, descriptor,
    targets: () => transport.connectedPeers().filter((p) => members.has(p)),
    connected: () => transport.connectedPeers(),
    isMember: (peer) => members.has(peer),
  });
  const binding = gossipBinding(machine, (event) => {
    if (event.kind === 'refused') return void log.warn({ from: event.from, reason: event.reason }, 'ring descriptor refused');
    const d = event.descriptor;
    log.info({ from: event.from, epoch: ringEpochOf(d), members: ringNamesOf(d) }, 'ring descriptor taken');
    try {
      saveLearnedDescriptor(config, name, d);
    } catch (error) {
      log.error({ reason: (error as Error).message }, 'ring descriptor not saved');
    }
    role.onDescriptor(d);
  });
  return { machine, binding };
}

function statusOf(
  config: ClusterConfig, node: NodeConfig, gossip: DescriptorGossip, transport: Transport, host: MachineHost,
  store: LmdbKvStore, role: RoleAdapter, startedMs: number,
): Record<string, unknown> {
  const peers = transport.connectedPeers();
  const descriptor = gossip.descriptor;
  return {
    name: node.name, role: node.role, cluster: config.name, ringId: descriptor.ringId, pid: process.pid,
    ringEpoch: ringEpochOf(descriptor), ringMembers: ringNamesOf(descriptor), descriptorGossip: { ...gossip.counters },
    uptimeMs: Date.now() - startedMs, cores: role.bindings.map((b) => b.protocol),
    peers: peers.filter((p) => !transport.isClient(p)), clients: peers.filter((p) => transport.isClient(p)).length,
    transport: transport.counters, host: host.counters, store: store.flushStats(),
    ...role.status(),
  };
}

/** `oceanstore node --config FILE --node NAME`: run until SIGTERM/SIGINT. */
export async function runNodeMain(configFile: string, name: string): Promise<void> {
  const running = await startNode(configFile, name, { pidFile: true });
  const shutdown = () => void running.stop().then(() => process.exit(0));
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
