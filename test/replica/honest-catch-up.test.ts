/**
 * Honest parents a child must never leave while it catches up: the other side of the dribble fix
 * (replica/parent-link.ts `delivered`: only one honest answer's worth of progress restarts the
 * withholding clock, not any delivery). A ring root and one secondary over a slow link (latency
 * each way, and bandwidth: a message is on the wire for its encoded size / bytes per ms, one after
 * another per direction); the ring writes one version a second and heartbeats every second
 * (fresh: the parent is never silent). Simulated time in 50 ms steps; the messages are wired by hand.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { ReplicaEffect, ReplicaEvent } from '../../replica/events.ts';
import { encodeTreeMessage, type TreeMessage } from '../../replica/messages.ts';
import { TreeRoot } from '../../replica/root.ts';
import { SecondaryReplica, blocksReply, type SecondaryConfig } from '../../replica/secondary.ts';
import type { ReplicaExecutor } from '../../replica/types.ts';
import type { Snapshot } from '../../replica/object-log.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, largeObjectHistory, makeHeartbeat, testObject, type HistoryVersion } from './test-ring.ts';

const crypto = nodeCrypto;

interface Ring {
  readonly signer: TestRingSigner;
  readonly aguid: Uint8Array;
  readonly executor: ReplicaExecutor;
  readonly history: readonly HistoryVersion[];
  /** The blocks of entries that go down by reference (what a ring server's store holds). */
  readonly blocks?: MemoryBlockStore;
}

interface Link {
  readonly latencyMs: number;
  /** Bytes on the wire per ms, each direction (messages queue behind each other). */
  readonly bytesPerMs: number;
}

interface Run {
  readonly detached: ReplicaEvent[];
  /** When the child first held the newest version written by then (null: never). */
  readonly caughtUpAtMs: number | null;
  readonly child: SecondaryReplica;
  /** Pushes, blocks replies and snapshots the child received, and 'large-update': copies of an update over 64 KiB in pushes. */
  readonly received: Map<string, number>;
  /** The largest blocks reply the child received (bytes of blocks). */
  readonly blocksReplyBytesMax: number;
}

/** A secondary subscribed to the ring's object whose only candidate parents are `parents`. */
function secondary(ring: Ring, nodeId: string, parents: string[], extra: Partial<SecondaryConfig> = {}): SecondaryReplica {
  return new SecondaryReplica(
    { nodeId, store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: ring.signer.trust(), executor: ring.executor, locator: new ConfigLocator(parents, []), cacheBytesMax: 256 << 20, subscriptions: [ring.aguid], ...extra },
  );
}

const detachedIn = (effects: readonly ReplicaEffect[]): ReplicaEvent[] => effects.flatMap((e) => (e.kind === 'output' && e.event.kind === 'detached' ? [e.event] : []));

/**
 * `ring.history[v]` is written at `writtenAtMs(v)` and published by root 'ring-0' (its log starts
 * at `logFrom`; below that it answers with `snapshotOf`); a fresh child ('me') whose only
 * candidate is that root joins at 0. Runs to `endMs`, or until the child holds the last version.
 */
