/**
 * Cluster configuration files (cluster-configs/*.json): which nodes exist, their roles and
 * addresses, the ring's fault bound and the archive's erasure code. Parsed once, validated with
 * ConfigError messages that name the field and say what to fix; nothing downstream re-checks.
 */
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../core/errors.ts';
import { resolveParameters, type ProtocolParameters } from '../ring/config.ts';

/** `spare`: a server that can replace a ring member (`cluster replace-node`); not a member until then. */
export const roles = ['ring', 'archive', 'replica', 'spare'] as const;
export type Role = (typeof roles)[number];

export interface NodeConfig {
  readonly name: string;
  readonly role: Role;
  /** Address peers dial (ws://host:port): a host name, an IPv4 address or a bracketed IPv6 address. */
  readonly host: string;
  readonly port: number;
  /** Address this node binds, in the same forms as host; defaults to host (set 0.0.0.0 behind NAT). */
  readonly listenHost: string;
  /** Admin HTTP port (/health, /status, /metrics), always bound to 127.0.0.1. */
  readonly adminPort: number;
}

export interface ClusterConfig {
  readonly name: string;
  /**
   * Absolute. A relative dataDir in the file is resolved against the folder holding the config
   * file, or, when that folder is named cluster-configs, against the folder above it (the
   * repository root for the shipped configs); never against the current directory.
   */
  readonly dataDir: string;
  /** Ring fault bound: the ring has exactly 3f+1 servers. */
  readonly f: number;
  /** Archive erasure code: k data + m parity fragments per block, each on its own server. */
  readonly erasure: { readonly k: number; readonly m: number };
  readonly tickMs: number;
  /** PBFT parameters for real processes (ring/config.ts ProtocolParameters); see runtimeRingDefaults. */
  readonly ring: Readonly<Record<string, number>>;
  readonly nodes: readonly NodeConfig[];
  /**
   * Most client connections a node takes at once (runtime/transport.ts, default 32). Each may make
   * the node hold about twice its frame cap (64 MiB on ring and archive servers): see docs/runtime.md.
   */
  readonly clientsMax?: number;
  /** The file it came from (absolute), for child processes. */
  readonly file: string;
}

const nameRe = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The ring core's defaults are tuned for the simulator's virtual time; real processes on a shared
 * machine see scheduling stalls of hundreds of ms, and a request timeout below them turns load
 * into a storm of view changes. These are the runtime's defaults; a config's "ring" overrides them.
 */
export const runtimeRingDefaults: Readonly<Record<string, number>> = {
  requestTimeoutMs: 6000,
  viewChangeTimeoutMs: 8000,
  statusIntervalMs: 250,
  batchDelayMs: 2,
  // A certificate round costs tens of ms of BLS CPU on every ring server and a pairing on every
  // reader; on a few shared cores rounds a few per second keep the agreement path responsive.
  certifyIntervalMs: 100,
  certifyTakeoverMs: 3000,
};
/**
 * A reconfiguration phase's deadline on real processes, in agreed time (the batch stamps: wall
 * speed, a heartbeat batch every second). It is part of the replicated state machine (phases close
 * at the same execution everywhere), so it is a constant, not derived from each node's config. It
 * must outlast a view change: a faulty primary that holds members' records back until the deadline
 * is replaced first only if the backups' timer (requestTimeoutMs) and the view change
 * (viewChangeTimeoutMs) run out before it, with room for stamps it sets early (a heartbeat period)
 * or ahead (timestampAheadMaxMs); parseRing refuses ring timeouts that break this. At 5 s, under
 * the 6 s request timeout, such a primary had complaints refused with no view change (session 19).
 * Phases whose speakers all spoke close at once, so only a silent member makes a round wait it out.
 */
export const reconfigurationPhaseMs = 20_000;

const ringParameterNames = ['batchSizeMax', 'pipelineDepthMax', 'batchDelayMs', 'checkpointInterval', 'watermarkWindow',
  'requestTimeoutMs', 'viewChangeTimeoutMs', 'statusIntervalMs', 'heartbeatIntervalMs', 'certifyIntervalMs', 'certifyTakeoverMs', 'timestampAheadMaxMs',
  'timestampBehindMaxMs'];

