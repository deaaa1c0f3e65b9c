/**
 * The process under test for `npm run bench -- tapestry --runtime` (bench/tapestry.ts): run as
 *   node --import tsx runtime/tapestry-bench-peer.ts '<json spec>'
 * Modes:
 *  - 'ws-echo' (baseline): a bare ws server that sends every binary frame straight back;
 *  - 'tapestry': a real Tapestry node exactly as a server hosts it — authenticated Transport,
 *    MachineHost (bounded decode, effects released after the step), TapestryService wrapping a
 *    TapestryNode — whose routing table holds the load generator, so every route message it
 *    receives is forwarded (or, at the root, answered) back to the generator: one in, one out.
 * Prints 'ready' once listening. On stdin: 'cpu' answers one JSON line with process.cpuUsage()
 * and the frames handled so far; 'stop' exits.
 */
import { createInterface } from 'node:readline';
import { WebSocketServer, type RawData } from 'ws';
import { fromHex } from '../core/bytes.ts';
import { MemoryKvStore } from '../core/store.ts';
import { Prng } from '../sim/prng.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../tapestry/codec.ts';
import { messageBytesMax, type TapestryMessage, type TapestryOutput } from '../tapestry/messages.ts';
import { TapestryNode } from '../tapestry/node.ts';
import { TapestryService } from '../tapestry/service.ts';
import { silentLogger } from './log.ts';
import { MachineHost, type DurableKvStore } from './machine-host.ts';
import { nodeCrypto } from './node-crypto.ts';
import { channels } from './roles.ts';
import { Transport } from './transport.ts';

export interface BenchPeerSpec {
  readonly mode: 'ws-echo' | 'tapestry';
  readonly port: number;
  /** tapestry mode: this node's secret key and id, the generator's name, public key and id. */
  readonly secretKeyHex?: string;
  readonly selfId?: string;
  readonly generator?: { name: string; publicKeyHex: string; id: string };
}

/** Tapestry keeps no durable state: nothing is ever staged, so nothing waits for a flush. */
class VolatileStore extends MemoryKvStore implements DurableKvStore {
  readonly dirty = false;
  async flush(): Promise<void> {}
}

async function startEcho(port: number): Promise<() => number> {
  let frames = 0;
  const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
  server.on('connection', (ws) => {
    ws.on('message', (data: RawData, isBinary: boolean) => {
      frames++;
      ws.send(data as Buffer, { binary: isBinary });
    });
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  return () => frames;
}

async function startTapestry(spec: BenchPeerSpec): Promise<() => number> {
  const generator = spec.generator!;
  const secretKey = fromHex(spec.secretKeyHex!);
  const members = new Map([
    ['hub', { publicKey: nodeCrypto.ed25519PublicKey(secretKey), url: `ws://127.0.0.1:${spec.port}` }],
    [generator.name, { publicKey: fromHex(generator.publicKeyHex) }],
  ]);
  const log = silentLogger();
  const transport = new Transport({
    name: 'hub', secretKey, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port: spec.port }, frameBytesMax: messageBytesMax + 1, log,
  });
  // Beacons and maintenance off: the measurement is the routing path, not the generator's pongs.
  const node = new TapestryNode({ self: { id: spec.selfId!, name: 'hub' }, random: new Prng(1), nowMs: Date.now(), config: { beaconIntervalMs: 0, maintenanceIntervalMs: 0 } });
  node.table.consider({ id: generator.id, name: generator.name }, 0.1);
  const service = new TapestryService(node, { isMember: (name) => members.has(name) });
  const host = new MachineHost('hub', transport, new VolatileStore(), log);
  host.add<TapestryMessage, TapestryOutput>({
    channel: channels.tapestry, protocol: 'tapestry', machine: service,
    decode: decodeTapestryMessage, encode: encodeTapestryMessage, frameBytesMax: messageBytesMax, tickMs: 100,
  });
  await transport.start();
  host.start();
  return () => node.stats.messagesHandled;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as BenchPeerSpec;
  const handled = spec.mode === 'ws-echo' ? await startEcho(spec.port) : await startTapestry(spec);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line === 'cpu') process.stdout.write(`${JSON.stringify({ ...process.cpuUsage(), handled: handled() })}\n`);
    if (line === 'stop') process.exit(0);
  });
  lines.on('close', () => process.exit(0));
  process.stdout.write('ready\n');
}

void main();