function run(ring: Ring, options: { link: Link; endMs: number; writtenAtMs: (v: number) => number; logFrom?: number; snapshotOf?: () => Snapshot | null; child?: Partial<SecondaryConfig>; root?: { entriesPerPushMax?: number; pushBytesMax?: number; inlineBlockBytesMax?: number }; blocksServiceMs?: number | ((request: number) => number); dropPush?: (index: number) => boolean; dropBlocks?: (index: number) => boolean }): Run {
  const { aguid, history } = ring;
  const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(2), ...(options.snapshotOf ? { snapshotOf: options.snapshotOf } : {}), ...options.root });
  const child = secondary(ring, 'me', ['ring-0'], options.child);
  const inFlight: { atMs: number; seq: number; from: string; to: string; message: TreeMessage }[] = [];
  const wireFreeAtMs = new Map<string, number>();
  let seq = 0;
  const received = new Map<string, number>();
  const post = (from: string, effects: readonly ReplicaEffect[] | readonly { kind: string; to?: string; message?: TreeMessage }[], nowMs: number): void => {
    for (const e of effects) {
      if (e.kind !== 'send' || !('message' in e) || !e.message || !e.to) continue;
      const wire = `${from}>${e.to}`;
      const sentMs = Math.max(nowMs, wireFreeAtMs.get(wire) ?? -Infinity) + encodeTreeMessage(e.message).length / options.link.bytesPerMs;
      wireFreeAtMs.set(wire, sentMs);
      inFlight.push({ atMs: sentMs + options.link.latencyMs, seq: seq++, from, to: e.to, message: e.message });
    }
  };
  // Blocks replies a loaded parent sends only after blocksServiceMs, whatever their size.
  const serving: { atMs: number; to: string; message: TreeMessage }[] = [];
  let blocksRequests = 0;
  let pushesToChild = 0;
  let blocksToChild = 0;
  const rootReceive = (from: string, message: TreeMessage, nowMs: number) => {
    // Like a ring server: blocks of entries that went down by reference come from the ring's store.
    if (message.type === 'fetch-blocks') {
      if (!root.childrenOf(aguid).includes(from)) return [];
      const reply = { kind: 'send' as const, to: from, message: blocksReply(ring.blocks!, aguid, message.bguids) };
      const serviceMs = typeof options.blocksServiceMs === 'function' ? options.blocksServiceMs(blocksRequests++) : (options.blocksServiceMs ?? 0);
      if (serviceMs === 0) return [reply];
      serving.push({ atMs: nowMs + serviceMs, to: from, message: reply.message });
      return [];
    }
    return root.onMessage(from, message, nowMs);
  };
  const detached: ReplicaEvent[] = [];
  let published = 0;
  let caughtUpAtMs: number | null = null;
  let blocksReplyBytesMax = 0;
  for (let t = 0; t <= options.endMs; t += 50) {
    while (published < history.length && options.writtenAtMs(published) <= t) {
      // A root restarted at logFrom: what came before is only in its stored head (snapshotOf).
      if (published >= (options.logFrom ?? 0)) post('ring-0', root.publish(aguid, published, history[published]!.entry), t);
      published++;
    }
    if (t % 1_000 === 0 && published > 0) post('ring-0', root.publishHeartbeat(aguid, makeHeartbeat(crypto, ring.signer, aguid, history[published - 1]!, t, t / 1_000 + 1)), t);
    while (serving.length > 0 && serving[0]!.atMs <= t) post('ring-0', [{ kind: 'send', ...serving.shift()! }], t);
    inFlight.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
    while (inFlight.length > 0 && inFlight[0]!.atMs <= t) {
      const { from, to, message } = inFlight.shift()!;
      if (to !== 'ring-0' && message.type === 'push' && options.dropPush?.(pushesToChild++)) continue;
      if (to !== 'ring-0' && message.type === 'blocks' && options.dropBlocks?.(blocksToChild++)) continue;
      if (to === 'ring-0') post('ring-0', rootReceive(from, message, t), t);
      else {
        received.set(message.type, (received.get(message.type) ?? 0) + 1);
        // Copies of a large update (over 64 KiB) that came down: one is enough.
        if (message.type === 'push') for (const e of message.entries) if (e.update.length > 64 * 1024) received.set('large-update', (received.get('large-update') ?? 0) + 1);
        if (message.type === 'blocks') blocksReplyBytesMax = Math.max(blocksReplyBytesMax, message.blocks.reduce((n, b) => n + b.length, 0));
        const effects = child.onMessage(from, message, t);
        detached.push(...detachedIn(effects));
        post('me', effects, t);
      }
    }
    const effects = child.onTick(t);
    detached.push(...detachedIn(effects));
    post('me', effects, t);
    post('ring-0', root.onTick(t), t);
    if (caughtUpAtMs === null && published > 0 && child.copyOf(aguid)!.nextVersion >= published) caughtUpAtMs = t;
    if (published === history.length && child.copyOf(aguid)!.nextVersion === history.length) break;
  }
  return { detached, caughtUpAtMs, child, received, blocksReplyBytesMax };
}

/** The head just below `logFrom` (what a ring server restarted there snapshots from its store). */
function storedHead(ring: Ring, logFrom: number): Snapshot {
  // The stored head a ring server would snapshot: the version just below the log, built by a copy.
  const holder = secondary(ring, 'holder', ['x'], { logEntriesMax: 1 });
  holder.onTick(0);
  holder.onMessage('x', { type: 'attach-ok', aguid: ring.aguid, path: ['x'], nextVersion: logFrom }, 0);
  for (let v = 0; v < logFrom; v += 32) holder.onMessage('x', { type: 'push', aguid: ring.aguid, entries: ring.history.slice(v, Math.min(v + 32, logFrom)).map((h) => h.entry) }, 0);
  return holder.copyOf(ring.aguid)!.snapshot()!;
}

