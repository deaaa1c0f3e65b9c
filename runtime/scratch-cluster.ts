/**
 * A throwaway copy of a shipped cluster config with free loopback ports and its own data
 * directory, for tests, benchmarks and drills that must not collide with a running cluster.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';

export async function freeLoopbackPorts(count: number): Promise<number[]> {
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

/** Writes `dir`/cluster.json (data under `dir`/data) and returns its path. */
export async function scratchClusterConfig(shipped: string, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const config = JSON.parse(readFileSync(shipped, 'utf8')) as { dataDir: string; nodes: { port: number; adminPort: number }[] };
  const ports = await freeLoopbackPorts(config.nodes.length * 2);
  config.nodes.forEach((n, i) => {
    n.port = ports[2 * i]!;
    n.adminPort = ports[2 * i + 1]!;
  });
  config.dataDir = join(dir, 'data');
  const file = join(dir, 'cluster.json');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}
