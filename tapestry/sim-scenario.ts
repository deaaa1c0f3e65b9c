/**
 * `npm run sim -- tapestry [--nodes N] [--seed S] [--churn-nodes M] [--no-churn] [--wire]`:
 * builds an N-node overlay (default 4,096) by real joins on a sphere latency model, measures hops
 * and RDP, checks that every id has one root and that objects are found from every node, then runs
 * the churn experiment (20% of M nodes crash, 50% more join). Exits non-zero if a check fails.
 */
import { checkArgument } from '../core/errors.ts';
import { defaultChurnOptions, runChurn } from './sim/churn.ts';
import type { ChurnReport } from './sim/churn.ts';
import { runScale } from './sim/scale.ts';
import type { ScaleReport } from './sim/scale.ts';

function option(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  checkArgument(Number.isSafeInteger(value) && value > 0, name, 'a positive integer');
  return value;
}

const f2 = (x: number): string => x.toFixed(2);

export function printScale(r: ScaleReport, print: (line: string) => void): void {
  print(`| metric | value | goal |`);
  print(`|---|---|---|`);
  print(`| nodes | ${r.nodeCount} (log16 N = ${f2(r.log16N)}) | |`);
  print(`| route hops mean / p99 / max | ${f2(r.routing.hopsMean)} / ${r.routing.hopsP99} / ${r.routing.hopsMax} | mean <= ${f2(r.log16N + 1)} |`);
  print(`| route RDP median / p90 | ${f2(r.routing.rdpMedian)} / ${f2(r.routing.rdpP90)} | |`);
  print(`| routes reaching the destination | ${r.routing.reached} / ${r.routing.samples} | all |`);
  print(`| locate RDP median / p90 (4 replicas, vs nearest) | ${f2(r.locateReplicated.rdpMedian)} / ${f2(r.locateReplicated.rdpP90)} | median <= 2 |`);
  const b = r.baseline;
  print(`| baseline on the same overlay, publishToNearestCount 0: locate RDP median / p90 (4 replicas) | ${f2(b.locateReplicated.rdpMedian)} / ${f2(b.locateReplicated.rdpP90)} | |`);
  print(`| locate RDP median / p90 (1 replica) | ${f2(r.locateSingle.rdpMedian)} / ${f2(r.locateSingle.rdpP90)} | median <= 2 |`);
  print(`| locate hops mean (4 replicas) / nearest replica chosen | ${f2(r.locateReplicated.hopsMean)} / ${(100 * r.locateReplicated.nearestChosenShare).toFixed(0)}% | |`);
  const c = r.publishCost;
  print(`| per publish: messages first / republish, pointers stored | ${c.messagesPerPublish.toFixed(1)} / ${c.messagesPerRepublish.toFixed(1)}, ${c.pointersPerPublish.toFixed(1)} | |`);
  print(`| baseline per publish: messages first / republish, pointers stored | ${b.publishCost.messagesPerPublish.toFixed(1)} / ${b.publishCost.messagesPerRepublish.toFixed(1)}, ${b.publishCost.pointersPerPublish.toFixed(1)} | |`);
  print(`| same root from sampled starts | ${r.roots.checks - r.roots.wrongRoot} / ${r.roots.checks} | all |`);
  print(`| object found from every node | ${r.everywhere.found} / ${r.everywhere.samples} | all |`);
  print(`| build: messages per join / wall s | ${r.build.messagesPerJoin.toFixed(0)} / ${(r.build.wallMs / 1000).toFixed(1)} | |`);
}

export function printChurn(r: ChurnReport, nodeCount: number, print: (line: string) => void): void {
  print(`churn: ${nodeCount} nodes, ${r.failed} crashed and ${r.joined} joined at t0 (joins over 20 s)`);
  print(`| t after failure (s) | route success | locate success | tables naming a dead node |`);
  print(`|---|---|---|---|`);
  print(`| before | ${(100 * r.before.routeSuccess).toFixed(1)}% | ${(100 * r.before.locateSuccess).toFixed(1)}% | ${r.before.staleTables} |`);
  for (const p of r.probes) {
    print(`| ${p.atS} | ${(100 * p.routeSuccess).toFixed(1)}% | ${(100 * p.locateSuccess).toFixed(1)}% | ${p.staleTables} |`);
  }
  print(`repair time (from when every probe has >= 99% success): ${r.repairS === null ? 'never' : `${r.repairS} s`}; tables clean from ${r.tablesCleanS === null ? 'never' : `${r.tablesCleanS} s`}`);
}

export async function run(args: string[]): Promise<void> {
  const nodeCount = option(args, '--nodes', 4096);
  const seed = option(args, '--seed', 1);
  const churnNodes = option(args, '--churn-nodes', 1000);
  const print = (line: string): void => console.log(line);
  print(`tapestry simulation: ${nodeCount} nodes, seed ${seed}, sphere latency 1..151 ms one way`);
  const scale = runScale({
    nodeCount,
    seed,
    routeSamples: 4000,
    locateSamples: 4000,
    rootIds: 200,
    rootStartsPerId: Math.min(nodeCount, 100),
    everywhereObjects: 5,
    wire: args.includes('--wire'),
    log: print,
  });
  printScale(scale, print);
  let ok = scale.roots.wrongRoot === 0 && scale.everywhere.found === scale.everywhere.samples && scale.routing.reached === scale.routing.samples;
  if (!args.includes('--no-churn')) {
    const churn = runChurn({ ...defaultChurnOptions, seed, nodeCount: churnNodes });
    printChurn(churn, churnNodes, print);
    ok &&= churn.finalRouteSuccess >= 0.99 && churn.finalLocateSuccess >= 0.99;
  }
  print(ok ? 'all checks passed' : 'CHECK FAILED');
  if (!ok) process.exitCode = 1;
}