function smallRing(versionCount: number, appendBytes: number): Ring {
  const signer = new TestRingSigner(crypto, 'fake', 12);
  const object = testObject(crypto, 'toy', 12);
  return { signer, aguid: object.aguid, executor: object.executor, history: buildHistory(crypto, signer, object, { versionCount, appendBytes, seed: 12 }) };
}

const oneASecond = (alreadyWritten: number) => (v: number): number => (v < alreadyWritten ? 0 : (v - alreadyWritten + 1) * 1_000);

describe('an honest parent serving a long gap is never left', () => {
  it('500 versions behind, pushes of 32 entries over an 800 ms round trip while the ring writes one a second: caught up, never left', () => {
    const ring = smallRing(560, 200);
    const result = run(ring, { link: { latencyMs: 400, bytesPerMs: 1_000 }, endMs: 120_000, writtenAtMs: oneASecond(500) });
    expect(result.detached).toEqual([]);
    expect(result.caughtUpAtMs).not.toBeNull();
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
  });

  it('pushes cut by bytes (pushBytesMax 16 KiB, ~3 KiB entries: 4 or 5 a push) over a 1.6 s round trip: caught up, never left', () => {
    const ring = smallRing(330, 3_000);
    const limits = { entriesPerPushMax: 32, pushBytesMax: 16 * 1024 };
    const result = run(ring, { link: { latencyMs: 800, bytesPerMs: 1_000 }, endMs: 400_000, writtenAtMs: oneASecond(300), root: limits, child: limits });
    expect(result.detached).toEqual([]);
    expect(result.caughtUpAtMs).not.toBeNull();
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
    // Each push really was cut by bytes (a push of 32 would have been one per 32 versions).
    expect(result.received.get('push')!).toBeGreaterThan(300 / 6);
  });
});

describe('an honest parent whose answer is lost is not left', () => {
  it('40 versions behind over a 500 ms round trip, the first two answers to fetches lost: asked again (fetchReplyTimeoutMs) and never left', () => {
    const ring = smallRing(60, 3_000);
    // Pushes 0 and 1: the gap fill of the attach and the first fetch's answer (the root pushes nothing live until v40).
    const result = run(ring, { link: { latencyMs: 250, bytesPerMs: 10 * 1024 }, endMs: 60_000, writtenAtMs: oneASecond(40), dropPush: (i) => i === 1 || i === 2 });
    expect(result.detached).toEqual([]);
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
  });
});

