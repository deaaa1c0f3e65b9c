/**
 * The overlay in simulation at a few hundred nodes (the thousands live in the sim scenario and the
 * benchmark): built by real joins, then checked against the paper's claims.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../sim/prng.ts';
import { buildOverlay } from '../../tapestry/sim/build.ts';
import { checkRoots, locateFromEveryNode, measureLocate, measureRouting, publishObjects } from '../../tapestry/sim/experiments.ts';
import { runChurn, defaultChurnOptions } from '../../tapestry/sim/churn.ts';
import { SphereLatency } from '../../tapestry/sim/latency.ts';
import { TapestryNetwork } from '../../tapestry/sim/network.ts';

function built(nodeCount: number, seed: number, wire = false): { net: TapestryNetwork; prng: Prng } {
  const net = new TapestryNetwork({ seed, latency: new SphereLatency(seed), wire });
  const prng = new Prng(seed).fork('test');
  buildOverlay(net, nodeCount, (m) => prng.pick(m));
  return { net, prng };
}

describe('Tapestry overlay in simulation (JSAC 2004 §3-§5)', () => {
  const { net, prng } = built(300, 11);

  it('every joiner finished its join (acknowledged multicast + nearest-neighbour search, §4.1)', () => {
    expect(net.outputs.filter((o) => o.event.kind === 'joined')).toHaveLength(299);
  });

  it('every id reaches the same, unique root from every start node (surrogate routing, §3.1.1)', () => {
    const report = checkRoots(net, prng, 30, 'all');
    expect(report.checks).toBe(30 * 300);
    expect(report.wrongRoot).toBe(0);
  });

  it('routing to a node reaches it in at most log16 N + 1 hops on average, with bounded stretch (§5)', () => {
    const report = measureRouting(net, prng, 600);
    expect(report.reached).toBe(600);
    expect(report.hopsMean).toBeLessThanOrEqual(Math.log(300) / Math.log(16) + 1);
    expect(report.rdpMedian).toBeLessThan(2);
  });

  it('a published object is found from every node, and locate takes a nearby replica (§3.3)', () => {
    const objects = publishObjects(net, prng, 20, 3);
    const everywhere = locateFromEveryNode(net, objects.slice(0, 4));
    expect(everywhere.found).toBe(everywhere.samples);
    const sampled = measureLocate(net, prng, objects, 600);
    expect(sampled.found).toBe(600);
    expect(sampled.rdpMedian).toBeLessThan(2.5);
  });

  it('after graceful leaves the roots stay unique and objects stay findable (§4.2)', () => {
    const objects = publishObjects(net, prng, 10, 2);
    const keep = new Set(objects.flatMap((o) => o.servers));
    const leavers = prng.shuffle(net.live().filter((n) => !keep.has(n))).slice(0, 30);
    for (const l of leavers) {
      net.leave(l.ref.name);
      expect(net.runUntilIdle()).toBe(true);
    }
    expect(checkRoots(net, prng, 20, 'all').wrongRoot).toBe(0);
    const everywhere = locateFromEveryNode(net, objects);
    expect(everywhere.found).toBe(everywhere.samples);
  });
});

describe('Tapestry over the wire codec', () => {
  it('an overlay whose every message is encoded and decoded builds consistent tables', () => {
    const { net, prng } = built(64, 5, true);
    expect(checkRoots(net, prng, 20, 'all').wrongRoot).toBe(0);
    const objects = publishObjects(net, prng, 5, 1);
    expect(locateFromEveryNode(net, objects).found).toBe(5 * 63);
  });
});

describe('Tapestry under churn (JSAC 2004 §5: 20% fail, 50% join)', () => {
  it('after beacons detect the failures and tables are repaired, lookups succeed again', () => {
    const report = runChurn({ ...defaultChurnOptions, seed: 3, nodeCount: 100, objectCount: 30, probeSamples: 100, horizonMs: 80_000 });
    expect(report.failed).toBe(20);
    expect(report.joined).toBe(50);
    expect(report.before.routeSuccess).toBe(1);
    expect(report.probes[0]!.staleTables).toBeGreaterThan(0);
    expect(report.tablesCleanS).not.toBeNull();
    expect(report.repairS).not.toBeNull();
    expect(report.finalRouteSuccess).toBeGreaterThanOrEqual(0.99);
    expect(report.finalLocateSuccess).toBeGreaterThanOrEqual(0.99);
  });
});
