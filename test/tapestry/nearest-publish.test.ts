/**
 * Locality of object location (JSAC 2004 §3.3): publishing to nearest neighbours leaves side
 * copies of a pointer at each publish hop's closest neighbours sharing the prefix resolved so far,
 * and a node holding several pointers answers with the server it measures as nearest.
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../sim/prng.ts';
import { sharedPrefixLength } from '../../tapestry/id.ts';
import type { NodeRef, TapestryId } from '../../tapestry/id.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { buildOverlay } from '../../tapestry/sim/build.ts';
import { measureLocate, publishObjects } from '../../tapestry/sim/experiments.ts';
import { SphereLatency } from '../../tapestry/sim/latency.ts';
import { TapestryNetwork } from '../../tapestry/sim/network.ts';
import type { SimNode } from '../../tapestry/sim/network.ts';

const ref = (firstDigits: string, name: string): NodeRef => ({ id: firstDigits.padEnd(40, '0'), name });
const self = ref('51', 'self');
const sendsOf = (effects: ReturnType<TapestryNode['onTick']>): { to: string; message: TapestryMessage }[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));

/** A node whose table holds neighbours at known round trips (no beacons, nothing pending). */
function nodeWith(neighbours: [NodeRef, number][], config = {}): TapestryNode {
  const node = new TapestryNode({ self, random: new Prng(1), nowMs: 0, config: { beaconIntervalMs: 0, ...config } });
  for (const [n, rttMs] of neighbours) node.table.consider(n, rttMs);
  return node;
}

describe('publishing to nearest neighbours (JSAC 2004 §3.3)', () => {
  // Object 5a..: self (51..) has resolved one digit; its next hop is the 5a.. slot.
  const objectId: TapestryId = '5a'.padEnd(40, '7');
  const server = ref('e', 'server');
  const sameLevel = [ref('52', 'p10'), ref('53', 'p20'), ref('54', 'p30'), ref('55', 'p40'), ref('56', 'p50')];
  const neighbours: [NodeRef, number][] = [
    [ref('6', 'other-prefix-close'), 1], // closer than all, but shares no digit: not on a path at level 1
    [sameLevel[0]!, 10],
    [sameLevel[1]!, 20],
    [ref('512', 'deeper'), 25], // shares more digits with us: also carries the prefix
    [sameLevel[2]!, 30],
    [sameLevel[3]!, 40],
    [sameLevel[4]!, 50],
    [ref('5a1', 'next-hop'), 60],
    [ref('5a2', 'next-backup'), 70],
  ];
  const publish = (unpublish: boolean): TapestryMessage =>
    ({ kind: 'publish', objectId, server, level: 1, hops: 1, op: unpublish ? 'unpublish' : 'publish', issuedAtMs: 1, signature: new Uint8Array(0), sideCopy: false });

  it('a publish hop leaves side copies at its k closest neighbours sharing the resolved prefix, besides the path', () => {
    const node = nodeWith(neighbours, { publishToNearestCount: 4 });
    const sends = sendsOf(node.onMessage('server', publish(false), 1)).filter((s) => s.message.kind === 'publish');
    const side = sends.filter((s) => s.message.kind === 'publish' && s.message.sideCopy).map((s) => s.to);
    // The four closest sharing "5": 10, 20, 25 (deeper) and 30 ms; the 1 ms node has the wrong prefix.
    expect(side).toEqual(expect.arrayContaining(['p10', 'p20', 'deeper', 'p30', 'next-backup']));
    expect(side).toHaveLength(5);
    expect(sends.filter((s) => s.message.kind === 'publish' && !s.message.sideCopy).map((s) => s.to)).toEqual(['next-hop']);
    // Side copies stay at this node's level (where a nearby locate finds them); they are never forwarded.
    for (const s of sends) if (s.to === 'p10' && s.message.kind === 'publish') expect(s.message.level).toBe(1);
  });

  it('the unpublish takes the same fan-out, so no side copy outlives it', () => {
    const node = nodeWith(neighbours, { publishToNearestCount: 4 });
    const sends = sendsOf(node.onMessage('server', publish(true), 1)).filter((s) => s.message.kind === 'publish' && s.message.op === 'unpublish');
    expect(sends.map((s) => s.to).sort()).toEqual(['deeper', 'next-backup', 'next-hop', 'p10', 'p20', 'p30']);
  });

  it('publishToNearestCount 0 turns it off (only the path and the next slot\'s backups)', () => {
    const node = nodeWith(neighbours, { publishToNearestCount: 0 });
    const sends = sendsOf(node.onMessage('server', publish(false), 1)).filter((s) => s.message.kind === 'publish');
    expect(sends.map((s) => s.to).sort()).toEqual(['next-backup', 'next-hop']);
  });

  it('a node holding pointers to several servers answers a locate with the one it measures as nearest', () => {
    const far = ref('e1', 'far');
    const near = ref('e2', 'near');
    const node = nodeWith([[far, 120], [near, 8]]);
    for (const s of [far, near]) node.onMessage(s.name, { kind: 'publish', objectId, server: s, level: 1, hops: 1, op: 'publish', issuedAtMs: 1, signature: new Uint8Array(0), sideCopy: true }, 1);
    const { effects } = node.locate(objectId, 2);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'output', event: expect.objectContaining({ kind: 'locateResult', server: near, hops: 0 }) }));
  });
});