describe('an honest parent whose blocks answer is lost', () => {
  // Fifth review: with no model, a request was asked again only after 2 s (what 256 KiB takes at
  // 128 KiB/s), too late for a 2-block version's 2.2 s wait (left once, 13.7 s); asked again at
  // 1 s instead (before), a 4 MiB block still on a 2.5 MiB/s link got a copy that made the next
  // answer late (left 3-5 times). Now half the wait at most, and the next answer waited for longer.
  it('2 blocks of 256 KiB served 0.5 s late, the first answer lost; and 16 MiB in 4 MiB blocks at 2.5 MiB/s: never left', () => {
    const small = largeRing(256 * 1024, 2, 20);
    const lost = run(small, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 60_000, writtenAtMs: oneASecond(2), blocksServiceMs: 500, dropBlocks: (i) => i === 0 });
    expect(lost.detached).toEqual([]);
    expect(lost.child.copyOf(small.aguid)!.nextVersion).toBe(small.history.length);
    const large = largeRing(4 * 1024 * 1024, 4, 20);
    const slow = run(large, { link: { latencyMs: 5, bytesPerMs: 2.5 * 1024 }, endMs: 60_000, writtenAtMs: oneASecond(2) });
    expect(slow.detached).toEqual([]);
    expect(slow.child.copyOf(large.aguid)!.nextVersion).toBe(large.history.length);
  }, 60_000);

  // The request is asked again (the same blocks, once) after blocksReplyTimeoutMs (1 s) and twice
  // what it should take. Before the review fix (asked again only once the wait ran out) the child
  // left in every such case; with a fixed 3 s, in 4 of 12 of the sweep below.
  for (const { blockCount, serviceMs, lost } of [{ blockCount: 16, serviceMs: 0, lost: 2 }, { blockCount: 64, serviceMs: 1_000, lost: 2 }, { blockCount: 16, serviceMs: 1_000, lost: 0 }]) {
    it(`${blockCount / 4} MiB, blocks served ${serviceMs} ms late, answer ${lost} lost: asked again and never left`, () => {
      const ring = largeRing(256 * 1024, blockCount, 20);
      const result = run(ring, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs, dropBlocks: (i) => i === lost });
      expect(result.detached).toEqual([]);
      expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
    }, 60_000);
  }

  it.runIf(process.env.TREE_LINK_SWEEP)('slow-link sweep: two answers in a row lost, and large blocks', () => {
    for (const serviceMs of [1_000, 1_500, 2_500]) {
      const ring = largeRing(256 * 1024, 64, 20);
      const result = run(ring, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs, dropBlocks: (i) => i === 2 || i === 3 });
      console.log(`16 MiB, served after ${serviceMs} ms, answers 2 and 3 lost: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left ${result.detached.length}`);
    }
    for (const blockCount of [2, 4]) {
      const ring = largeRing(256 * 1024, blockCount, 20);
      const result = run(ring, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2), blocksServiceMs: 500, dropBlocks: (i) => i === 0 });
      console.log(`${blockCount} blocks of 256 KiB, served after 500 ms, the first answer lost: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left ${result.detached.length}`);
    }
    for (const mibPerS of [2.5, 5]) {
      for (const blockMiB of [1, 4]) {
        const ring = largeRing(blockMiB * 1024 * 1024, 16 / blockMiB, 20);
        const result = run(ring, { link: { latencyMs: 5, bytesPerMs: mibPerS * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2) });
        console.log(`16 MiB in ${blockMiB} MiB blocks at ${mibPerS} MiB/s: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left ${result.detached.length}`);
      }
    }
  }, 600_000);

  it.runIf(process.env.TREE_LINK_SWEEP)('slow-link sweep: one blocks answer lost', () => {
    for (const blockCount of [16, 64]) {
      for (const serviceMs of [0, 1_000]) {
        for (const lost of [0, 2, 4]) {
          const ring = largeRing(256 * 1024, blockCount, 20);
          const result = run(ring, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs, dropBlocks: (i) => i === lost });
          const left = result.detached.map((d) => (d.kind === 'detached' ? d.reason : d.kind));
          console.log(`${blockCount / 4} MiB, served after ${serviceMs} ms, answer ${lost} lost: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left: ${left.join(', ') || 'none'}`);
        }
      }
    }
  }, 600_000);
});

