/**
 * `npm run bench -- tapestry [--sizes 256,1024,4096] [--seed S] [--churn-nodes M] [--runtime-only]
 * [--seconds S] [--window W]`:
 *  - routing messages handled per second by a real Tapestry node process (authenticated ws
 *    transport, MachineHost, codec, TapestryService) on loopback, with a bare ws echo process as
 *    the baseline in the same run, wall rate and CPU per frame of the process under test
 *    (--runtime-only stops here and writes tapestry-runtime.json);
 *  - one node core alone (decode + onMessage; baselines decode alone and onMessage alone);
 *  - hops and RDP tables per overlay size (built by real joins in the event-driven simulator) and
 *    the churn experiment. Another --sizes list writes tapestry-<sizes>.json instead of tapestry.json.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadavg } from 'node:os';
import { machineDescription } from './_machine.ts';
import { toHex } from '../core/bytes.ts';
import { Prng } from '../sim/prng.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../tapestry/codec.ts';
import { TapestryNode } from '../tapestry/node.ts';
import { defaultChurnOptions, runChurn } from '../tapestry/sim/churn.ts';
import { runScale } from '../tapestry/sim/scale.ts';
import type { ScaleReport } from '../tapestry/sim/scale.ts';
import { printChurn, printScale } from '../tapestry/sim-scenario.ts';
import { messageBytesMax } from '../tapestry/messages.ts';
import { tapestryIdOf } from '../tapestry/id.ts';
import { silentLogger } from '../runtime/log.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { channels } from '../runtime/roles.ts';
import { freeLoopbackPorts } from '../runtime/scratch-cluster.ts';
import type { BenchPeerSpec } from '../runtime/tapestry-bench-peer.ts';
import { Transport } from '../runtime/transport.ts';

interface ThroughputReport {
  readonly messages: number;
  readonly decodeOnlyPerS: number;
  readonly handleOnlyPerS: number;
  readonly decodeAndHandlePerS: number;
  readonly neighbours: number;
}

/** A node with a realistic table (offered 4,096 random peers) forwarding route messages. */
function measureThroughput(seed: number): ThroughputReport {
  const prng = new Prng(seed).fork('throughput');
  const node = new TapestryNode({ self: { id: toHex(prng.bytes(20)), name: 'self' }, random: prng, nowMs: 0, config: { beaconIntervalMs: 0 } });
  for (let i = 0; i < 4096; i++) node.table.consider({ id: toHex(prng.bytes(20)), name: `p${i}` }, 1 + prng.int(150));
  const origin = { id: toHex(prng.bytes(20)), name: 'origin' };
  const frames = Array.from({ length: 1024 }, (_, i) =>
    encodeTapestryMessage({ kind: 'route', requestId: i, origin, targetId: toHex(prng.bytes(20)), level: 0, hops: 1 }),
  );
  const decoded = frames.map(decodeTapestryMessage);
  const rate = (body: (i: number) => void): number => {
    const count = 200_000;
    for (let i = 0; i < 20_000; i++) body(i); // warm up the JIT
    const started = performance.now();
    for (let i = 0; i < count; i++) body(i);
    return count / ((performance.now() - started) / 1000);
  };
  let sink = 0;
  const decodeOnlyPerS = rate((i) => {
    sink += decodeTapestryMessage(frames[i & 1023]!).kind.length;
  });
  const handleOnlyPerS = rate((i) => {
    sink += node.onMessage('peer', decoded[i & 1023]!, i).length;
  });
  const decodeAndHandlePerS = rate((i) => {
    sink += node.onMessage('peer', decodeTapestryMessage(frames[i & 1023]!), i).length;
  });
  if (sink === 0) throw new Error('benchmark produced nothing');
  return { messages: 200_000, decodeOnlyPerS, handleOnlyPerS, decodeAndHandlePerS, neighbours: node.table.size };
}

interface RuntimeRate {
  readonly path: string;
  readonly framesPerS: number;
  /** CPU (user + system) the process under test spent per frame handled, microseconds. */
  readonly cpuUsPerFrame: number;
  /** Frames per CPU-second of the process under test: its capacity when it has a core to itself. */
  readonly framesPerCpuS: number;
  readonly frames: number;
  readonly seconds: number;
}

interface Peer {
  ask(): Promise<{ user: number; system: number; handled: number }>;
  stop(): void;
}