describe('publishing to nearest neighbours in a 300-node overlay built by real joins', () => {
  const k = 4;
  function built(publishToNearestCount: number): { net: TapestryNetwork; prng: Prng } {
    const net = new TapestryNetwork({ seed: 21, latency: new SphereLatency(21), config: { publishToNearestCount } });
    const prng = new Prng(21).fork('test');
    buildOverlay(net, 300, (m) => prng.pick(m));
    return { net, prng };
  }
  const { net, prng } = built(k);

  /** The nodes of the publish path from `server` (as the tables stand) with each one's k closest sharing the resolved prefix. */
  function fanOut(server: SimNode, objectId: TapestryId): { path: SimNode[]; nearest: SimNode[] } {
    const path: SimNode[] = [];
    const nearest: SimNode[] = [];
    let at: SimNode | null = server;
    let level = 0;
    for (let hops = 0; at && hops < 20; hops++) {
      path.push(at);
      for (const n of at.node.table.closest(level, k)) {
        expect(sharedPrefixLength(n.id, at.ref.id)).toBeGreaterThanOrEqual(level);
        if (n.id !== server.ref.id) nearest.push(net.get(n.name));
      }
      const next = at.node.table.nextHop(objectId, level);
      at = next ? net.get(next.hop.name) : null;
      level = next?.level ?? level;
    }
    expect(at).toBeNull();
    return { path, nearest };
  }

  it('every node on a publish path leaves a pointer at its k closest neighbours sharing the resolved prefix; unpublish retracts them', () => {
    const objects = publishObjects(net, prng, 10, 1);
    const holds = (n: SimNode, objectId: TapestryId, server: SimNode): boolean => n.node.pointers.get(objectId, server.ref.id) !== undefined;
    const fans = objects.map(({ objectId, servers }) => ({ objectId, server: servers[0]!, ...fanOut(servers[0]!, objectId) }));
    for (const { objectId, server, path, nearest } of fans) {
      expect(path.length).toBeGreaterThan(1);
      for (const n of [...path, ...nearest]) expect(holds(n, objectId, server)).toBe(true);
      expect(nearest.filter((n) => !path.includes(n)).length).toBeGreaterThan(0);
    }
    for (const { objectId, server } of fans) net.unpublish(server.ref.name, objectId);
    expect(net.runUntilIdle()).toBe(true);
    for (const { objectId, server, path, nearest } of fans) {
      for (const n of [...path, ...nearest]) expect(holds(n, objectId, server)).toBe(false);
    }
  });

  it('locates stop earlier and nearer than with the path and backups alone (same overlay and objects)', () => {
    const plain = built(0);
    const reports = [plain, built(k)].map(({ net: n, prng: p }) => measureLocate(n, p.fork('locate'), publishObjects(n, p.fork('objects'), 100, 4), 1500));
    const [without, withNearest] = reports as [ReturnType<typeof measureLocate>, ReturnType<typeof measureLocate>];
    expect(withNearest.found).toBe(1500);
    expect(withNearest.hopsMean).toBeLessThan(without.hopsMean);
    expect(withNearest.rdpMedian).toBeLessThan(without.rdpMedian);
  });
});