/** A small deterministic generator (service times in the sweeps). */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('an honest parent whose service time varies', () => {
  // Third review (at 70a6e86): one answer 1.5 s late on a 0.6 MiB/s link had its request asked again; the copy
  // queued in front of the next answer, which then read as a 2.4 s fixed part on a fast link, and
  // requests grew to 14 blocks (5.8 s on the wire): left as silent 14 times, never caught up.
  it('16 MiB at 0.6 MiB/s, one blocks answer 1.5 s late: never left', () => {
    const ring = largeRing(256 * 1024, 64, 20);
    const result = run(ring, { link: { latencyMs: 5, bytesPerMs: 0.6 * 1024 }, endMs: 200_000, writtenAtMs: oneASecond(2), blocksServiceMs: (i) => (i === 3 ? 1_500 : 0) });
    expect(result.detached).toEqual([]);
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
  }, 60_000);

  // Third review (at 70a6e86): with the service time drawn from 200-700 ms, 3 of these 6 seeds
  // never caught up (left 13-14 times: a model fooled by the jitter sized requests the parent
  // could not answer in time, the same again after every re-attach, and heartbeats queued behind
  // them); with 0-1500 ms, 4 of 6.
  it('16 MiB at 0.6 MiB/s from a parent whose service time varies (200-700 ms, six seeds): never left', () => {
    for (let seed = 1; seed <= 6; seed++) {
      const r = lcg(seed);
      const ring = largeRing(256 * 1024, 64, 20);
      const result = run(ring, { link: { latencyMs: 5, bytesPerMs: 0.6 * 1024 }, endMs: 200_000, writtenAtMs: oneASecond(2), blocksServiceMs: () => 200 + r() * 500 });
      expect(result.detached).toEqual([]);
      expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
    }
  }, 60_000);

  it.runIf(process.env.TREE_LINK_SWEEP)('slow-link sweep: service times that vary', () => {
    const cases = [
      { mibPerS: 0.6, lowMs: 200, highMs: 700 },
      { mibPerS: 0.6, lowMs: 0, highMs: 1_500 },
      { mibPerS: 5, lowMs: 0, highMs: 3_000 },
      { mibPerS: 10, lowMs: 1_000, highMs: 2_000 },
      { mibPerS: 10, lowMs: 2_000, highMs: 3_000 },
    ];
    for (const { mibPerS, lowMs, highMs } of cases) {
      const lines: string[] = [];
      for (let seed = 1; seed <= 6; seed++) {
        const r = lcg(seed);
        const ring = largeRing(256 * 1024, 64, 20);
        const result = run(ring, { link: { latencyMs: 5, bytesPerMs: mibPerS * 1024 }, endMs: 200_000, writtenAtMs: oneASecond(2), blocksServiceMs: () => lowMs + r() * (highMs - lowMs) });
        lines.push(`${result.caughtUpAtMs === null ? 'never' : (result.caughtUpAtMs / 1_000).toFixed(1)}${result.detached.length > 0 ? ` (left ${result.detached.length})` : ''}`);
      }
      console.log(`16 MiB at ${mibPerS} MiB/s, service ${lowMs}-${highMs} ms, seeds 1-6: ${lines.join(', ')}`);
    }
    for (const mibPerS of [0.6, 1.2, 2.5]) {
      for (const late of [3, 5, 8]) {
        for (const extraMs of [1_500, 3_000]) {
          const ring = largeRing(256 * 1024, 64, 20);
          const result = run(ring, { link: { latencyMs: 5, bytesPerMs: mibPerS * 1024 }, endMs: 200_000, writtenAtMs: oneASecond(2), blocksServiceMs: (i) => (i === late ? extraMs : 0) });
          console.log(`16 MiB at ${mibPerS} MiB/s, answer ${late} ${extraMs} ms late: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left ${result.detached.length}`);
        }
      }
    }
  }, 600_000);
});

describe('an honest parent serving a snapshot is never left', () => {
  it('a root whose log starts at v400 (restarted) sends a fresh child the stored head, then the rest: never left', () => {
    const ring = smallRing(460, 200);
    const logFrom = 400;
    const snapshot = storedHead(ring, logFrom);
    const result = run(ring, { link: { latencyMs: 400, bytesPerMs: 1_000 }, endMs: 120_000, writtenAtMs: oneASecond(logFrom), logFrom, snapshotOf: () => snapshot });
    expect(result.detached).toEqual([]);
    expect(result.child.copyOf(ring.aguid)!.snapshotsInstalled).toBe(1);
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
  });
});

function largeRing(blockBytes: number, blockCount: number, tail: number): Ring {
  return largeObjectHistory(crypto, blockBytes, blockCount, tail);
}

describe('an honest parent sending a large version by reference over a slow link is never left', () => {
  it('34 MiB in 1 MiB blocks at 2.5 MiB/s (blocks replies of 2 MiB once the link is measured, ~19.6 s in all; 4 MiB ones before session 26) while the ring writes one a second: never left', () => {
    const ring = largeRing(1024 * 1024, 34, 25);
    const result = run(ring, { link: { latencyMs: 100, bytesPerMs: 2.5 * 1024 }, endMs: 60_000, writtenAtMs: oneASecond(2) });
    expect(result.detached).toEqual([]);
    expect(result.received.get('blocks')!).toBeGreaterThanOrEqual(9);
    expect(result.caughtUpAtMs).not.toBeNull();
    expect(result.caughtUpAtMs!).toBeGreaterThan(15_000);
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
  }, 60_000);

  it('3 MiB in 1 KiB blocks (a root inlining only up to 1 MiB; 1,024 blocks, 1 MiB, a reply) at 1 MiB/s while the ring writes one a second: never left', () => {
    const ring = largeRing(1024, 3 * 1024, 25);
    const result = run(ring, { link: { latencyMs: 100, bytesPerMs: 1024 }, endMs: 60_000, writtenAtMs: oneASecond(2), root: { inlineBlockBytesMax: 1024 * 1024 } });
    expect(result.detached).toEqual([]);
    expect(result.received.get('blocks')!).toBeGreaterThanOrEqual(3);
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
  }, 60_000);

  it('9 MiB in 1 KiB blocks (a ~400 KB update) at 0.6 MiB/s while the ring writes one a second: never left, and the update is not sent again while its blocks come', () => {
    const ring = largeRing(1024, 9 * 1024, 40);
    const result = run(ring, { link: { latencyMs: 100, bytesPerMs: 0.6 * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2) });
    expect(result.detached).toEqual([]);
    expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
    // Before (fetches and renewals from the awaited version): never caught up in 120 s, left six
    // times, 179 pushes, most of them version 1's update again; now caught up at ~21.7 s. The
    // copies left are the ones asked for before the first arrived (a fetch on the next heartbeat,
    // a renewal): 3, however long the blocks then take.
    expect(result.received.get('large-update')).toBeLessThanOrEqual(3);
    expect(result.caughtUpAtMs!).toBeLessThan(40_000);
  }, 120_000);

});