/** Starts runtime/tapestry-bench-peer.ts in its own process and waits for 'ready'. */
async function startPeer(spec: BenchPeerSpec): Promise<Peer> {
  const script = join(dirname(fileURLToPath(import.meta.url)), '..', 'runtime', 'tapestry-bench-peer.ts');
  // TAPESTRY_BENCH_PEER_ARGS passes node flags to the process under test (e.g. --cpu-prof).
  const extra = (process.env.TAPESTRY_BENCH_PEER_ARGS ?? '').split(' ').filter((a) => a !== '');
  const child = spawn(process.execPath, [...extra, '--import', 'tsx', script, JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = (): Promise<string> => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bench peer did not answer within 60 s')), 60_000);
    waiting.push((line) => {
      clearTimeout(timer);
      resolve(line);
    });
  });
  const ready = await next();
  if (ready !== 'ready') throw new Error(`bench peer said ${ready}`);
  return {
    ask: async () => {
      const answer = next();
      child.stdin!.write('cpu\n');
      return JSON.parse(await answer) as { user: number; system: number; handled: number };
    },
    stop: () => void child.stdin!.end('stop\n'),
  };
}

/**
 * Closed-loop load: `window` frames in flight; each frame that comes back sends the next. Counts
 * frames back over `seconds` after a warm-up, and the peer's CPU over the same interval.
 */
async function closedLoop(path: string, peer: Peer, start: (onBack: () => void) => void, seconds: number): Promise<RuntimeRate> {
  let back = 0;
  start(() => back++);
  await new Promise((r) => setTimeout(r, 1500)); // warm-up: JIT, socket buffers
  const cpu0 = await peer.ask();
  const back0 = back;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cpu1 = await peer.ask();
  const frames = back - back0;
  const elapsedS = (performance.now() - t0) / 1000;
  const cpuUs = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  return { path, framesPerS: frames / elapsedS, cpuUsPerFrame: cpuUs / frames, framesPerCpuS: frames / (cpuUs / 1e6), frames, seconds: elapsedS };
}

/** A thousand route frames to distinct random targets, each prefixed with the Tapestry channel byte. */
function routeFrames(origin: { id: string; name: string }, seed: number): Uint8Array[] {
  const prng = new Prng(seed).fork('runtime-frames');
  return Array.from({ length: 1024 }, (_, i) => {
    const body = encodeTapestryMessage({ kind: 'route', requestId: i + 1, origin, targetId: toHex(prng.bytes(20)), level: 0, hops: 1 });
    const frame = new Uint8Array(body.length + 1);
    frame[0] = channels.tapestry;
    frame.set(body, 1);
    return frame;
  });
}

/**
 * Routing messages handled per second by a real Tapestry node process (ws transport with ed25519
 * handshake, MachineHost, codec, TapestryService) on loopback, next to a bare ws echo process as
 * the baseline, both driven by this process with the same frames and window.
 */
