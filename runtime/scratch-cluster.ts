/**
 * A throwaway copy of a shipped cluster config with free loopback ports and its own data
 * directory, for tests, benchmarks and drills that must not collide with a running cluster.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';

/**
 * Ports for a scratch cluster. Asking the kernel for port 0 and releasing it races twice: the port
 * comes from the ephemeral range, where every outgoing connection of the machine also draws its
 * local port, and a parallel test file may be handed the same one before our nodes bind it. So
 * ports are drawn below the ephemeral range, reserved across processes with an exclusive file
 * (stale once its owner process has exited), and checked to be bindable right now.
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const dir = join(tmpdir(), 'oceanstore-port-reservations');
  mkdirSync(dir, { recursive: true });
  const [low, high] = portRange();
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < 50 * count; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (ports.includes(port) || !reserve(dir, port)) continue;
    if (await bindable(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`could not reserve ${count} free loopback ports in ${low}-${high}`);
  return ports;
}

/** Below the kernel's ephemeral range (Linux default 32768-60999), never below 10000. */
function portRange(): [number, number] {
  try {
    const ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (ephemeralLow > 12_000) return [10_000, ephemeralLow];
  } catch {
    // not Linux: fall through
  }
  return [20_000, 32_000];
}

function reserve(dir: string, port: number): boolean {
  const file = join(dir, String(port));
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return true;
    } catch {
      const owner = Number(readFileSync(file, 'utf8').trim());
      if (owner === process.pid || alive(owner)) return false;
      rmSync(file, { force: true });
    }
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function bindable(port: number): Promise<boolean> {
  const server: Server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
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
