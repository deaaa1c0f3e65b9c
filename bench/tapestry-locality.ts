/**
 * `npm run bench -- tapestry-locality [--nodes 4096] [--counts 0,2,3,4,6,8] [--seed 1]`: which
 * locality technique moves the locate RDP (JSAC 2004 §3.3), on one overlay built by real joins.
 *  - Publishing to nearest neighbours: for each publishToNearestCount k (k = 0 is the baseline:
 *    path plus the next slot's backups), 500 objects x 4 replicas are published and 4,000 locates
 *    measured; messages and pointers per publish show what it costs.
 *  - Continuing a locate past its first pointer: with the pointers of the baseline, an offline
 *    walk compares stopping at the first pointer with the best pointer anywhere on the path to the
 *    root (an upper bound for any "go on while the replica is far" rule) and with rules that go on
 *    while the best replica found is farther than f x the next hop.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineDescription } from './_machine.ts';
import { Prng } from '../sim/prng.ts';
import { buildOverlay } from '../tapestry/sim/build.ts';
import { measureLocate, percentile, publishObjectsCosted } from '../tapestry/sim/experiments.ts';
import type { LocateReport, PublishCost, PublishedObject } from '../tapestry/sim/experiments.ts';
import { SphereLatency } from '../tapestry/sim/latency.ts';
import { TapestryNetwork } from '../tapestry/sim/network.ts';
import type { SimNode } from '../tapestry/sim/network.ts';

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}

interface SweepRow {
  readonly publishToNearestCount: number;
  readonly locate: LocateReport;
  readonly cost: PublishCost;
}

interface ContinuationRow {
  readonly rule: string;
  readonly rdpMedian: number;
  readonly rdpP90: number;
}

export async function run(args: string[]): Promise<void> {
  const nodeCount = Number(option(args, '--nodes', '4096'));
  const seed = Number(option(args, '--seed', '1'));
  const counts = option(args, '--counts', '0,2,3,4,6,8').split(',').map(Number);
  const print = (line: string): void => console.log(line);
  const load = loadavg().map((l) => l.toFixed(2)).join(' ');
  const net = new TapestryNetwork({ seed, latency: new SphereLatency(seed) });
  const prng = new Prng(seed).fork('locality');
  const build = buildOverlay(net, nodeCount, (m) => prng.pick(m));
  print(`## locality of locate at ${nodeCount} nodes (built by real joins in ${(build.wallMs / 1000).toFixed(1)} s; load average ${load})`);
  const sweep: SweepRow[] = [];
  let continuation: ContinuationRow[] = [];
  for (const k of counts) {
    net.setPublishToNearestCount(k);
    const { objects, cost } = publishObjectsCosted(net, prng, 500, 4);
    sweep.push({ publishToNearestCount: k, locate: measureLocate(net, prng, objects, 4000), cost });
    if (k === 0) continuation = continuationRules(net, prng, objects);
  }
  print(`| publishToNearestCount | locate RDP median / p90 (nearest of 4) | locate hops mean | nearest replica chosen | messages per publish / republish | pointers per publish |`);
  print(`|---|---|---|---|---|---|`);
  for (const r of sweep) {
    const base = r.publishToNearestCount === 0 ? ' (baseline)' : '';
    print(
      `| ${r.publishToNearestCount}${base} | ${r.locate.rdpMedian.toFixed(2)} / ${r.locate.rdpP90.toFixed(2)} | ${r.locate.hopsMean.toFixed(2)} | ${(100 * r.locate.nearestChosenShare).toFixed(0)}% | ${r.cost.messagesPerPublish.toFixed(1)} / ${r.cost.messagesPerRepublish.toFixed(1)} | ${r.cost.pointersPerPublish.toFixed(1)} |`,
    );
  }
  if (continuation.length > 0) {
    print(`\n## continuing a locate past its first pointer (offline, baseline pointers, true latencies)`);
    print(`| rule | locate RDP median / p90 |`);
    print(`|---|---|`);
    for (const c of continuation) print(`| ${c.rule} | ${c.rdpMedian.toFixed(2)} / ${c.rdpP90.toFixed(2)} |`);
  }
  const machine = machineDescription();
  print(`\nmachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `tapestry-locality-${nodeCount}.json`), JSON.stringify({ machine, loadAverage: load, nodeCount, seed, sweep, continuation }, null, 2));
}

/**
 * Walks each sampled locate's path to the root through the real tables and, at every node, notes
 * the nearest replica its pointers name. Stopping at the first pointer is what locate does; the
 * other rows keep going while the best replica found is farther than f x the next hop's latency.
 */
function continuationRules(net: TapestryNetwork, prng: Prng, objects: PublishedObject[]): ContinuationRow[] {
  const live = net.live();
  const lat = (a: SimNode, b: SimNode): number => net.latencyMs(a.ref.name, b.ref.name);
  const factors = [0.5, 1, 2, 4];
  const rdp = new Map<string, number[]>([['stop at the first pointer (what locate does)', []], ['best pointer anywhere on the path (upper bound)', []]]);
  for (const f of factors) rdp.set(`go on while best replica > ${f} x next hop`, []);
  for (let i = 0; i < 4000; i++) {
    const object = prng.pick(objects);
    let client = prng.pick(live);
    while (object.servers.includes(client)) client = prng.pick(live);
    const direct = Math.min(...object.servers.map((s) => lat(client, s)));
    const path: { pathMs: number; replicaMs: number; nextMs: number }[] = [];
    let at: SimNode | null = client;
    let level = 0;
    let pathMs = 0;
    for (let hops = 0; at && hops < 64; hops++) {
      let replicaMs = Infinity;
      for (const p of at.node.pointers.holders(object.objectId)) replicaMs = Math.min(replicaMs, lat(at, net.get(p.server.name)));
      const next = at.node.table.nextHop(object.objectId, level);
      const nextNode: SimNode | null = next ? net.get(next.hop.name) : null;
      path.push({ pathMs, replicaMs, nextMs: nextNode ? lat(at, nextNode) : Infinity });
      if (nextNode) pathMs += lat(at, nextNode);
      at = nextNode;
      level = next?.level ?? level;
    }
    const firstIndex = path.findIndex((p) => p.replicaMs < Infinity);
    const first = path[firstIndex]!;
    rdp.get('stop at the first pointer (what locate does)')!.push((first.pathMs + first.replicaMs) / direct);
    rdp.get('best pointer anywhere on the path (upper bound)')!.push(Math.min(...path.map((p) => p.pathMs + p.replicaMs)) / direct);
    for (const f of factors) {
      let bestMs = Infinity;
      for (let k = firstIndex; k < path.length; k++) {
        const p = path[k]!;
        bestMs = Math.min(bestMs, p.pathMs + p.replicaMs);
        if (bestMs - p.pathMs <= f * p.nextMs) break;
      }
      rdp.get(`go on while best replica > ${f} x next hop`)!.push(bestMs / direct);
    }
  }
  return [...rdp].map(([rule, values]) => ({ rule, rdpMedian: percentile(values, 50), rdpP90: percentile(values, 90) }));
}
