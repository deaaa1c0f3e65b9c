// Spreading a re-signed ring descriptor (runtime/descriptor-gossip.ts): processes that never read
// the descriptor file (other hosts, clients given the descriptor) learn a replacement from their
// peers, and nothing but the ring admin's later word is taken.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from '../../core/codec.ts';
import { DecodeError } from '../../core/errors.ts';
import type { Effect } from '../../core/machine.ts';
import { clusterPaths, loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import {
  initCluster,
  loadAdminKey,
  loadNodeDescriptor,
  parseDescriptor,
  resignRing,
  ringEpochOf,
  saveLearnedDescriptor,
  type RingDescriptor,
} from '../../runtime/cluster-keys.ts';
import {
  decodeGossipMessage,
  DescriptorGossip,
  encodeGossipMessage,
  gossipFrameBytesMax,
  type GossipMessage,
  type GossipOutput,
} from '../../runtime/descriptor-gossip.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'oceanstore-gossip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let config: ClusterConfig;
let initial: RingDescriptor;
let epoch1: RingDescriptor;
let epoch2: RingDescriptor;
/** Epoch 1's list signed by a key that is not this ring's admin. */
let foreign: RingDescriptor;

beforeAll(async () => {
  config = loadClusterConfig(await scratchClusterConfig('cluster-configs/local.json', dir));
  initial = initCluster(config, nodeCrypto);
  const admin = loadAdminKey(config, initial, nodeCrypto);
  epoch1 = resignRing(config, initial, admin, 1, ['ring-0', 'ring-1', 'ring-2', 'replica-0'], nodeCrypto);
  epoch2 = resignRing(config, epoch1, admin, 2, ['ring-0', 'ring-1', 'replica-1', 'replica-0'], nodeCrypto);
  foreign = resignRing(config, initial, new Uint8Array(32).fill(7), 1, ['ring-0', 'ring-1', 'ring-2', 'replica-1'], nodeCrypto);
});

/** Machines by name, wired by a loop that delivers every send through the codec, in order. */
class Net {
  readonly machines = new Map<string, DescriptorGossip>();
  readonly outputs: { at: string; event: GossipOutput }[] = [];
  readonly sent: { from: string; to: string; message: GossipMessage }[] = [];
  nowMs = 0;

  add(name: string, descriptor: RingDescriptor, targets: () => string[], connected = targets): DescriptorGossip {
    const machine = new DescriptorGossip({ crypto: nodeCrypto, descriptor, targets, connected });
    this.machines.set(name, machine);
    return machine;
  }

  run(at: string, effects: Effect<GossipMessage, GossipOutput>[]): void {
    const queue = effects.map((e) => ({ at, e }));
    for (let i = 0; i < queue.length; i++) {
      if (i >= 1000) throw new Error('gossip did not settle within 1000 deliveries');
      const { at: from, e } = queue[i]!;
      if (e.kind === 'output') {
        this.outputs.push({ at: from, event: e.event });
        continue;
      }
      this.sent.push({ from, to: e.to, message: e.message });
      const target = this.machines.get(e.to);
      if (!target) continue;
      const message = decodeGossipMessage(encodeGossipMessage(e.message));
      for (const next of target.onMessage(from, message, this.nowMs)) queue.push({ at: e.to, e: next });
    }
  }

  tick(name: string): void {
    this.run(name, this.machines.get(name)!.onTick(this.nowMs));
  }
}

describe('descriptor gossip', () => {
  it('a later descriptor reaches a node and, through it, a client that only ever announced itself', () => {
    const net = new Net();
    const a = net.add('ring-0', epoch1, () => ['ring-1']);
    // ring-1 announces to its member ring-0; the client is connected to it too.
    const b = net.add('ring-1', initial, () => ['ring-0'], () => ['ring-0', 'client-1']);
    const client = net.add('client-1', initial, () => ['ring-1']);

    // The client announces epoch 0 to ring-1, which holds epoch 0 too: nothing more is said.
    net.tick('client-1');
    expect(net.sent.map((s) => s.message.type)).toEqual(['ring-epoch']);
    expect(b.epochOf('client-1')).toBe(0);

    // ring-0 announces epoch 1; ring-1 answers with its own (0), ring-0 sends the descriptor, ring-1
    // takes it, says so to ring-0, and passes it on to the client (which announced 0 earlier).
    net.tick('ring-0');
    expect(b.epoch).toBe(1);
    expect(b.descriptor.ring?.members).toEqual(['ring-0', 'ring-1', 'ring-2', 'replica-0']);
    expect(client.epoch).toBe(1);
    expect(a.epochOf('ring-1')).toBe(1);
    expect(net.outputs.filter((o) => o.event.kind === 'adopted').map((o) => [o.at, (o.event as { from: string }).from])).toEqual([
      ['ring-1', 'ring-0'],
      ['client-1', 'ring-1'],
    ]);
    // Each holder sent the descriptor once, to the one that lacked it.
    expect(net.sent.filter((s) => s.message.type === 'descriptor').map((s) => `${s.from}>${s.to}`)).toEqual(['ring-0>ring-1', 'ring-1>client-1']);

    // Later announcements of equal epochs send nothing but the announcements themselves.
    const before = net.sent.length;
    net.nowMs += 10_000;
    for (const name of ['ring-0', 'ring-1', 'client-1']) net.tick(name);
    expect(net.sent.slice(before).every((s) => s.message.type === 'ring-epoch')).toBe(true);

    // A descriptor learned locally (an admin tool, a file) is taken and sent on to every target at once.
    net.run('client-1', client.offer(epoch2, net.nowMs));
    expect([a.epoch, b.epoch, client.epoch]).toEqual([2, 2, 2]);
  });

  it('takes nothing but a later descriptor signed by the admin key it trusts; a peer gets one check a second', () => {
    let nowMs = 0;
    const node = new DescriptorGossip({ crypto: nodeCrypto, descriptor: initial, targets: () => [] });
    const deliver = (from: string, json: string) => node.onMessage(from, { type: 'descriptor', json }, nowMs);

    // Another key's signature (the ring id, nodes and epoch all right): refused, nothing changes.
    let effects = deliver('evil', JSON.stringify(foreign));
    expect(effects).toEqual([{ kind: 'output', event: { kind: 'refused', from: 'evil', reason: expect.stringMatching(/not signed by this ring's admin key/) } }]);
    expect(node.descriptor).toBe(initial);

    // Within the same second the same peer's next descriptor is not even checked.
    effects = deliver('evil', JSON.stringify(epoch2));
    expect(effects).toEqual([]);
    expect(node.counters.rateLimited).toBe(1);
    expect(node.epoch).toBe(0);

    // Altered after signing (the list), malformed JSON, a wrong shape, padding: refused, each named.
    nowMs += 1000;
    const altered = { ...epoch2, ring: { epoch: 2, members: ['ring-0', 'ring-1', 'ring-2', 'ring-3'] } };
    expect(deliver('evil', JSON.stringify(altered))[0]).toMatchObject({ event: { kind: 'refused', reason: expect.stringMatching(/admin key/) } });
    nowMs += 1000;
    expect(deliver('evil', '{"version":1,')[0]).toMatchObject({ event: { kind: 'refused', reason: expect.stringMatching(/not JSON/) } });
    nowMs += 1000;
    expect(deliver('evil', JSON.stringify({ ...epoch2, nodes: 'all' }))[0]).toMatchObject({ event: { kind: 'refused', reason: expect.stringMatching(/nodes/) } });
    nowMs += 1000;
    expect(deliver('evil', JSON.stringify({ ...epoch2, pad: 'x'.repeat(100_000) }))[0]).toMatchObject({ event: { kind: 'refused', reason: expect.stringMatching(/characters, more than/) } });
    expect(node.epoch).toBe(0);
    expect(node.counters.refused).toBe(5);

    // The admin's later word is taken, from anyone; fields its signature does not cover are dropped,
    // so they are neither kept nor passed on.
    nowMs += 1000;
    const padded = { ...epoch1, note: 'not signed', ring: { ...epoch1.ring!, pad: 'y'.repeat(1000) } };
    effects = deliver('someone', JSON.stringify(padded));
    expect(effects[0]).toMatchObject({ kind: 'output', event: { kind: 'adopted', from: 'someone' } });
    expect(node.descriptor).toEqual(epoch1);
    expect(JSON.stringify(node.descriptor)).not.toMatch(/not signed|yyy/);

    // An older or equal descriptor is no news: ignored without a word (and without a signature check).
    nowMs += 1000;
    expect(deliver('old', JSON.stringify(initial))).toEqual([]);
    nowMs += 1000;
    expect(deliver('old', JSON.stringify(foreign))).toEqual([]);
    expect(node.descriptor).toEqual(epoch1);
    nowMs += 1000;
    expect(deliver('someone', JSON.stringify(epoch2))[0]).toMatchObject({ kind: 'output', event: { kind: 'adopted' } });
    expect(ringEpochOf(node.descriptor)).toBe(2);
  });

  it('bounds its work for clients: ten descriptor checks and fifty answers a second, whatever the names; members are not starved', () => {
    const node = new DescriptorGossip({ crypto: nodeCrypto, descriptor: epoch1, targets: () => [], isMember: (peer) => peer.startsWith('ring-') });
    const json = JSON.stringify(foreign);
    for (let i = 0; i < 12; i++) node.onMessage(`client-${i}`, { type: 'descriptor', json }, 5);
    // Ten parsed (no news at epoch 1: not signature-checked), two not looked at; a new second, a new budget.
    expect(node.counters.rateLimited).toBe(2);
    node.onMessage('client-99', { type: 'descriptor', json }, 1005);
    expect(node.counters.rateLimited).toBe(2);
    let answered = 0;
    for (let i = 0; i < 60; i++) answered += node.onMessage(`old-${i}`, { type: 'ring-epoch', epoch: 0 }, 2000).length;
    expect(answered).toBe(50);
    // With both budgets spent, a member is still answered, and its descriptor still checked and taken.
    for (let i = 0; i < 12; i++) node.onMessage(`junk-${i}`, { type: 'descriptor', json }, 2000);
    expect(node.onMessage('ring-2', { type: 'ring-epoch', epoch: 0 }, 2000)).toHaveLength(1);
    expect(node.onMessage('ring-3', { type: 'descriptor', json: JSON.stringify(epoch2) }, 2000)[0]).toMatchObject({ event: { kind: 'adopted', from: 'ring-3' } });
  });

  it('takes a later ring from a descriptor whose keys are in another order (canonical comparison)', () => {
    const reordered = JSON.parse(JSON.stringify(initial, Object.keys(initial).concat(['name', 'role', 'url', 'publicKey', 'shareIndex']).reverse())) as RingDescriptor;
    expect(Object.keys(reordered)[0]).not.toBe(Object.keys(initial)[0]);
    const node = new DescriptorGossip({ crypto: nodeCrypto, descriptor: reordered, targets: () => [] });
    expect(node.offer(epoch1, 0)[0]).toMatchObject({ kind: 'output', event: { kind: 'adopted', from: 'local' } });
  });

  it('answers an older announcement at most once a second per peer, and forgets the oldest peers beyond its bound', () => {
    const node = new DescriptorGossip({ crypto: nodeCrypto, descriptor: epoch1, targets: () => [], peersMax: 2 });
    expect(node.onMessage('c1', { type: 'ring-epoch', epoch: 0 }, 0).map((e) => e.kind === 'send' && e.message.type)).toEqual(['descriptor']);
    expect(node.onMessage('c1', { type: 'ring-epoch', epoch: 0 }, 500)).toEqual([]);
    expect(node.onMessage('c1', { type: 'ring-epoch', epoch: 0 }, 1000)).toHaveLength(1);
    // A peer ahead is answered with this node's epoch, so it sends its descriptor.
    expect(node.onMessage('c2', { type: 'ring-epoch', epoch: 5 }, 1000)).toEqual([{ kind: 'send', to: 'c2', message: { type: 'ring-epoch', epoch: 1 } }]);
    node.onMessage('c3', { type: 'ring-epoch', epoch: 1 }, 1000);
    expect(node.epochOf('c1')).toBeUndefined();
    expect([node.epochOf('c2'), node.epochOf('c3')]).toEqual([5, 1]);
  });

  it('a node restarts from the later ring it learned (kept in its own directory), never from another key\'s or an older one', () => {
    const path = clusterPaths(config).descriptor;
    writeFileSync(path, JSON.stringify(initial, null, 2)); // the admin's file: still the initial ring
    const ignored: string[] = [];
    const load = () => loadNodeDescriptor(config, 'archive-0', nodeCrypto, (reason) => ignored.push(reason));
    expect(load()).toEqual(initial);
    saveLearnedDescriptor(config, 'archive-0', epoch1);
    expect(ringEpochOf(load())).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe(JSON.stringify(initial, null, 2)); // the shared file is not touched
    saveLearnedDescriptor(config, 'archive-0', foreign);
    expect(load()).toEqual(initial);
    expect(ignored).toEqual([expect.stringMatching(/not signed by this ring's admin key/)]);
    // The admin's file moved on past what the node learned: the file wins.
    writeFileSync(path, JSON.stringify(epoch2));
    saveLearnedDescriptor(config, 'archive-0', epoch1);
    expect(ringEpochOf(load())).toBe(2);
  });

  it('decodes only its two messages, bounded', () => {
    expect(decodeGossipMessage(encodeGossipMessage({ type: 'ring-epoch', epoch: 3 }))).toEqual({ type: 'ring-epoch', epoch: 3 });
    const json = JSON.stringify(epoch1);
    expect(decodeGossipMessage(encodeGossipMessage({ type: 'descriptor', json }))).toEqual({ type: 'descriptor', json });
    expect(parseDescriptor(json)).toEqual(epoch1);
    expect(() => decodeGossipMessage(encode([9, 1]))).toThrow(DecodeError);
    expect(() => decodeGossipMessage(encode([1, -1]))).toThrow(DecodeError);
    expect(() => decodeGossipMessage(encode([2, 'x'.repeat(gossipFrameBytesMax)]))).toThrow(DecodeError);
    expect(() => decodeGossipMessage(new Uint8Array([0xc1]))).toThrow(DecodeError);
  });
});
