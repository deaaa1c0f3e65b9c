/**
 * The measurements issue 5 asks for, run on a built overlay: routing hops and relative delay
 * penalty (RDP), root uniqueness, object location RDP and coverage. Each returns plain numbers so
 * the scenario, the benchmark and the tests share them.
 */
import { assert } from '../../core/assert.ts';
import { toHex } from '../../core/bytes.ts';
import type { Prng } from '../../sim/prng.ts';
import type { TapestryId } from '../id.ts';
import type { RequestRecord, SimNode, TapestryNetwork } from './network.ts';

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

export interface RoutingReport {
  readonly samples: number;
  /** Requests that reached the destination node (the root of its own id). */
  readonly reached: number;
  readonly hopsMean: number;
  readonly hopsP99: number;
  readonly hopsMax: number;
  readonly rdpMedian: number;
  readonly rdpP90: number;
}

/** Routes from random nodes to random other nodes' ids with real messages; RDP = overlay / direct. */
export function measureRouting(net: TapestryNetwork, prng: Prng, samples: number): RoutingReport {
  const live = net.live();
  assert(live.length >= 2, 'routing needs two nodes');
  const pending: { record: RequestRecord; src: SimNode; dst: SimNode }[] = [];
  for (let i = 0; i < samples; i++) {
    const src = prng.pick(live);
    let dst = prng.pick(live);
    while (dst === src) dst = prng.pick(live);
    pending.push({ record: net.route(src.ref.name, dst.ref.id), src, dst });
  }
  settle(net);
  const hops: number[] = [];
  const rdp: number[] = [];
  let reached = 0;
  for (const { record, src, dst } of pending) {
    const r = record.result;
    if (r?.kind !== 'routeResult' || r.root?.id !== dst.ref.id) continue;
    reached++;
    hops.push(r.hops);
    rdp.push(record.pathMs / net.latencyMs(src.ref.name, dst.ref.name));
  }
  return {
    samples,
    reached,
    hopsMean: mean(hops),
    hopsP99: percentile(hops, 99),
    hopsMax: Math.max(...hops),
    rdpMedian: percentile(rdp, 50),
    rdpP90: percentile(rdp, 90),
  };
}

export interface RootReport {
  readonly checks: number;
  /** Walks that ended at a node other than the unique true root. */
  readonly wrongRoot: number;
}

/** Every start node (or `startsPerId` sampled ones) must reach the same, true root for each id. */
export function checkRoots(net: TapestryNetwork, prng: Prng, idCount: number, startsPerId: number | 'all'): RootReport {
  const live = net.live();
  let checks = 0;
  let wrongRoot = 0;
  for (let i = 0; i < idCount; i++) {
    const target = randomId(prng);
    const root = net.trueRoot(target, live);
    const starts = startsPerId === 'all' ? live : Array.from({ length: startsPerId }, () => prng.pick(live));
    for (const s of starts) {
      checks++;
      if (net.walk(s.ref.name, target)?.root !== root.ref.name) wrongRoot++;
    }
  }
  return { checks, wrongRoot };
}

export interface PublishedObject {
  readonly objectId: TapestryId;
  readonly servers: SimNode[];
}

/** Publishes `objectCount` objects, each on `replicas` distinct random servers. */
export function publishObjects(net: TapestryNetwork, prng: Prng, objectCount: number, replicas: number): PublishedObject[] {
  const live = net.live();
  const objects: PublishedObject[] = [];
  for (let i = 0; i < objectCount; i++) {
    const objectId = randomId(prng);
    const servers = new Set<SimNode>();
    while (servers.size < replicas) servers.add(prng.pick(live));
    for (const s of servers) net.publish(s.ref.name, objectId);
    objects.push({ objectId, servers: [...servers] });
  }
  settle(net);
  return objects;
}

export interface PublishCost {
  /** Messages delivered per (object, server) first publish, measurement pings of new holders included. */
  readonly messagesPerPublish: number;
  /** Messages per republish of the same (object, server) once every holder has measured it. */
  readonly messagesPerRepublish: number;
  /** Pointers (path, backup and nearest-neighbour copies) stored per (object, server). */
  readonly pointersPerPublish: number;
}