function parseRing(v: unknown): Record<string, number> {
  if (v === undefined) return { ...runtimeRingDefaults };
  const o = object(v, 'config.ring');
  checkKnownKeys(o, ringParameterNames, 'config.ring');
  const out: Record<string, number> = { ...runtimeRingDefaults };
  for (const key of Object.keys(o)) out[key] = int(o, key, 'config.ring', 0, 3_600_000);
  // The ring core's own checks (as a ring server applies them, with its heartbeat default), here so
  // that a value it refuses (checkpointInterval 0) is a config error before any node starts, not a
  // ring server that fails at start-up.
  let p: ProtocolParameters;
  try {
    p = resolveParameters({ heartbeatIntervalMs: 1000, ...out });
  } catch (error) {
    throw new ConfigError(`config.ring: ${(error as Error).message} (values in force: ${JSON.stringify(out)})`);
  }
  const viewChangeMs = p.requestTimeoutMs + p.viewChangeTimeoutMs + p.heartbeatIntervalMs + p.timestampAheadMaxMs;
  if (viewChangeMs >= reconfigurationPhaseMs) {
    throw new ConfigError(
      `config.ring: requestTimeoutMs + viewChangeTimeoutMs + heartbeatIntervalMs + timestampAheadMaxMs is ${viewChangeMs} ms; ` +
        `it must stay under a reconfiguration phase (${reconfigurationPhaseMs} ms), so a primary that holds members' records back is replaced before the phase closes`,
    );
  }
  return out;
}

function field(obj: Record<string, unknown>, key: string, where: string): unknown {
  if (!(key in obj) || obj[key] === undefined) throw new ConfigError(`${where}: missing required key '${key}'`);
  return obj[key];
}

