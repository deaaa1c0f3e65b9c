/**
 * The churn experiment of JSAC 2004 §5 (there: 20% of 830 nodes fail and 50% join): build N nodes
 * by real joins, publish objects, then at t0 crash a fraction of the nodes (no goodbye) while new
 * nodes join through random members. Beacons detect the failures, slots are refilled from backups
 * and row queries, pointers are pushed along changed paths. Probes every few seconds of virtual
 * time measure lookup success (route to the true root of a random id; locate of an object with a
 * live server); repair time is when probes reach >= 99% and stay there.
 */
import { Prng } from '../../sim/prng.ts';
import type { TapestryConfig } from '../config.ts';
import { buildOverlay } from './build.ts';
import { publishObjects, randomId } from './experiments.ts';
import type { PublishedObject } from './experiments.ts';
import { SphereLatency } from './latency.ts';
import { TapestryNetwork } from './network.ts';
import type { RequestRecord, SimNode } from './network.ts';

export interface ChurnOptions {
  readonly seed: number;
  readonly nodeCount: number;
  readonly failFraction: number;
  readonly joinFraction: number;
  readonly objectCount: number;
  readonly probeSamples: number;
  readonly probeIntervalMs: number;
  /** How long after t0 to keep probing. */
  readonly horizonMs: number;
  /** New nodes join spread over this window after t0. */
  readonly joinWindowMs: number;
  readonly config?: Partial<TapestryConfig>;
}

export const defaultChurnOptions: ChurnOptions = {
  seed: 1,
  nodeCount: 1000,
  failFraction: 0.2,
  joinFraction: 0.5,
  objectCount: 200,
  probeSamples: 400,
  probeIntervalMs: 5_000,
  horizonMs: 150_000,
  joinWindowMs: 20_000,
};

export interface ChurnProbe {
  /** Seconds after t0 the probe was issued. */
  readonly atS: number;
  readonly routeSuccess: number;
  readonly locateSuccess: number;
  /** Live members whose table still names a crashed node. */
  readonly staleTables: number;
}

export interface ChurnReport {
  readonly before: ChurnProbe;
  readonly probes: ChurnProbe[];
  readonly failed: number;
  readonly joined: number;
  /** Seconds after t0 from which every probe had both success rates >= 0.99 (null: never). */
  readonly repairS: number | null;
  /** Seconds after t0 from which no live table named a crashed node (null: never). */
  readonly tablesCleanS: number | null;
  readonly finalRouteSuccess: number;
  readonly finalLocateSuccess: number;
  readonly messages: number;
  readonly wallMs: number;
}

export function runChurn(options: ChurnOptions): ChurnReport {
  const started = performance.now();
  const prng = new Prng(options.seed).fork('churn');
  const net = new TapestryNetwork({ seed: options.seed, latency: new SphereLatency(options.seed), config: options.config });
  buildOverlay(net, options.nodeCount, (m) => prng.pick(m));
  net.enableTicks(1_000);
  const objects = publishObjects(net, prng, options.objectCount, 2);
  net.runUntil(net.nowMs + 30_000);
  const before = probe(net, prng, objects, options, 0);

  const t0 = net.nowMs;
  const victims = prng.shuffle(net.live()).slice(0, Math.round(options.failFraction * options.nodeCount));
  for (const v of victims) net.crash(v.ref.name);
  const joinCount = Math.round(options.joinFraction * options.nodeCount);
  for (let i = 0; i < joinCount; i++) {
    net.at(t0 + Math.floor(((i + 1) * options.joinWindowMs) / joinCount), () => {
      const gateway = prng.pick(members(net));
      net.join(net.addNode().ref.name, gateway.ref.name);
    });
  }
  const probes: ChurnProbe[] = [];
  for (let at = t0; at < t0 + options.horizonMs; at += options.probeIntervalMs) {
    net.runUntil(at);
    // Rounded: t0 is a fractional virtual time, so the offsets carry float noise.
    probes.push(probe(net, prng, objects, options, Math.round((at - t0) / 100) / 10));
  }
  const ok = (p: ChurnProbe): boolean => p.routeSuccess >= 0.99 && p.locateSuccess >= 0.99;
  const last = probes[probes.length - 1]!;
  return {
    before,
    probes,
    failed: victims.length,
    joined: joinCount,
    repairS: firstFromWhichAll(probes, ok),
    tablesCleanS: firstFromWhichAll(probes, (p) => p.staleTables === 0),
    finalRouteSuccess: last.routeSuccess,
    finalLocateSuccess: last.locateSuccess,
    messages: net.messagesDelivered,
    wallMs: performance.now() - started,
  };
}

function firstFromWhichAll(probes: readonly ChurnProbe[], ok: (p: ChurnProbe) => boolean): number | null {
  let from: number | null = null;
  for (const p of probes) {
    if (!ok(p)) from = null;
    else if (from === null) from = p.atS;
  }
  return from;
}

function members(net: TapestryNetwork): SimNode[] {
  return net.live().filter((n) => n.node.isMember);
}

/** Issues route and locate probes, lets them run for one probe interval, and scores them. */
function probe(net: TapestryNetwork, prng: Prng, objects: readonly PublishedObject[], options: ChurnOptions, atS: number): ChurnProbe {
  const origins = members(net);
  const live = net.live();
  const routes: { record: RequestRecord; root: string }[] = [];
  for (let i = 0; i < options.probeSamples; i++) {
    const target = randomId(prng);
    routes.push({ record: net.route(prng.pick(origins).ref.name, target), root: net.trueRoot(target, live).ref.name });
  }
  const locatable = objects.filter((o) => o.servers.some((s) => s.alive));
  const locates: { record: RequestRecord; object: PublishedObject }[] = [];
  for (let i = 0; i < options.probeSamples && locatable.length > 0; i++) {
    const object = prng.pick(locatable);
    locates.push({ record: net.locate(prng.pick(origins).ref.name, object.objectId), object });
  }
  const staleTables = live.filter((n) => [...n.node.table.neighbours()].some((x) => !net.get(x.name).alive)).length;
  net.runUntil(net.nowMs + options.probeIntervalMs);
  const routeOk = routes.filter(({ record, root }) => record.result?.kind === 'routeResult' && record.result.root?.name === root).length;
  const locateOk = locates.filter(({ record, object }) => {
    const r = record.result;
    return r?.kind === 'locateResult' && r.server !== null && object.servers.some((s) => s.alive && s.ref.id === r.server!.id);
  }).length;
  return {
    atS,
    routeSuccess: routeOk / Math.max(1, routes.length),
    locateSuccess: locateOk / Math.max(1, locates.length),
    staleTables,
  };
}