/** Publishes like publishObjects, counting the messages and pointers a publish and a republish cost. */
export function publishObjectsCosted(net: TapestryNetwork, prng: Prng, objectCount: number, replicas: number): { objects: PublishedObject[]; cost: PublishCost } {
  const pointersHeld = (): number => net.nodes.reduce((sum, n) => sum + n.node.pointers.size, 0);
  const [messagesBefore, pointersBefore] = [net.messagesDelivered, pointersHeld()];
  const objects = publishObjects(net, prng, objectCount, replicas);
  const publishes = objectCount * replicas;
  const messagesPerPublish = (net.messagesDelivered - messagesBefore) / publishes;
  const pointersPerPublish = (pointersHeld() - pointersBefore) / publishes;
  const republishBefore = net.messagesDelivered;
  for (const o of objects) for (const s of o.servers) net.publish(s.ref.name, o.objectId);
  settle(net);
  return { objects, cost: { messagesPerPublish, messagesPerRepublish: (net.messagesDelivered - republishBefore) / publishes, pointersPerPublish } };
}

export interface LocateReport {
  readonly samples: number;
  /** Answers naming one of the object's live servers. */
  readonly found: number;
  readonly hopsMean: number;
  /** (overlay path to the pointer + pointer to the chosen server) / direct latency to the nearest replica. */
  readonly rdpMedian: number;
  readonly rdpP90: number;
  /** How often the chosen replica was the nearest one. */
  readonly nearestChosenShare: number;
}

/** Locates objects from random non-holder clients with real messages. */
export function measureLocate(net: TapestryNetwork, prng: Prng, objects: readonly PublishedObject[], samples: number): LocateReport {
  const live = net.live();
  const pending: { record: RequestRecord; client: SimNode; object: PublishedObject }[] = [];
  for (let i = 0; i < samples; i++) {
    const object = prng.pick(objects);
    let client = prng.pick(live);
    while (object.servers.includes(client)) client = prng.pick(live);
    pending.push({ record: net.locate(client.ref.name, object.objectId), client, object });
  }
  settle(net);
  return summarizeLocates(net, pending);
}

/** Locates each object from every live node: the "found from every node". */
export function locateFromEveryNode(net: TapestryNetwork, objects: readonly PublishedObject[]): LocateReport {
  const pending: { record: RequestRecord; client: SimNode; object: PublishedObject }[] = [];
  for (const object of objects) {
    for (const client of net.live()) {
      if (!object.servers.includes(client)) pending.push({ record: net.locate(client.ref.name, object.objectId), client, object });
    }
  }
  settle(net);
  return summarizeLocates(net, pending);
}

function summarizeLocates(net: TapestryNetwork, pending: { record: RequestRecord; client: SimNode; object: PublishedObject }[]): LocateReport {
  const rdp: number[] = [];
  const hops: number[] = [];
  let found = 0;
  let nearest = 0;
  for (const { record, client, object } of pending) {
    const r = record.result;
    const liveServers = object.servers.filter((s) => s.alive && !s.node.hasLeft);
    if (r?.kind !== 'locateResult' || !r.server || !r.answeredBy) continue;
    const chosen = liveServers.find((s) => s.ref.id === r.server!.id);
    if (!chosen) continue;
    found++;
    hops.push(r.hops);
    const direct = Math.min(...liveServers.map((s) => net.latencyMs(client.ref.name, s.ref.name)));
    const overlay = record.pathMs + net.latencyMs(r.answeredBy.name, chosen.ref.name);
    rdp.push(overlay / direct);
    if (net.latencyMs(client.ref.name, chosen.ref.name) <= direct) nearest++;
  }
  return {
    samples: pending.length,
    found,
    hopsMean: mean(hops),
    rdpMedian: percentile(rdp, 50),
    rdpP90: percentile(rdp, 90),
    nearestChosenShare: found === 0 ? 0 : nearest / found,
  };
}

export function randomId(prng: Prng): TapestryId {
  return toHex(prng.bytes(20));
}

/** Lets in-flight requests finish: idle for tick-less networks, a bounded time otherwise. */
export function settle(net: TapestryNetwork, ticksWaitMs = 15_000): void {
  if (net.hasTicks) net.runUntil(net.nowMs + ticksWaitMs);
  else assert(net.runUntilIdle(), 'simulation did not go idle');
}
