/**
 * The join multicast (JSAC 2004 §4.1) is taken only from where a parent on a real join's tree
 * would stand (seventeenth session's review: one forged multicast with prefixLength 0 from any
 * member made every node of a 256-node overlay relay, ack and ping the joiner it named).
 */
import { describe, expect, it } from 'vitest';
import { Prng } from '../../sim/prng.ts';
import { sharedPrefixLength, type NodeRef } from '../../tapestry/id.ts';
import { multicastFits } from '../../tapestry/join.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { buildOverlay } from '../../tapestry/sim/build.ts';
import { SphereLatency } from '../../tapestry/sim/latency.ts';
import { TapestryNetwork } from '../../tapestry/sim/network.ts';

/** A multicast as `sender` would send it to `to` (applied through the simulator, as if sent by the core). */
function forge(net: TapestryNetwork, sender: NodeRef, to: NodeRef, joiner: NodeRef, prefixLength: number, rootPrefixLength = 0): void {
  const message: TapestryMessage = { kind: 'multicast', sender, joiner, prefixLength, rootPrefixLength };
  const live = net.live().find((n) => n.ref.name === sender.name)!;
  (net as unknown as { apply(node: unknown, effects: unknown[]): void }).apply(live, [{ kind: 'send', to: to.name, message }]);
}

describe('join multicast: only from a parent on a real join tree', () => {
  it('multicastFits: a child shares exactly prefixLength - 1 digits with its parent, the tree lies below the root, and shares its prefix with the joiner', () => {
    const self = '12a'.padEnd(40, '0');
    const parent = '12b'.padEnd(40, '0'); // shares 2 digits with self
    const joiner = '127'.padEnd(40, '0'); // shares 2 digits with self
    expect(multicastFits(self, parent, joiner, 3, 2)).toBe(true);
    expect(multicastFits(self, parent, joiner, 3, 0)).toBe(true);
    expect(multicastFits(self, parent, joiner, 0, 0)).toBe(false); // the root's own length: no parent sends it
    expect(multicastFits(self, parent, joiner, 2, 0)).toBe(false); // the sender would share only 1 digit
    expect(multicastFits(self, parent, joiner, 4, 0)).toBe(false);
    expect(multicastFits(self, parent, joiner, 3, 3)).toBe(false); // a root deeper than its tree
    expect(multicastFits(self, parent, '9'.padEnd(40, '0'), 3, 1)).toBe(false); // we do not share the root's prefix with the joiner
  });

  it('a node drops a multicast whose sender is not the authenticated peer, or that no parent would send', () => {
    const self: NodeRef = { id: '12a'.padEnd(40, '0'), name: 'self' };
    const peer: NodeRef = { id: '12b'.padEnd(40, '0'), name: 'peer' };
    const joiner: NodeRef = { id: '127'.padEnd(40, '0'), name: 'joiner' };
    const node = new TapestryNode({ self, random: new Prng(1), nowMs: 0, config: {} });
    node.onMessage('other', { kind: 'multicast', sender: peer, joiner, prefixLength: 3, rootPrefixLength: 2 }, 0);
    node.onMessage('peer', { kind: 'multicast', sender: peer, joiner, prefixLength: 0, rootPrefixLength: 0 }, 0);
    expect(node.stats.dropped).toBe(2);
    const effects = node.onMessage('peer', { kind: 'multicast', sender: peer, joiner, prefixLength: 3, rootPrefixLength: 2 }, 0);
    expect(node.stats.dropped).toBe(2);
    // A leaf of the tree: it learns the joiner (ping) and acks its parent.
    expect(effects.flatMap((e) => (e.kind === 'send' ? [[e.to, e.message.kind]] : []))).toEqual([['joiner', 'ping'], ['peer', 'multicastAck']]);
  });

  it('in a 256-node overlay one forged multicast costs a few messages, and the widest one a member may send reaches only its subtree', () => {
    const net = new TapestryNetwork({ seed: 4, latency: new SphereLatency(4) });
    const prng = new Prng(4).fork('t');
    buildOverlay(net, 256, (m) => prng.pick(m));
    net.runUntilIdle();
    const [attacker, victim, target] = net.live().map((n) => n.ref);
    // The reviewer's message: prefixLength 0 (the root's), from a member that is no root.
    let before = net.messagesDelivered;
    forge(net, attacker!, victim!, target!, 0);
    net.runUntilIdle();
    expect(net.messagesDelivered - before).toBeLessThanOrEqual(1);

    // The widest a member may legitimately start: at a node sharing no digit with it, prefixLength 1.
    // It covers the nodes sharing >= 1 digit with that node (~N/16), not the overlay (before: 1,172 messages).
    const far = net.live().map((n) => n.ref).find((r) => sharedPrefixLength(r.id, attacker!.id) === 0 && r.id !== target!.id)!;
    const subtree = net.live().filter((n) => sharedPrefixLength(n.ref.id, far.id) >= 1).length;
    before = net.messagesDelivered;
    forge(net, attacker!, far, target!, 1);
    net.runUntilIdle();
    const cost = net.messagesDelivered - before;
    expect(cost).toBeGreaterThan(1);
    expect(cost).toBeLessThanOrEqual(6 * subtree + 2);
    expect(cost).toBeLessThan(256);
  });
});

