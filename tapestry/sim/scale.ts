/** One scale run: build N nodes by real joins, then measure hops, RDP, root uniqueness and coverage. */
import { Prng } from '../../sim/prng.ts';
import type { TapestryConfig } from '../config.ts';
import { buildOverlay } from './build.ts';
import type { BuildReport } from './build.ts';
import { checkRoots, locateFromEveryNode, measureLocate, measureRouting, publishObjects, publishObjectsCosted } from './experiments.ts';
import type { LocateReport, PublishCost, RootReport, RoutingReport } from './experiments.ts';
import { SphereLatency } from './latency.ts';
import { TapestryNetwork } from './network.ts';

export interface ScaleOptions {
  readonly nodeCount: number;
  readonly seed: number;
  readonly routeSamples: number;
  readonly locateSamples: number;
  /** Ids checked from sampled start nodes, and how many starts each. */
  readonly rootIds: number;
  readonly rootStartsPerId: number;
  /** Objects located from every node. */
  readonly everywhereObjects: number;
  readonly wire: boolean;
  readonly config?: Partial<TapestryConfig>;
  readonly log?: (line: string) => void;
}

export interface ScaleReport {
  readonly nodeCount: number;
  readonly log16N: number;
  readonly build: BuildReport;
  readonly routing: RoutingReport;
  readonly roots: RootReport;
  /** Objects with 4 replicas; RDP against the nearest replica. */
  readonly locateReplicated: LocateReport;
  /** What publishing the 4-replica objects cost (messages, pointers). */
  readonly publishCost: PublishCost;
  /** Objects with one replica. */
  readonly locateSingle: LocateReport;
  readonly everywhere: LocateReport;
  /** The same overlay with publishing to nearest neighbours off (path and backups only). */
  readonly baseline: { readonly locateReplicated: LocateReport; readonly publishCost: PublishCost };
  readonly wallMs: number;
}

export function runScale(o: ScaleOptions): ScaleReport {
  const started = performance.now();
  const log = o.log ?? ((): void => {});
  const net = new TapestryNetwork({ seed: o.seed, latency: new SphereLatency(o.seed), config: o.config, wire: o.wire });
  const prng = new Prng(o.seed).fork('scale');
  let lastLogMs = performance.now();
  const build = buildOverlay(net, o.nodeCount, (m) => {
    if (performance.now() - lastLogMs > 30_000) {
      lastLogMs = performance.now();
      log(`  built ${m.length}/${o.nodeCount} nodes`);
    }
    return prng.pick(m);
  });
  log(`  built ${o.nodeCount} nodes by real joins in ${(build.wallMs / 1000).toFixed(1)} s (${build.messagesPerJoin.toFixed(0)} messages per join)`);
  const routing = measureRouting(net, prng, o.routeSamples);
  const roots = checkRoots(net, prng, o.rootIds, o.rootStartsPerId);
  const { objects: replicated, cost: publishCost } = publishObjectsCosted(net, prng, 500, 4);
  const locateReplicated = measureLocate(net, prng, replicated, o.locateSamples);
  const single = publishObjects(net, prng, 500, 1);
  const locateSingle = measureLocate(net, prng, single, o.locateSamples);
  const everywhere = locateFromEveryNode(net, replicated.slice(0, o.everywhereObjects));
  const nearestCount = net.nodes[0]!.node.config.publishToNearestCount;
  net.setPublishToNearestCount(0);
  const plain = publishObjectsCosted(net, prng, 500, 4);
  const baseline = { locateReplicated: measureLocate(net, prng, plain.objects, o.locateSamples), publishCost: plain.cost };
  net.setPublishToNearestCount(nearestCount);
  return {
    nodeCount: o.nodeCount,
    log16N: Math.log(o.nodeCount) / Math.log(16),
    build,
    routing,
    roots,
    locateReplicated,
    publishCost,
    locateSingle,
    everywhere,
    baseline,
    wallMs: performance.now() - started,
  };
}