describe('what a child asks its parent for while a large version\'s blocks come', () => {
  it('fetches and renewals ask from past it and the entries held after it, and none is sent with no room for the answer', () => {
    const ring = largeRing(1024, 2 * 1024, 6);
    const { aguid, history } = ring;
    const child = (pendingEntriesMax?: number) => {
      const c = secondary(ring, 'me', ['ring-0'], pendingEntriesMax ? { pendingEntriesMax } : {});
      c.onTick(0);
      c.onMessage('ring-0', { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: history.length }, 10);
      // Version 1 by reference (its blocks are never answered here): the copy awaits them.
      const byReference = history.slice(0, 2).map((h) => ({ ...h.entry, blocks: [] }));
      const sent = c.onMessage('ring-0', { type: 'push', aguid, entries: byReference }, 20);
      expect(sent.some((e) => e.kind === 'send' && e.message.type === 'fetch-blocks')).toBe(true);
      return c;
    };
    // Over 1.6 s: a renewal (every second) and a fetch asked again (fetchReplyTimeoutMs, 1.2 s).
    const asks = (c: SecondaryReplica, fromMs: number) => {
      const out: string[] = [];
      for (let t = fromMs; t <= fromMs + 1_600; t += 50) {
        for (const e of c.onTick(t)) {
          if (e.kind !== 'send') continue;
          if (e.message.type === 'fetch') out.push(`fetch ${e.message.fromVersion}`);
          if (e.message.type === 'attach') out.push(`renew ${e.message.nextVersion}`);
        }
      }
      return [...new Set(out)].sort();
    };
    const heartbeat = (c: SecondaryReplica, version: number, t: number) => c.onMessage('ring-0', { type: 'heartbeat', aguid, heartbeat: makeHeartbeat(crypto, ring.signer, aguid, history[version]!, t, t) }, t);
    const push = (c: SecondaryReplica, versions: number[], t: number) => c.onMessage('ring-0', { type: 'push', aguid, entries: versions.map((v) => history[v]!.entry) }, t);

    // Version 3 known: asked from 2, not again from the awaited 1.
    const a = child();
    heartbeat(a, 3, 100);
    expect(asks(a, 150)).toEqual(['fetch 2', 'renew 2']);
    // Versions 2 and 3 held early: nothing known is missing, so no fetch; renewals from 4.
    push(a, [2, 3], 1_800);
    expect(asks(a, 1_850)).toEqual(['renew 4']);
    // Version 5 known: asked from 4.
    heartbeat(a, 5, 3_500);
    expect(asks(a, 3_550)).toEqual(['fetch 4', 'renew 4']);

    // Room for only two early entries, both used: no fetch (its answer would be dropped).
    const b = child(2);
    push(b, [2, 3], 100);
    heartbeat(b, 5, 150);
    expect(asks(b, 200)).toEqual(['renew 4']);
  });

});

