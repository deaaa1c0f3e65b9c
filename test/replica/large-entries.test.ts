/**
 * Updates too large for one push frame go down the dissemination tree as block references
 * (Pond, FAST 2003: every secondary receives every certified update; DESIGN.md "Dissemination
 * tree"): the push carries the update and its certificate, and each member fetches the referenced
 * blocks it lacks from its parent by BGUID (`fetch-blocks` / `blocks`), re-hashing each, before it
 * re-executes and checks the VGUID. Shown in simulation (every entry with a referenced block goes
 * by reference, with loss) and with one real 34 MiB update through the wire codec down a chain.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { CachingTrust } from '../../replica/caching-trust.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { decodeTreeMessage, encodeTreeMessage, treeLimits, type TreeMessage } from '../../replica/messages.ts';
import { TreeRoot } from '../../replica/root.ts';
import { SecondaryReplica, blocksReply } from '../../replica/secondary.ts';
import { Prng } from '../../sim/prng.ts';
import { largeObjectHistory } from './test-ring.ts';
import { blockForger } from './byzantine.ts';
import { TreeSim } from './tree-harness.ts';

const crypto = nodeCrypto;

describe('large updates travel as block references', () => {
  it('simulation: every entry with a referenced block goes by reference; 12 secondaries at fan-out 3 converge to the exact history over a lossy network', () => {
    const world = new TreeSim({
      seed: 31, replicaCount: 12, fanOutMax: 3, versionCount: 16, referenceEvery: 2, inlineBlockBytesMax: 1024,
      network: { lossRate: 0.03, duplicateRate: 0.03 },
    });
    expect(world.runToConvergence(30_000)).toBe(true);
    expect(world.violations).toEqual([]);
    for (const id of world.replicaIds) expect(world.holdsExactHistory(id), id).toBe(true);
    // The blocks really were fetched: from the roots by their children, and between secondaries.
    expect(world.blockFetches).toBeGreaterThan(0);
    const servedBySecondaries = world.replicaIds.reduce((n, id) => n + (world.replica(id)!.counters.get('fetch-blocks-served') ?? 0), 0);
    expect(servedBySecondaries).toBeGreaterThan(0);
  });

  it('a secondary that forges or withholds the blocks it is asked for cannot make a correct child accept a false version; its children leave it and converge', () => {
    const world = new TreeSim({ seed: 32, replicaCount: 16, fanOutMax: 2, versionCount: 16, referenceEvery: 2, inlineBlockBytesMax: 1024, updateIntervalMs: 60 });
    expect(world.sim.runUntil(() => world.correctUpReplicas().every((id) => world.replica(id)!.parentOf(world.aguid)!.isAttached), 30_000)).toBe(true);
    const inner = world.replicaIds.filter((id) => world.replica(id)!.childrenOf(world.aguid).length > 0);
    expect(inner.length).toBeGreaterThan(0);
    const liar = inner[0]!;
    const children = world.replica(liar)!.childrenOf(world.aguid);
    world.byzantine.add(liar);
    world.sim.setInterceptor(liar, blockForger());
    expect(world.runToConvergence(30_000)).toBe(true);
    expect(world.violations).toEqual([]);
    for (const id of world.correctUpReplicas()) expect(world.holdsExactHistory(id), id).toBe(true);
    // Every child it had left it: it never delivered the blocks, so they found it withholding.
    const left = new Set(world.events.flatMap(({ nodeId, event }) => (event.kind === 'detached' && event.parent === liar ? [nodeId] : [])));
    for (const child of children) expect(left.has(child), child).toBe(true);
  });

  it('a late joiner below members that kept only recent updates gets a snapshot without its leaves, fetches them by BGUID, then follows', () => {
    const world = new TreeSim({ seed: 51, replicaCount: 20, versionCount: 30, updateIntervalMs: 40, logEntriesMax: 4, inlineBlockBytesMax: 1024 });
    expect(world.sim.runUntil(() => world.sim.nowMs > world.startMs + 20 * world.updateIntervalMs && world.converged(), 30_000)).toBe(true);
    world.addReplica('late');
    expect(world.runToConvergence(30_000)).toBe(true);
    const copy = world.replica('late')!.copyOf(world.aguid)!;
    expect(world.depthOf('late')).toBeGreaterThan(1);
    expect(copy.snapshotsInstalled).toBe(1);
    expect(world.replica('late')!.counters.get('snapshot-by-reference')).toBe(1);
    for (const id of world.replicaIds) expect(world.holdsExactSuffix(id), id).toBe(true);
    expect(world.violations).toEqual([]);
  });

  it('a 34 MiB update (over the old 32 MiB push limit) reaches the end of a root → A → B chain through the wire codec; no frame exceeds 5 MiB', () => {
    const blockBytes = 1024 * 1024;
    const blockCount = 34;
    const { signer, aguid, executor, history, blocks: ringBlocks, data: blocks } = largeObjectHistory(crypto, blockBytes, blockCount, 0);
    const updates = history.map((h) => h.entry.update);
    const certificates = history.map((h) => h.entry.certificate);

    const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(5), fanOutMax: 1 });
    const member = (id: string, near: string[]): SecondaryReplica =>
      new SecondaryReplica(
        { nodeId: id, store: new MemoryKvStore(), random: new Prng(id.length), nowMs: 0 },
        { crypto, trust: new CachingTrust(signer.trust()), executor, locator: new ConfigLocator(['ring-0'], near), cacheBytesMax: 256 << 20, subscriptions: [aguid], fanOutMax: 1 },
      );
    const a = member('a', []);
    const b = member('b', ['a']);
    // A wire between the machines: every message is encoded and decoded, as the runtime does.
    let frameBytesMax = 0;
    const queue: { from: string; to: string; bytes: Uint8Array }[] = [];
    const post = (from: string, effects: Effect<TreeMessage, unknown>[]): void => {
      for (const e of effects) {
        if (e.kind !== 'send') continue;
        const bytes = encodeTreeMessage(e.message);
        frameBytesMax = Math.max(frameBytesMax, bytes.length);
        queue.push({ from, to: e.to, bytes });
      }
    };
    const deliver = (nowMs: number): void => {
      for (let i = 0; i < 10_000 && queue.length > 0; i++) {
        const { from, to, bytes } = queue.shift()!;
        const message = decodeTreeMessage(bytes);
        if (to === 'ring-0') {
          const reply = message.type === 'fetch-blocks' ? [{ kind: 'send' as const, to: from, message: blocksReply(ringBlocks, aguid, message.bguids) }] : root.onMessage(from, message, nowMs);
          post('ring-0', reply);
        } else post(to, (to === 'a' ? a : b).onMessage(from, message, nowMs));
      }
    };
    // The object exists (version 0 published); A joins under the root, then B under A (fan-out 1).
    post('ring-0', root.publish(aguid, 0, { update: updates[0]!, certificate: certificates[0]!, blocks: [] }));
    post('a', a.onTick(0));
    deliver(1);
    post('b', b.onTick(2));
    deliver(3);
    expect(a.parentOf(aguid)!.parentId).toBe('ring-0');
    expect(b.parentOf(aguid)!.parentId).toBe('a');
    expect(b.copyOf(aguid)!.head?.version).toBe(0);
    post('ring-0', root.publish(aguid, 1, { update: updates[1]!, certificate: certificates[1]!, blocks }));
    deliver(10);
    for (const m of [a, b]) {
      const copy = m.copyOf(aguid)!;
      expect(copy.head?.version).toBe(1);
      expect(bytesEqual(copy.head!.vguid, history[1]!.vguid)).toBe(true);
      // The bytes are there and read back (the last block, through the member's cache).
      const tail = executor.readRange(m.cache, copy.head!.vguid, (blockCount - 1) * blockBytes, blockBytes);
      expect(tail && bytesEqual(tail, blocks[blockCount - 1]!)).toBe(true);
    }
    expect(frameBytesMax).toBeLessThanOrEqual(treeLimits.blocksReplyBytesMax + 1024 * 1024);
  }, 60_000);
});