function int(obj: Record<string, unknown>, key: string, where: string, min: number, max: number): number {
  const v = field(obj, key, where);
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${where}.${key}: expected an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function str(obj: Record<string, unknown>, key: string, where: string): string {
  const v = field(obj, key, where);
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${where}.${key}: expected a non-empty string`);
  return v;
}

// Labels of letters, digits, '-' and '_' (container names such as ring_1), an optional final dot.
const hostNameRe = /^(?=.{1,254}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i;

/**
 * A host name or IPv4 address, or an IPv6 address in brackets: what may stand between `ws://` and
 * `:port`. Anything else made a URL that WebSocket refuses (SyntaxError) when a peer dials it, long
 * after the config was accepted (an unbracketed `::1`, `localhost:1`, `has space`).
 */
function host(obj: Record<string, unknown>, key: string, where: string): string {
  const v = str(obj, key, where);
  const ok = v.startsWith('[') && v.endsWith(']') ? isIPv6(v.slice(1, -1)) : hostNameRe.test(v);
  if (!ok || !URL.canParse(`ws://${v}:1`)) {
    throw new ConfigError(`${where}.${key}: '${v}' is not a host name, an IPv4 address or an IPv6 address in brackets (such as [::1])`);
  }
  return v;
}

function object(v: unknown, where: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${where}: expected an object`);
  return v as Record<string, unknown>;
}

function checkKnownKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw new ConfigError(`${where}: unknown key '${key}' (known: ${known.join(', ')})`);
  }
}

function parseNode(v: unknown, index: number): NodeConfig {
  const where = `nodes[${index}]`;
  const o = object(v, where);
  checkKnownKeys(o, ['name', 'role', 'host', 'port', 'listenHost', 'adminPort'], where);
  const name = str(o, 'name', where);
  if (!nameRe.test(name)) throw new ConfigError(`${where}.name: '${name}' must match ${nameRe} (lower-case, starts with a letter)`);
  const role = str(o, 'role', where);
  if (!(roles as readonly string[]).includes(role)) {
    throw new ConfigError(`${where} (${name}).role: unknown role '${role}' (expected one of ${roles.join(', ')})`);
  }
  const dialHost = host(o, 'host', `${where} (${name})`);
  const listenHost = o.listenHost === undefined ? dialHost : host(o, 'listenHost', `${where} (${name})`);
  return { name, role: role as Role, host: dialHost, listenHost, port: int(o, 'port', where, 1, 65535), adminPort: int(o, 'adminPort', where, 1, 65535) };
}

/** Validates a parsed JSON value; `file` and `baseDir` locate it and its relative paths. */
export function parseClusterConfig(value: unknown, file: string, baseDir: string): ClusterConfig {
  const o = object(value, 'config');
  checkKnownKeys(o, ['$comment', 'name', 'dataDir', 'f', 'erasure', 'tickMs', 'ring', 'nodes', 'clientsMax'], 'config');
  const name = str(o, 'name', 'config');
  const dataDirRaw = str(o, 'dataDir', 'config');
  const f = int(o, 'f', 'config', 1, 20);
  const erasureObj = object(field(o, 'erasure', 'config'), 'config.erasure');
  checkKnownKeys(erasureObj, ['k', 'm'], 'config.erasure');
  const erasure = { k: int(erasureObj, 'k', 'config.erasure', 1, 128), m: int(erasureObj, 'm', 'config.erasure', 0, 128) };
  const tickMs = o.tickMs === undefined ? 10 : int(o, 'tickMs', 'config', 1, 10_000);
  const nodesRaw = field(o, 'nodes', 'config');
  if (!Array.isArray(nodesRaw) || nodesRaw.length === 0) throw new ConfigError('config.nodes: expected a non-empty list');
  const nodes = nodesRaw.map(parseNode);
  checkNodes(nodes, f, erasure);
  const dataDir = isAbsolute(dataDirRaw) ? dataDirRaw : resolve(baseDir, dataDirRaw);
  const clientsMax = o.clientsMax === undefined ? undefined : int(o, 'clientsMax', 'config', 1, 65_536);
  return { name, dataDir, f, erasure, tickMs, ring: parseRing(o.ring), nodes, clientsMax, file };
}

function checkNodes(nodes: readonly NodeConfig[], f: number, erasure: { k: number; m: number }): void {
  const names = new Set<string>();
  const endpoints = new Map<string, string>();
  for (const node of nodes) {
    if (names.has(node.name)) throw new ConfigError(`nodes: duplicate name '${node.name}'`);
    names.add(node.name);
    for (const [kind, port] of [['port', node.port], ['adminPort', node.adminPort]] as const) {
      // Nodes sharing a host share its port space (admin ports bind that host's loopback).
      const key = `${node.host}:${port}`;
      const other = endpoints.get(key);
      if (other) throw new ConfigError(`nodes: duplicate port ${port} on host ${node.host}: ${other} and ${node.name}.${kind}`);
      endpoints.set(key, `${node.name}.${kind}`);
    }
  }
  const ringCount = nodes.filter((n) => n.role === 'ring').length;
  if (ringCount !== 3 * f + 1) {
    throw new ConfigError(`ring: ${ringCount} ring servers, but a ring tolerating f = ${f} needs n = 3f+1 = ${3 * f + 1}`);
  }
  const archiveCount = nodes.filter((n) => n.role === 'archive').length;
  if (erasure.k + erasure.m > archiveCount) {
    throw new ConfigError(
      `erasure: k + m = ${erasure.k + erasure.m} fragments per block, but only ${archiveCount} archive servers (each fragment needs its own server)`,
    );
  }
}

export function loadClusterConfig(file: string): ClusterConfig {
  const path = resolve(file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`config ${path} is not valid JSON: ${(error as Error).message}`);
  }
  // Relative data directories are relative to the repository (the directory above cluster-configs/).
  const baseDir = dirname(path).endsWith('cluster-configs') ? dirname(dirname(path)) : dirname(path);
  return parseClusterConfig(value, path, baseDir);
}

export function nodeOf(config: ClusterConfig, name: string): NodeConfig {
  const node = config.nodes.find((n) => n.name === name);
  if (!node) throw new ConfigError(`no node named '${name}' in ${config.file} (nodes: ${config.nodes.map((n) => n.name).join(', ')})`);
  return node;
}

/** Where everything of a cluster lives under its data directory. */
export function clusterPaths(config: ClusterConfig) {
  const d = config.dataDir;
  return {
    adminKey: resolve(d, 'admin.key.json'),
    descriptor: resolve(d, 'ring-descriptor.json'),
    nodeDir: (name: string) => resolve(d, 'nodes', name),
    identity: (name: string) => resolve(d, 'nodes', name, 'identity.json'),
    share: (name: string) => resolve(d, 'nodes', name, 'ring-share.json'),
    /** A later ring descriptor this node learned from its peers (runtime/descriptor-gossip.ts). */
    learnedDescriptor: (name: string) => resolve(d, 'nodes', name, 'learned-descriptor.json'),
    db: (name: string) => resolve(d, 'nodes', name, 'db'),
    log: (name: string) => resolve(d, 'logs', `${name}.log`),
    stdio: (name: string) => resolve(d, 'logs', `${name}.stdio.log`),
    pid: (name: string) => resolve(d, 'run', `${name}.pid`),
    runDir: resolve(d, 'run'),
  };
}