describe('slow tree links: a large version goes by reference, its blocks in replies sized to the link', () => {
  // Before (sessions 1-25): inline up to 8 MiB, blocks replies up to 4 MiB. 4 MiB at 0.6 MiB/s
  // caught up at 76.2 s after leaving once; 4 MiB at 1.2 MiB/s at 44.0 s after leaving three
  // times; 7 MiB at 0.6 MiB/s never. With only the inline bound lowered (4 MiB replies), 4 MiB
  // at 1.2 MiB/s and everything at 0.6 MiB/s never caught up: both halves are needed.
  const cases = [
    { mib: 4, mibPerS: 0.6, withinMs: 20_000 },
    { mib: 4, mibPerS: 1.2, withinMs: 12_000 },
    { mib: 7, mibPerS: 0.6, withinMs: 32_000 },
    { mib: 7, mibPerS: 2.5, withinMs: 10_000 },
  ];
  for (const { mib, mibPerS, withinMs } of cases) {
    it(`${mib} MiB in 256 KiB blocks at ${mibPerS} MiB/s while the ring writes one a second: never left, caught up within ${withinMs / 1_000} s, no blocks reply over ~1.5 s of the link`, () => {
      const ring = largeRing(256 * 1024, mib * 4, 40);
      const result = run(ring, { link: { latencyMs: 100, bytesPerMs: mibPerS * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2) });
      expect(result.detached).toEqual([]);
      expect(result.caughtUpAtMs).not.toBeNull();
      expect(result.caughtUpAtMs!).toBeLessThan(withinMs);
      expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
      expect(result.received.get('large-update') ?? 0).toBe(0);
      expect(result.blocksReplyBytesMax).toBeLessThanOrEqual(Math.max(256 * 1024, mibPerS * 1024 * 1024 * 1.5));
    }, 60_000);
  }

  // A loaded parent: every blocks answer comes after a fixed service time, whatever its size. The
  // first pacer (323d9df, review) took the wait for a slow link: from 1 s on, requests stayed one
  // block (16 MiB in 70 s at 1 s; never, at 2.2 s: left 37 times). With 4 MiB requests (session
  // 25): 6.2 s and 14.2 s on the fast link, never at 0.6 MiB/s.
  for (const { mibPerS, serviceMs, withinMs } of [
    { mibPerS: 10, serviceMs: 1_000, withinMs: 15_000 },
    { mibPerS: 10, serviceMs: 3_000, withinMs: 40_000 },
    { mibPerS: 0.6, serviceMs: 1_000, withinMs: 90_000 },
  ]) {
    it(`16 MiB in 256 KiB blocks at ${mibPerS} MiB/s from a parent that serves blocks ${serviceMs / 1_000} s late: never left, caught up within ${withinMs / 1_000} s`, () => {
      const ring = largeRing(256 * 1024, 64, 20);
      const result = run(ring, { link: { latencyMs: 5, bytesPerMs: mibPerS * 1024 }, endMs: 300_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs });
      expect(result.detached).toEqual([]);
      expect(result.caughtUpAtMs).not.toBeNull();
      expect(result.caughtUpAtMs!).toBeLessThan(withinMs);
      expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
    }, 60_000);
  }

  it('what a slow parent gets: its first answer within gapTimeoutMs + 100 ms a block missing (3.6 s here), later ones within 1.5 times what its answers showed (2.5 s, then 3.4 s: kept; then 4.5 s, or fast then 5 s: left), never over parentBehindTimeoutMs (8 s)', () => {
    const ring = largeRing(256 * 1024, 16, 20);
    for (const serviceMs of [() => 3_400, (request: number) => (request < 3 ? 2_500 : 3_400)]) {
      const kept = run(ring, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 300_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs });
      expect(kept.detached).toEqual([]);
      expect(kept.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
    }
    for (const serviceMs of [() => 9_000, (request: number) => (request < 3 ? 3_400 : 9_000), (request: number) => (request < 2 ? 100 : 5_000), (request: number) => (request < 3 ? 2_500 : 4_500)]) {
      const left = run(ring, { link: { latencyMs: 5, bytesPerMs: 10 * 1024 }, endMs: 40_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs });
      expect(left.detached.length).toBeGreaterThan(0);
      expect(left.detached[0]!.kind === 'detached' && ['withholding', 'parent-behind'].includes(left.detached[0]!.reason)).toBe(true);
      expect(left.child.copyOf(ring.aguid)!.nextVersion).toBeLessThan(2);
    }
  }, 60_000);

  // Many versions inline (each under the 256 KiB bound) behind: the gap comes in pushes. Before
  // (pushes up to 4 MiB, a fetch asked again every 300 ms and every renewal gap-filled too), 60
  // versions of 200 KB never caught up at 0.6 or 1.2 MiB/s (left 3 and 5 times in 120 s).
  for (const { mibPerS, withinMs } of [{ mibPerS: 0.6, withinMs: 40_000 }, { mibPerS: 1.2, withinMs: 25_000 }]) {
    it(`60 versions of 200 KB behind at ${mibPerS} MiB/s: pushes of 512 KiB, no copy asked for while one is on the wire, never left, caught up within ${withinMs / 1_000} s`, () => {
      const ring = smallRing(80, 200_000);
      const result = run(ring, { link: { latencyMs: 100, bytesPerMs: mibPerS * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(60) });
      expect(result.detached).toEqual([]);
      expect(result.caughtUpAtMs).not.toBeNull();
      expect(result.caughtUpAtMs!).toBeLessThan(withinMs);
      expect(result.child.copyOf(ring.aguid)!.nextVersion).toBe(ring.history.length);
      // 12 MB in pushes of at most 512 KiB (2 entries), one copy each: ~30 for the gap, ~20 live.
      expect(result.received.get('push')!).toBeLessThan(60);
    }, 60_000);
  }

  it.runIf(process.env.TREE_LINK_SWEEP)('slow-link sweep: a parent slow to serve blocks', () => {
    for (const serviceMs of [0, 500, 1_000, 1_900, 2_200, 3_000]) {
      for (const mibPerS of [0.6, 5, 10]) {
        const ring = largeRing(256 * 1024, 64, 20);
        const result = run(ring, { link: { latencyMs: 5, bytesPerMs: mibPerS * 1024 }, endMs: 300_000, writtenAtMs: oneASecond(2), blocksServiceMs: serviceMs });
        const left = result.detached.map((d) => (d.kind === 'detached' ? d.reason : d.kind));
        console.log(`16 MiB at ${mibPerS} MiB/s, blocks served after ${serviceMs} ms: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left: ${left.length > 6 ? `${left.length} times` : left.join(', ') || 'none'}, blocks replies: ${result.received.get('blocks') ?? 0} (largest ${(result.blocksReplyBytesMax / 1024).toFixed(0)} KiB)`);
      }
    }
  }, 600_000);

  it.runIf(process.env.TREE_LINK_SWEEP)('slow-link sweep: 60 versions of 50 or 200 KB behind', () => {
    for (const mibPerS of [0.6, 1.2, 2.5, 5]) {
      for (const appendBytes of [50_000, 200_000]) {
        const ring = smallRing(80, appendBytes);
        const result = run(ring, { link: { latencyMs: 100, bytesPerMs: mibPerS * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(60) });
        const left = result.detached.map((d) => (d.kind === 'detached' ? d.reason : d.kind));
        console.log(`${mibPerS} MiB/s, 60 versions of ${appendBytes / 1000} KB behind: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left: ${left.join(', ') || 'none'}, pushes: ${result.received.get('push') ?? 0}`);
      }
    }
  }, 600_000);

  // A measurement, not a check (docs/replica.md "Slow tree links"): TREE_LINK_SWEEP=1 npx vitest run
  // test/replica/honest-catch-up.test.ts -t 'slow-link sweep'. A 2, 4 or 7 MiB version in 256 KiB
  // blocks over links of 0.6-5 MiB/s, sent inline (a root with the old 8 MiB bound) or by
  // reference (the defaults): when caught up, and which parents were left.
  it.runIf(process.env.TREE_LINK_SWEEP)('slow-link sweep: a 2, 4 or 7 MiB version inline or by reference', () => {
    for (const inline of [true, false]) {
      for (const mibPerS of [0.6, 1.2, 2.5, 5]) {
        for (const mib of [2, 4, 7]) {
          const ring = largeRing(256 * 1024, mib * 4, 40);
          const result = run(ring, { link: { latencyMs: 100, bytesPerMs: mibPerS * 1024 }, endMs: 120_000, writtenAtMs: oneASecond(2), ...(inline ? { root: { inlineBlockBytesMax: 8 << 20 } } : {}) });
          const left = result.detached.map((d) => (d.kind === 'detached' ? d.reason : d.kind));
          console.log(`${inline ? 'inline' : 'by reference'}, ${mibPerS} MiB/s, ${mib} MiB: caught up at ${result.caughtUpAtMs ?? 'never'} ms, left: ${left.join(', ') || 'none'}, pushes: ${result.received.get('push') ?? 0}, blocks replies: ${result.received.get('blocks') ?? 0} (largest ${(result.blocksReplyBytesMax / 1024).toFixed(0)} KiB)`);
        }
      }
    }
  }, 600_000);
});
