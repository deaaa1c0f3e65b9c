/**
 * Two ways one member could still flood the overlay after the joinRequest fix (twentieth
 * session's second review, finding 1): an unasked `candidates` list (each receiver pinged every
 * node on it it had not measured lately), and a multicast subtree started into each of the 15
 * other first-digit groups, naming a member as the joiner (together almost the whole overlay).
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../sim/prng.ts';
import { digitAt, sharedPrefixLength, type NodeRef } from '../../tapestry/id.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { RowQueries } from '../../tapestry/requests.ts';
import { buildOverlay } from '../../tapestry/sim/build.ts';
import { SphereLatency } from '../../tapestry/sim/latency.ts';
import { TapestryNetwork } from '../../tapestry/sim/network.ts';

/** Delivers `message` as if the member `sender` sent it (what a faulty member can do). */
function sendAs(net: TapestryNetwork, sender: string, to: string, message: TapestryMessage): void {
  (net as unknown as { apply(node: unknown, effects: unknown[]): void }).apply(net.get(sender), [{ kind: 'send', to, message }]);
}

/** A 256-node overlay built by real joins, a minute after the last one (past every join's window). */
function overlay256(): TapestryNetwork {
  const net = new TapestryNetwork({ seed: 4, latency: new SphereLatency(4) });
  const prng = new Prng(4).fork('t');
  buildOverlay(net, 256, (m) => prng.pick(m));
  net.runUntilIdle();
  net.nowMs += 60_000;
  return net;
}

/** How many nodes ran (relayed) a multicast naming `joinerId` since `before` was taken. */
const relayedAt = (net: TapestryNetwork, joinerId: string) =>
  net.live().map((n) => (n.node as unknown as { relay: { recent: Map<string, number> } }).relay.recent.get(joinerId));

describe('flood guards: candidates only as an answer, multicasts only for a real join', () => {
  it('RowQueries: one answer per query sent, bounded per peer and in peers', () => {
    const q = new RowQueries(2, 2);
    expect(q.take('a')).toBe(false);
    q.sent('a');
    q.sent('a');
    q.sent('a'); // capped at 2 per peer
    expect([q.take('a'), q.take('a'), q.take('a')]).toEqual([true, true, false]);
    q.sent('a');
    q.sent('b');
    q.sent('c'); // 'a' (asked longest ago) is forgotten
    expect([q.take('a'), q.take('b'), q.take('c')]).toEqual([false, true, true]);
  });

  it('a member takes a candidates list only as the answer to its own query, once', () => {
    const a: NodeRef = { id: 'a'.repeat(40), name: 'a' };
    const b: NodeRef = { id: 'b'.repeat(40), name: 'b' };
    const c: NodeRef = { id: 'c'.repeat(40), name: 'c' };
    const d: NodeRef = { id: 'd'.repeat(40), name: 'd' };
    const node = new TapestryNode({ self: a, random: new Prng(1), nowMs: 0, config: { beaconIntervalMs: 0, maintenanceIntervalMs: 1_000 } });
    node.table.consider(b, 10);
    const pingsOf = (effects: ReturnType<TapestryNode['onTick']>) => effects.flatMap((e) => (e.kind === 'send' && e.message.kind === 'ping' ? [e.to] : []));
    // Unasked: nobody is pinged, and the drop is counted.
    expect(pingsOf(node.onMessage('b', { kind: 'candidates', nodes: [c, d] }, 1))).toEqual([]);
    expect(node.stats.dropped).toBe(1);
    // Anti-entropy asks b for a row; b's answer is taken, a second one is not.
    const tick = node.onTick(2_000);
    expect(tick.some((e) => e.kind === 'send' && e.to === 'b' && e.message.kind === 'neighbourQuery')).toBe(true);
    expect(pingsOf(node.onMessage('c', { kind: 'candidates', nodes: [c] }, 2_001))).toEqual([]);
    expect(pingsOf(node.onMessage('b', { kind: 'candidates', nodes: [c] }, 2_002))).toEqual(['c']);
    expect(pingsOf(node.onMessage('b', { kind: 'candidates', nodes: [d] }, 2_003))).toEqual([]);
    expect(node.stats.dropped).toBe(3);
  });

  it('an unasked list of every member sent to every node costs one delivery each (before: 77,154 deliveries)', () => {
    const net = overlay256();
    const live = net.live();
    const nodes = live.map((n) => n.ref);
    const before = net.messagesDelivered;
    for (const x of live.slice(1)) sendAs(net, live[0]!.ref.name, x.ref.name, { kind: 'candidates', nodes });
    net.runUntilIdle();
    expect(net.messagesDelivered - before).toBe(live.length - 1);
  });

  it('15 multicasts from one member, one into each other first-digit group, are only acked (before: 243 of 256 nodes ran each)', () => {
    const net = overlay256();
    const live = net.live();
    const attacker = live[0]!.ref;
    const fake: NodeRef = { id: (((digitAt(attacker.id, 0) + 1) % 16).toString(16)).repeat(40), name: 'nobody' };
    // Three members named as the joiner in turn, then an id no member has (the simulator takes any).
    for (const joiner of [live[10]!.ref, live[20]!.ref, live[30]!.ref, fake]) {
      const before = relayedAt(net, joiner.id);
      const delivered = net.messagesDelivered;
      let sent = 0;
      for (let d = 0; d < 16; d++) {
        if (d === digitAt(attacker.id, 0)) continue;
        const x = live.find((n) => digitAt(n.ref.id, 0) === d && n.ref.id !== joiner.id && sharedPrefixLength(n.ref.id, attacker.id) === 0);
        if (!x) continue;
        sendAs(net, attacker.name, x.ref.name, { kind: 'multicast', sender: attacker, joiner, prefixLength: 1, rootPrefixLength: 0 });
        sent++;
      }
      net.runUntilIdle();
      const ran = relayedAt(net, joiner.id).filter((t, i) => t !== undefined && t !== before[i]).length;
      expect(sent).toBeGreaterThan(10);
      expect(ran).toBe(0);
      // The multicast and its ack, nothing more.
      expect(net.messagesDelivered - delivered).toBe(2 * sent);
    }
  });

  it('an honest join after all that still completes and fills the newcomer\'s table', () => {
    const net = overlay256();
    const joiner = net.addNode();
    net.join(joiner.ref.name, net.live()[5]!.ref.name);
    net.runUntilIdle();
    expect(joiner.node.isMember).toBe(true);
    expect(joiner.node.table.size).toBeGreaterThan(30);
    // Every member whose slot the newcomer is the only one for holds it (the multicast reached them).
    const members = net.live().filter((n) => n !== joiner);
    const needing = members.filter((n) => {
      const level = sharedPrefixLength(n.ref.id, joiner.ref.id);
      return !members.some((m) => m !== n && sharedPrefixLength(m.ref.id, joiner.ref.id) > level && sharedPrefixLength(m.ref.id, n.ref.id) === level);
    });
    expect(needing.length).toBeGreaterThan(0);
    expect(needing.every((n) => n.node.table.get(joiner.ref.id) !== undefined)).toBe(true);
  });
});
