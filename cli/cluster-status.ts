/** `cluster status`: asks every node's admin port for /status and prints a table or JSON. */
import type { ClusterConfig } from '../runtime/cluster-config.ts';
import { fetchJson, runningPid } from '../runtime/cluster-launcher.ts';
import { currentRingOf, isInitialized, loadDescriptor } from '../runtime/cluster-keys.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';

export interface StatusRow {
  readonly name: string;
  readonly role: string;
  /** In the ring now (the descriptor's list after a replacement; else role 'ring'). */
  readonly ringMember: boolean;
  readonly state: 'up' | 'down' | 'unresponsive';
  readonly pid: number | null;
  readonly status: Record<string, unknown> | null;
}

/** The ring's members now: the descriptor's list (after a replacement), else the config's ring servers. */
export function currentRingNames(config: ClusterConfig): ReadonlySet<string> {
  if (isInitialized(config)) return new Set(currentRingOf(loadDescriptor(config, nodeCrypto)).map((m) => m.id));
  return new Set(config.nodes.filter((n) => n.role === 'ring').map((n) => n.name));
}

/** `ring`: pass it when polling, so the descriptor is not read and verified on every poll. */
export async function collectStatus(config: ClusterConfig, ring = currentRingNames(config)): Promise<StatusRow[]> {
  return Promise.all(
    config.nodes.map(async (node): Promise<StatusRow> => {
      const pid = runningPid(config, node.name);
      const base = { name: node.name, role: node.role, ringMember: ring.has(node.name), pid };
      if (pid === null) return { ...base, state: 'down', status: null };
      const status = await fetchJson(`http://127.0.0.1:${node.adminPort}/status`, 1500);
      return { ...base, state: status ? 'up' : 'unresponsive', status };
    }),
  );
}

/** The role as configured, and what a replacement made of it. */
function roleCell(r: StatusRow): string {
  if (r.role === 'ring' && !r.ringMember) return 'ring (replaced)';
  if (r.role !== 'ring' && r.ringMember) return `ring (was ${r.role})`;
  return r.role;
}

function cell(v: unknown): string {
  return v === undefined || v === null ? '-' : String(v);
}

export function printStatus(rows: readonly StatusRow[]): void {
  const header = ['node', 'role', 'state', 'pid', 'view', 'seq', 'checkpoint', 'peers', 'clients', 'fragments', 'uptime s'];
  const lines = rows.map((r) => {
    const s = r.status ?? {};
    return [
      r.name, roleCell(r), r.state, cell(r.pid), cell(s.view), cell(s.seq), cell(s.checkpoint),
      Array.isArray(s.peers) ? String(s.peers.length) : '-', cell(s.clients), cell(s.fragmentsHeld),
      typeof s.uptimeMs === 'number' ? (s.uptimeMs / 1000).toFixed(0) : '-',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(fmt(header));
  for (const l of lines) console.log(fmt(l));
}

/** One line for the foreground launcher: how many are up, and the ring's view and sequence. */
export function statusLine(rows: readonly StatusRow[]): string {
  const up = rows.filter((r) => r.state === 'up').length;
  const ring = rows.filter((r) => r.ringMember && r.status);
  const views = [...new Set(ring.map((r) => cell(r.status!.view)))].join('/');
  const seqMax = Math.max(0, ...ring.map((r) => Number(r.status!.seq ?? 0)));
  const down = rows.filter((r) => r.state !== 'up').map((r) => r.name);
  return `${new Date().toISOString().slice(11, 19)}  ${up}/${rows.length} up  view ${views || '-'}  seq ${seqMax}${down.length ? `  down: ${down.join(', ')}` : ''}`;
}
