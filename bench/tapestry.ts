/**
 * `npm run bench -- tapestry [--sizes 256,1024,4096] [--seed S] [--churn-nodes M]` (another --sizes list
 * writes bench/results/tapestry-<sizes>.json instead of tapestry.json): hops and RDP
 * tables per overlay size (built by real joins in the event-driven simulator), the churn experiment,
 * and routing messages handled per second by one node core (decode + onMessage) — a stand-in for
 * the real-runtime figure, which adds the ws transport and authentication on top. Baseline measured
 * in the same run: decode alone and onMessage alone.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineDescription } from './_machine.ts';
import { toHex } from '../core/bytes.ts';
import { Prng } from '../sim/prng.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../tapestry/codec.ts';
import { TapestryNode } from '../tapestry/node.ts';
import { defaultChurnOptions, runChurn } from '../tapestry/sim/churn.ts';
import { runScale } from '../tapestry/sim/scale.ts';
import type { ScaleReport } from '../tapestry/sim/scale.ts';
import { printChurn, printScale } from '../tapestry/sim-scenario.ts';

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
  print(`| N | log16 N | hops mean | hops p99 | route RDP median / p90 | locate RDP median / p90 (4 replicas) | locate RDP median (1 replica) | build s |`);
  print(`|---|---|---|---|---|---|---|---|`);
  for (const r of scales) {
    print(
      `| ${r.nodeCount} | ${r.log16N.toFixed(2)} | ${r.routing.hopsMean.toFixed(2)} | ${r.routing.hopsP99} | ${r.routing.rdpMedian.toFixed(2)} / ${r.routing.rdpP90.toFixed(2)} | ${r.locateReplicated.rdpMedian.toFixed(2)} / ${r.locateReplicated.rdpP90.toFixed(2)} | ${r.locateSingle.rdpMedian.toFixed(2)} | ${(r.build.wallMs / 1000).toFixed(1)} |`,
    );
  }
  const churn = churnNodes > 0 ? runChurn({ ...defaultChurnOptions, seed, nodeCount: churnNodes }) : null;
  if (churn) {
    print('');
    printChurn(churn, churnNodes, print);
  }
  print(`\nmachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);

  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  // A non-default size list (e.g. --sizes 16384) gets its own file instead of replacing the main one.
  const file = option(args, '--sizes') === undefined ? 'tapestry.json' : `tapestry-${sizes.join('-')}.json`;
  writeFileSync(join(out, file), JSON.stringify({ machine, seed, throughput, scales, churn }, null, 2));
  print(`wrote ${join(out, file)}`);
}
