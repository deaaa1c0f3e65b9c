/**
 * A scratch copy of cluster-configs/local.json (4 ring servers, 8 archive servers, 2 secondary
 * replicas) started as real node processes on free loopback ports, and a scraper for the tree
 * read counters every node exposes on its admin /metrics. Shared by test/replica/processes.test.ts
 * and bench/replica.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { up } from '../../cli/cluster.ts';
import type { ReadReply, ReadRequest, Session } from '../../client/session.ts';
import { verifyRead } from '../../client/verify.ts';
import type { ReplicaTrust } from '../../replica/types.ts';
import { loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { stopAll } from '../../runtime/cluster-launcher.ts';
import { initCluster } from '../../runtime/cluster-keys.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

export interface ProcessCluster {
  readonly config: ClusterConfig;
  readonly dir: string;
  /** Kills every node this cluster started and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts the local topology. Free ports are picked, released, then bound by the nodes, so a
 * parallel test can take one in between: a failed start is retried once with fresh ports and data.
 */
export async function startProcessCluster(attemptsMax = 2, readyTimeoutMs = 90_000): Promise<ProcessCluster> {
  let lastError: unknown = null;
  for (let attempt = 0; attempt < attemptsMax; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'oceanstore-replica-'));
    const config = loadClusterConfig(await scratchClusterConfig('cluster-configs/local.json', dir));
    const stop = async (): Promise<void> => {
      await stopAll(config, { kill: true });
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      initCluster(config, nodeCrypto);
      await up(config, readyTimeoutMs);
      return { config, dir, stop };
    } catch (error) {
      lastError = error;
      await stop();
    }
  }
  throw lastError;
}

/**
 * Per node: read replies sent on the replica channel by status (oceanstore_tree_reads_total:
 * 'ok', 'unknown-object', ...) and read requests received by kind
 * (oceanstore_tree_read_requests_total: 'request:probe', 'request:data').
 */
export type TreeReads = Map<string, Record<string, number>>;

export async function scrapeTreeReads(config: ClusterConfig, timeoutMs = 5_000): Promise<TreeReads> {
  const out: TreeReads = new Map();
  await Promise.all(
    config.nodes.map(async (node) => {
      const response = await fetch(`http://127.0.0.1:${node.adminPort}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) throw new Error(`${node.name} /metrics: HTTP ${response.status}`);
      const byStatus: Record<string, number> = {};
      for (const line of (await response.text()).split('\n')) {
        const reply = /^oceanstore_tree_reads_total\{([^}]*)\} (\d+)/.exec(line);
        const status = reply ? /status="([^"]+)"/.exec(reply[1]!)?.[1] : undefined;
        if (reply && status) byStatus[status] = Number(reply[2]);
        const request = /^oceanstore_tree_read_requests_total\{([^}]*)\} (\d+)/.exec(line);
        const kind = request ? /kind="([^"]+)"/.exec(request[1]!)?.[1] : undefined;
        if (request && kind) byStatus[`request:${kind}`] = Number(request[2]);
      }
      out.set(node.name, byStatus);
    }),
  );
  return out;
}

/** Replies of `status` ('*': replies of any status), or requests ('request:data'), summed over the nodes of `role`. */
export function readsOf(config: ClusterConfig, reads: TreeReads, role: string, status = 'ok'): number {
  let sum = 0;
  for (const node of config.nodes.filter((n) => n.role === role)) {
    const byStatus = reads.get(node.name) ?? {};
    if (status !== '*') sum += byStatus[status] ?? 0;
    else for (const [key, count] of Object.entries(byStatus)) if (!key.startsWith('request:')) sum += count;
  }
  return sum;
}

/** `after` minus `before`, per node and counter (for logs). */
export function readsDelta(before: TreeReads, after: TreeReads): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const [node, counts] of after) {
    const delta = Object.entries(counts)
      .map(([k, v]) => [k, v - (before.get(node)?.[k] ?? 0)] as const)
      .filter(([, v]) => v > 0);
    if (delta.length > 0) out[node] = Object.fromEntries(delta);
  }
  return out;
}

/**
 * What the issue asks of a reader: ask the secondaries first (in config order) and a ring server
 * only if none proves the read; every reply verified (certificate under the ring key, blocks
 * re-hashed up to the VGUID). One probe-free request per read: the reply of a latest read carries
 * the version's certificate, so it is its own "which version" answer. Returns the bytes and who served.
 */
export async function secondaryFirstRead(
  session: Session,
  trust: ReplicaTrust,
  request: Omit<ReadRequest, 'type' | 'requestId'>,
  knownVersion = -1,
): Promise<{ bytes: Uint8Array; version: number; member: string }> {
  const view = session.view;
  const reasons: string[] = [];
  for (const member of [...view.secondaries, ...view.ring.map((m) => m.id)]) {
    let reply: ReadReply;
    try {
      reply = await session.read(member, request, { timeoutMs: 3_000 });
    } catch (error) {
      reasons.push(`${member}: ${(error as Error).message}`);
      continue;
    }
    const checked = verifyRead(nodeCrypto, trust, { type: 'read', ...request, requestId: reply.requestId }, reply, Date.now());
    if (checked.ok && checked.value.version >= knownVersion) return { bytes: checked.value.bytes, version: checked.value.version, member };
    reasons.push(`${member}: ${checked.ok ? `behind (${checked.value.version})` : checked.reason}`);
  }
  throw new Error(`no member proved the read: ${reasons.join('; ')}`);
}