async function measureRuntime(seed: number, seconds: number, window: number): Promise<RuntimeRate[]> {
  const [echoPort, hubPort] = await freeLoopbackPorts(2);
  const genKey = new Uint8Array(randomBytes(32));
  const hubKey = new Uint8Array(randomBytes(32));
  const gen = { name: 'gen', id: tapestryIdOf(nodeCrypto, nodeCrypto.ed25519PublicKey(genKey)) };
  const frames = routeFrames(gen, seed);
  const rates: RuntimeRate[] = [];

  const echo = await startPeer({ mode: 'ws-echo', port: echoPort! });
  const ws = new WebSocket(`ws://127.0.0.1:${echoPort}`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  let i = 0;
  rates.push(await closedLoop('ws echo (baseline)', echo, (onBack) => {
    ws.on('message', () => {
      onBack();
      ws.send(frames[i++ & 1023]!);
    });
    for (let k = 0; k < window; k++) ws.send(frames[i++ & 1023]!);
  }, seconds));
  ws.terminate();
  echo.stop();

  const hub = await startPeer({
    mode: 'tapestry', port: hubPort!, secretKeyHex: toHex(hubKey), selfId: tapestryIdOf(nodeCrypto, nodeCrypto.ed25519PublicKey(hubKey)),
    generator: { name: gen.name, publicKeyHex: toHex(nodeCrypto.ed25519PublicKey(genKey)), id: gen.id },
  });
  const members = new Map([
    ['hub', { publicKey: nodeCrypto.ed25519PublicKey(hubKey), url: `ws://127.0.0.1:${hubPort}` }],
    ['gen', { publicKey: nodeCrypto.ed25519PublicKey(genKey) }],
  ]);
  const transport = new Transport({ name: 'gen', secretKey: genKey, crypto: nodeCrypto, members, frameBytesMax: messageBytesMax + 1, log: silentLogger() });
  await transport.start();
  transport.connect('hub');
  for (let k = 0; k < 600 && !transport.connectedPeers().includes('hub'); k++) await new Promise((r) => setTimeout(r, 50));
  if (!transport.connectedPeers().includes('hub')) throw new Error('the tapestry bench node did not accept the generator');
  rates.push(await closedLoop('tapestry node: transport + host + codec + route', hub, (onBack) => {
    transport.onFrame((_from, frame) => {
      // Beacons are off in the node under test: every frame back is a forwarded route or a reply.
      if (frame[0] === channels.tapestry) onBack();
      transport.send('hub', frames[i++ & 1023]!);
    });
    for (let k = 0; k < window; k++) transport.send('hub', frames[i++ & 1023]!);
  }, seconds));
  await transport.stop();
  hub.stop();
  return rates;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function run(args: string[]): Promise<void> {
  const sizes = (option(args, '--sizes') ?? '256,1024,4096').split(',').map(Number);
  const seed = Number(option(args, '--seed') ?? 1);
  const churnNodes = Number(option(args, '--churn-nodes') ?? 1000);
  const print = (line: string): void => console.log(line);
  const machine = machineDescription();

  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  const window = Number(option(args, '--window') ?? 256);
  const runtime = await measureRuntime(seed, Number(option(args, '--seconds') ?? 5), window);
  print(`## routing messages handled per second by a real node process (loopback ws, ${window} in flight; load average ${load})`);
  print(`| path | frames/s (wall) | CPU µs per frame (process under test) | frames per CPU-second |`);
  print(`|---|---|---|---|`);
  for (const r of runtime) print(`| ${r.path} | ${r.framesPerS.toFixed(0)} | ${r.cpuUsPerFrame.toFixed(1)} | ${r.framesPerCpuS.toFixed(0)} |`);
  print(`goal: >= 20,000 routing messages/s per node`);
  if (args.includes('--runtime-only')) {
    writeResults('tapestry-runtime.json', { machine, loadAverage: load, window, runtime });
    print(`\nmachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);
    return;
  }

  const throughput = measureThroughput(seed);
  print(`## routing messages handled by one node core (${throughput.neighbours} neighbours; stand-in for the runtime figure)`);
  print(`| path | messages/s |`);
  print(`|---|---|`);
  print(`| decode only (baseline) | ${throughput.decodeOnlyPerS.toFixed(0)} |`);
  print(`| onMessage only (baseline) | ${throughput.handleOnlyPerS.toFixed(0)} |`);
  print(`| decode + onMessage | ${throughput.decodeAndHandlePerS.toFixed(0)} (goal >= 20,000) |`);

  const scales: ScaleReport[] = [];
  for (const nodeCount of sizes) {
    print(`\n## ${nodeCount} nodes`);
    const report = runScale({
      nodeCount,
      seed,
      routeSamples: 4000,
      locateSamples: 4000,
      rootIds: 200,
      rootStartsPerId: Math.min(nodeCount, 100),
      everywhereObjects: 3,
      wire: false,
      log: print,
    });
    printScale(report, print);
    scales.push(report);
  }
  print(`\n## summary`);
  print(`| N | log16 N | hops mean | hops p99 | route RDP median / p90 | locate RDP median / p90 (4 replicas) | locate RDP median (1 replica) | messages per publish / republish | pointers per publish | messages per join | build s |`);
  print(`|---|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of scales) {
    print(
      `| ${r.nodeCount} | ${r.log16N.toFixed(2)} | ${r.routing.hopsMean.toFixed(2)} | ${r.routing.hopsP99} | ${r.routing.rdpMedian.toFixed(2)} / ${r.routing.rdpP90.toFixed(2)} | ${r.locateReplicated.rdpMedian.toFixed(2)} / ${r.locateReplicated.rdpP90.toFixed(2)} | ${r.locateSingle.rdpMedian.toFixed(2)} | ${r.publishCost.messagesPerPublish.toFixed(1)} / ${r.publishCost.messagesPerRepublish.toFixed(1)} | ${r.publishCost.pointersPerPublish.toFixed(1)} | ${r.build.messagesPerJoin.toFixed(0)} | ${(r.build.wallMs / 1000).toFixed(1)} |`,
    );
  }
  const churn = churnNodes > 0 ? runChurn({ ...defaultChurnOptions, seed, nodeCount: churnNodes }) : null;
  if (churn) {
    print('');
    printChurn(churn, churnNodes, print);
  }
  print(`\nmachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);

  // A non-default size list (e.g. --sizes 16384) gets its own file instead of replacing the main one.
  const file = option(args, '--sizes') === undefined ? 'tapestry.json' : `tapestry-${sizes.join('-')}.json`;
  writeResults(file, { machine, loadAverage: load, seed, runtime, throughput, scales, churn });
}

function writeResults(file: string, results: Record<string, unknown>): void {
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, file), JSON.stringify(results, null, 2));
  console.log(`wrote ${join(out, file)}`);
}
