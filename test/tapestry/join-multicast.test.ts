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
