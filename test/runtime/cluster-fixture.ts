/**
 * A throwaway copy of a shipped cluster config with free loopback ports and a temp data dir, so
 * process tests never collide with a developer's running cluster or with each other.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
    servers.push(s);
    ports.push((s.address() as { port: number }).port);
  }
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

export async function tempClusterConfig(shipped: string): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-cluster-'));
  const config = JSON.parse(readFileSync(shipped, 'utf8')) as { dataDir: string; nodes: { port: number; adminPort: number }[] };
  const ports = await freePorts(config.nodes.length * 2);
  config.nodes.forEach((n, i) => {
    n.port = ports[2 * i]!;
    n.adminPort = ports[2 * i + 1]!;
  });
  config.dataDir = join(dir, 'data');
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { file, dir };
}

/** Parsed JSON lines of a node's pino log. */
export function logLines(file: string): Record<string, unknown>[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}