/** A message as `sender` (a member) would send it, applied through the simulator. */
function sendAs(net: TapestryNetwork, sender: string, to: string, message: TapestryMessage): void {
  const live = net.live().find((n) => n.ref.name === sender)!;
  (net as unknown as { apply(node: unknown, effects: unknown[]): void }).apply(live, [{ kind: 'send', to, message }]);
}

/** When each node last ran a multicast for `joinerId` (the relay's per-joiner record). */
function multicastTimes(net: TapestryNetwork, joinerId: string): (number | undefined)[] {
  return net.live().map((n) => (n.node as unknown as { relay: { recent: Map<string, number> } }).relay.recent.get(joinerId));
}

/** How many nodes ran a multicast for `joinerId` while `action` ran. */
function multicastReach(net: TapestryNetwork, joinerId: string, action: () => void): number {
  const before = multicastTimes(net, joinerId);
  action();
  net.runUntilIdle();
  return multicastTimes(net, joinerId).filter((t, i) => t !== undefined && t !== before[i]).length;
}

describe('joinRequest naming an existing member (twentieth session review, finding 1)', () => {
  function overlay(): TapestryNetwork {
    const net = new TapestryNetwork({ seed: 4, latency: new SphereLatency(4) });
    const prng = new Prng(4).fork('t');
    buildOverlay(net, 256, (m) => prng.pick(m));
    net.runUntilIdle();
    return net;
  }

  /** The deepest prefix any other member shares with `victim`: what an honest join's root shares with it. */
  function rootPrefix(net: TapestryNetwork, victim: NodeRef): number {
    return Math.max(...net.live().filter((n) => n.ref.id !== victim.id).map((n) => sharedPrefixLength(n.ref.id, victim.id)));
  }

  it('sent to a node whose next hop is the named member: the multicast covers only what an honest join of that id would (before: 1,107 deliveries, 254 nodes)', () => {
    const net = overlay();
    const live = net.live();
    const attacker = live[0]!.ref;
    let victim: NodeRef | undefined;
    let x: NodeRef | undefined;
    for (const cand of live.slice(1)) {
      const found = live.find((n) => n.ref.name !== attacker.name && n.ref.id !== cand.ref.id &&
        n.node.table.nextHop(cand.ref.id, 0)?.hop.id === cand.ref.id && sharedPrefixLength(n.ref.id, cand.ref.id) === 0);
      if (found) {
        victim = cand.ref;
        x = found.ref;
        break;
      }
    }
    expect(victim && x).toBeTruthy();
    const before = net.messagesDelivered;
    const reached = multicastReach(net, victim!.id, () => sendAs(net, attacker.name, x!.name, { kind: 'joinRequest', joiner: victim!, level: 0, hops: 0 }));
    const wouldShare = live.filter((n) => n.ref.id !== victim!.id && sharedPrefixLength(n.ref.id, victim!.id) >= rootPrefix(net, victim!)).length;
    expect(reached).toBeGreaterThanOrEqual(1);
    expect(reached).toBeLessThanOrEqual(wouldShare);
    // What is left: each hop's rows go to the named member, which pings the ones it has not
    // measured lately (as any member's `candidates` message can make it do); an honest join here
    // costs ~965 messages. Bounded by the path's rows, not by the overlay's size.
    expect(net.messagesDelivered - before).toBeLessThan(400);
  });

  it('a forged level (39) no longer makes the receiver the root: five members named in turn each reach at most one digit group (before: ~1,100-1,235 messages, 254 nodes each)', () => {
    const net = overlay();
    const live = net.live();
    const attacker = live[0]!.ref;
    for (let k = 1; k <= 5; k++) {
      const victim = live[k * 10]!.ref;
      const x = live.find((n) => n.ref.name !== attacker.name && sharedPrefixLength(n.ref.id, victim.id) === 0)!.ref;
      const before = net.messagesDelivered;
      const reached = multicastReach(net, victim.id, () => sendAs(net, attacker.name, x.name, { kind: 'joinRequest', joiner: victim, level: 39, hops: 0 }));
      expect(reached).toBeLessThanOrEqual(16);
      expect(net.messagesDelivered - before).toBeLessThan(400);
    }
  });

  it('an honest join still ends at the root of the joiner id and fills the newcomer\'s table', () => {
    const net = overlay();
    const gateway = net.live()[3]!.ref.name;
    net.addNode();
    const joiner = net.live().at(-1)!;
    const reached = multicastReach(net, joiner.ref.id, () => net.join(joiner.ref.name, gateway));
    expect(joiner.node.isMember).toBe(true);
    expect(joiner.node.table.size).toBeGreaterThan(10);
    expect(reached).toBeGreaterThanOrEqual(1);
  });
});
