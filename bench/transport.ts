/**
 * `npm run bench -- transport`: what the authenticated transport costs per frame and per byte.
 *
 * Two Transports in this process over loopback (handshake done, every frame tagged:
 * runtime/frame-auth.ts) against a baseline measured in the same run: two bare ws sockets carrying
 * the same frames with no handshake and no tags. Frames go in windows (at most `windowFrames` and
 * 32 MiB unacknowledged), so neither side's queue limits are what is measured. The CPU column is
 * this process's user + system time per frame: both ends, since both are here.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import { silentLogger } from '../runtime/log.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { freeLoopbackPorts } from '../runtime/scratch-cluster.ts';
import { Transport, type PeerAddress } from '../runtime/transport.ts';
import { machineDescription } from './_machine.ts';

const windowFrames = 512;
const windowBytes = 32 * 2 ** 20;

interface Row { path: string; frameBytes: number; frames: number; framesPerSecond: number; megabytesPerSecond: number; cpuMicrosPerFrame: number }

interface Pipe {
  send(frame: Uint8Array): void;
  received(): number;
  close(): Promise<void>;
}

async function taggedPipe(): Promise<Pipe> {
  const [keyA, keyB] = [new Uint8Array(randomBytes(32)), new Uint8Array(randomBytes(32))];
  const publicKeys = { a: nodeCrypto.ed25519PublicKey(keyA), b: nodeCrypto.ed25519PublicKey(keyB) };
  const [port] = await freeLoopbackPorts(1);
  const b = new Transport({
    name: 'b', secretKey: keyB, crypto: nodeCrypto, members: new Map([['a', { publicKey: publicKeys.a }], ['b', { publicKey: publicKeys.b }]]),
    listen: { host: '127.0.0.1', port: port! }, frameBytesMax: 2 ** 24, log: silentLogger(),
  });
  let count = 0;
  b.onFrame(() => void (count += 1));
  await b.start();
  const directory = new Map<string, PeerAddress>([['a', { publicKey: publicKeys.a }], ['b', { publicKey: publicKeys.b, url: `ws://127.0.0.1:${port}` }]]);
  const a = new Transport({ name: 'a', secretKey: keyA, crypto: nodeCrypto, members: directory, frameBytesMax: 2 ** 24, log: silentLogger() });
  await a.start();
  await until(() => a.connectedPeers().includes('b'));
  return { send: (f) => void a.send('b', f), received: () => count, close: async () => (await a.stop(), await b.stop()) };
}

async function barePipe(): Promise<Pipe> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 2 ** 25 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  let count = 0;
  server.on('connection', (ws) => ws.on('message', () => void (count += 1)));
  const port = (server.address() as { port: number }).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, generateMask: (mask) => void mask.fill(0) });
  await new Promise<void>((resolve) => ws.once('open', () => resolve()));
  return {
    send: (f) => ws.send(f, { binary: true }),
    received: () => count,
    close: async () => {
      ws.terminate();
      for (const c of server.clients) c.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error('transport bench: timed out');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function measure(path: string, pipe: Pipe, frameBytes: number, frames: number): Promise<Row> {
  const frame = new Uint8Array(randomBytes(frameBytes));
  const inFlightMax = Math.max(1, Math.min(windowFrames, Math.floor(windowBytes / frameBytes)));
  const base = pipe.received();
  const cpu = process.cpuUsage();
  const startMs = performance.now();
  let sent = 0;
  while (sent < frames) {
    while (sent < frames && sent - (pipe.received() - base) < inFlightMax) {
      pipe.send(frame);
      sent += 1;
    }
    await until(() => sent - (pipe.received() - base) < inFlightMax || pipe.received() - base === frames);
  }
  await until(() => pipe.received() - base === frames);
  const seconds = (performance.now() - startMs) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    path, frameBytes, frames,
    framesPerSecond: frames / seconds,
    megabytesPerSecond: (frames * frameBytes) / seconds / 1e6,
    cpuMicrosPerFrame: (used.user + used.system) / frames,
  };
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const cases: [number, number][] = [[200, quick ? 5_000 : 40_000], [4096, quick ? 5_000 : 40_000], [2 ** 20, quick ? 100 : 800]];
  const rows: Row[] = [];
  const tagged = await taggedPipe();
  const bare = await barePipe();
  try {
    for (const [frameBytes, frames] of cases) {
      // Warm both paths, then alternate so drift in the machine's load hits both.
      await measure('warm', tagged, frameBytes, Math.ceil(frames / 10));
      await measure('warm', bare, frameBytes, Math.ceil(frames / 10));
      for (let round = 0; round < 2; round++) {
        rows.push(await measure('bare ws (baseline)', bare, frameBytes, frames));
        rows.push(await measure('transport (tagged)', tagged, frameBytes, frames));
      }
    }
  } finally {
    await tagged.close();
    await bare.close();
  }
  console.log('\ntransport: one process, loopback; CPU = this process (both ends)\n');
  console.log('| path | frame bytes | frames | frames/s | MB/s | CPU µs/frame |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.path} | ${r.frameBytes} | ${r.frames} | ${r.framesPerSecond.toFixed(0)} | ${r.megabytesPerSecond.toFixed(1)} | ${r.cpuMicrosPerFrame.toFixed(1)} |`);
  }
  const machine = machineDescription();
  console.log('machine:', machine);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/transport.json', JSON.stringify({ machine, rows }, null, 2));
}
