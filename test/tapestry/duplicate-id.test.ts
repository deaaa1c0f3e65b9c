/**
 * One id, two names (twentieth session review, finding 7): a node joining with an existing
 * member's id got no error and broke the original (its graceful leave took the original out of
 * other tables). In the runtime ids come from keys, so the descriptor now refuses two nodes with
 * one key; in the core, a sender claiming an id the table holds under another name is dropped.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { Prng } from '../../sim/prng.ts';
import { parseDescriptor } from '../../runtime/cluster-keys.ts';
import type { TapestryId } from '../../tapestry/id.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { buildOverlay } from '../../tapestry/sim/build.ts';
import { SphereLatency } from '../../tapestry/sim/latency.ts';
import { TapestryNetwork, type SimNode } from '../../tapestry/sim/network.ts';

/** A node with a chosen id (the simulator only makes random ones). */
function addNodeWithId(net: TapestryNetwork, id: TapestryId): SimNode {
  const index = net.nodes.length;
  const name = `x${index}`;
  const node = new TapestryNode({ self: { id, name }, random: new Prng(index).fork(name), nowMs: net.nowMs });
  const sim: SimNode = { index, ref: { id, name }, node, alive: true };
  net.nodes.push(sim);
  (net as unknown as { byName: Map<string, SimNode> }).byName.set(name, sim);
  return sim;
}

/** How many live nodes' tables name `id`, per name. */
function namesFor(net: TapestryNetwork, id: TapestryId): Record<string, number> {
  const names: Record<string, number> = {};
  for (const n of net.live()) {
    const known = n.node.table.get(id);
    if (known) names[known.name] = (names[known.name] ?? 0) + 1;
  }
  return names;
}

describe('a second node under an existing member\'s id', () => {
  it('its leave does not take the original out of the tables that hold it', () => {
    const prng = new Prng(23).fork('j');
    const net = new TapestryNetwork({ seed: 23, latency: new SphereLatency(23) });
    buildOverlay(net, 100, (m) => prng.pick(m));
    net.runUntilIdle();
    const original = net.live()[17]!;
    const before = namesFor(net, original.ref.id);
    expect(Object.keys(before)).toEqual([original.ref.name]);
    const twin = addNodeWithId(net, original.ref.id);
    net.join(twin.ref.name, net.live()[3]!.ref.name);
    net.runUntilIdle();
    // A table that held the original keeps it (before: the twin's pong refreshed that entry).
    expect(namesFor(net, original.ref.id)[original.ref.name]).toBe(before[original.ref.name]);
    net.leave(twin.ref.name);
    net.runUntilIdle();
    // Before: the twin's 'leaving' removed the original from those tables.
    expect(namesFor(net, original.ref.id)[original.ref.name]).toBe(before[original.ref.name]);
  });
});

describe('ring descriptor: two nodes with one public key', () => {
  const descriptor = (keys: string[]) => JSON.stringify({
    version: 1, cluster: 'c', ringId: 'r', f: 0, threshold: 1, ringPublicKey: 'p', commitments: [], adminPublicKey: 'a', signature: 's',
    nodes: keys.map((publicKey, i) => ({ name: `n${i}`, role: 'archive', url: `ws://127.0.0.1:${9000 + i}`, publicKey, shareIndex: 0 })),
  });

  it('is refused with ConfigError naming both (one key gives one Tapestry id and one transport identity)', () => {
    expect(parseDescriptor(descriptor(['aa', 'bb'])).nodes).toHaveLength(2);
    expect(() => parseDescriptor(descriptor(['aa', 'bb', 'aa']))).toThrow(ConfigError);
    expect(() => parseDescriptor(descriptor(['aa', 'bb', 'aa']))).toThrow(/n0 and n2 share a public key/);
  });
});
