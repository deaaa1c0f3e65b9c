/**
 * Subscriptions a read opens (subscribeOnRead) end: one read used to pin the object's head in
 * the cache, and keep its log and its place in the tree, for good, across restarts too
 * (session-22 review, finding 5). subscribe()'s subscriptions are for good.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { toHex } from '../../core/bytes.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { ReplicaEffect } from '../../replica/events.ts';
import { SecondaryReplica, type SecondaryConfig } from '../../replica/secondary.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, makeHeartbeat, testObject, type TestObject, type HistoryVersion } from './test-ring.ts';

const crypto = nodeCrypto;
const signer = new TestRingSigner(crypto, 'fake', 9);
const objects = [1, 2, 3].map((seed) => {
  const object = testObject(crypto, 'core', 90 + seed);
  return { object, history: buildHistory(crypto, signer, object, { versionCount: 4, appendBytes: 20_000, seed }) };
});

function member(store: MemoryKvStore, nowMs: number, extra: Partial<SecondaryConfig> = {}): SecondaryReplica {
  return new SecondaryReplica(
    { nodeId: 'me', store, random: new Prng(1), nowMs },
    { crypto, trust: signer.trust(), executor: objects[0]!.object.executor, locator: new ConfigLocator(['P'], []), cacheBytesMax: 16 << 20, readSubscriptionIdleMs: 10_000, ...extra },
  );
}

/** A read of `o` at `t`, then whatever it takes for the member to attach to P and take o's history. */
function readAndFollow(m: SecondaryReplica, o: { object: TestObject; history: HistoryVersion[] }, t: number): void {
  const { aguid } = o.object;
  m.onMessage('client-r', { type: 'read', requestId: 1, aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, t);
  m.onTick(t);
  m.onMessage('P', { type: 'attach-ok', aguid, path: ['P'], nextVersion: o.history.length }, t + 1);
  m.onMessage('P', { type: 'push', aguid, entries: o.history.map((h) => h.entry) }, t + 2);
  expect(m.copyOf(aguid)?.head?.version).toBe(o.history.length - 1);
}

/** P's heartbeat for `o` at `t` (it keeps the member attached), then a tick. */
function beatAndTick(m: SecondaryReplica, o: { object: TestObject; history: HistoryVersion[] }, t: number): ReplicaEffect[] {
  const heartbeat = makeHeartbeat(crypto, signer, o.object.aguid, o.history[o.history.length - 1]!, t, 1000 + t);
  return [...m.onMessage('P', { type: 'heartbeat', aguid: o.object.aguid, heartbeat }, t), ...m.onTick(t)];
}

const subscriptionKeys = (store: MemoryKvStore): string[] => store.keys('replica/sub/');

function sentTo(effects: ReplicaEffect[], to: string, type: string): boolean {
  return effects.some((e) => e.kind === 'send' && e.to === to && e.message.type === type);
}

describe('subscriptions opened by reads', () => {
  it('end after readSubscriptionIdleMs without reads and without children: detached, children sent away, head unpinned, forgotten, across restarts', () => {
    const store = new MemoryKvStore();
    const o = objects[0]!;
    const { aguid } = o.object;
    const m = member(store, 0);
    readAndFollow(m, o, 0);
    expect(subscriptionKeys(store)).toHaveLength(1);
    const headBlock = [...m.cache.bguids()].find((b) => m.cache.isPinned(b))!;
    expect(sentTo(m.onMessage('replica-c', { type: 'attach', aguid, nextVersion: o.history.length }, 3), 'replica-c', 'attach-ok')).toBe(true);
    const renew = (t: number): void => void m.onMessage('replica-c', { type: 'attach', aguid, nextVersion: o.history.length }, t);
    let ended: ReplicaEffect[] = [];
    for (let t = 1_000; t <= 60_000 && m.copyOf(aguid); t += 1_000) {
      if (t === 5_000) m.onMessage('client-r', { type: 'read', requestId: 2, aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, t);
      if (t <= 30_000) renew(t); // a child follows it through us until 30 s
      ended = beatAndTick(m, o, t);
      if (t === 29_000) {
        // Restarted from (a copy of) the store: still a read's subscription, ending 10 s after the restart.
        const copied = new MemoryKvStore();
        for (const key of store.keys('')) copied.put(key, store.get(key)!);
        const restarted = member(copied, t);
        for (let u = t; u <= t + 10_000; u += 1_000) restarted.onTick(u);
        expect(restarted.copyOf(aguid)).toBeDefined();
        restarted.onTick(t + 11_000);
        expect(restarted.copyOf(aguid)).toBeUndefined();
        expect(subscriptionKeys(copied)).toEqual([]);
      }
    }
    // Last read at 5 s, child gone after 30 s (+ childTimeoutMs 3 s): ended once both are 10 s old.
    expect(m.copyOf(aguid)).toBeUndefined();
    expect(sentTo(ended, 'P', 'detach')).toBe(true);
    expect(m.cache.isPinned(headBlock)).toBe(false);
    expect(m.counters.get('read-subscription-idle')).toBe(1);
    expect(subscriptionKeys(store)).toEqual([]);
    expect(member(store, 50_000).copyOf(aguid)).toBeUndefined();
  });

  it('a child attached when the subscription ends is refused at once, so it re-parents', () => {
    const store = new MemoryKvStore();
    const o = objects[0]!;
    const { aguid } = o.object;
    const m = member(store, 0, { readSubscriptionBytesMax: 1 });
    readAndFollow(m, o, 0);
    readAndFollow(m, objects[1]!, 10); // over the 1-byte budget: the older one goes at the next sweep
    m.onMessage('replica-c', { type: 'attach', aguid, nextVersion: o.history.length }, 20);
    const effects = m.onTick(1_500);
    expect(m.copyOf(aguid)).toBeUndefined();
    expect(sentTo(effects, 'replica-c', 'attach-refused')).toBe(true);
    expect(sentTo(effects, 'P', 'detach')).toBe(true);
  });

  it('pin at most readSubscriptionBytesMax together: the least recently read end first, the most recent stays', () => {
    const store = new MemoryKvStore();
    const probe = member(new MemoryKvStore(), 0);
    readAndFollow(probe, objects[0]!, 0);
    const headBytes = probe.copyOf(objects[0]!.object.aguid)!.pinnedBytes;
    expect(headBytes).toBeGreaterThan(60_000);
    const m = member(store, 0, { readSubscriptionBytesMax: Math.floor(headBytes * 2.5) });
    objects.forEach((o, i) => readAndFollow(m, o, 10 * i));
    // objects[0] read again last: objects[1] is now the least recently read.
    m.onMessage('client-r', { type: 'read', requestId: 3, aguid: objects[0]!.object.aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, 100);
    m.onTick(1_000);
    expect(objects.map((o) => m.copyOf(o.object.aguid) !== undefined)).toEqual([true, false, true]);
    expect(m.counters.get('read-subscription-over-budget')).toBe(1);
    expect(subscriptionKeys(store)).toHaveLength(2);
  });

  it('an object closed for the byte budget is not followed again by reads for readSubscriptionCooldownMs (reads going round did fetch every head at every read)', () => {
    const m = member(new MemoryKvStore(), 0, { readSubscriptionBytesMax: 1, readSubscriptionCooldownMs: 60_000 });
    const [a, b] = [objects[0]!, objects[1]!];
    readAndFollow(m, a, 0);
    readAndFollow(m, b, 10);
    m.onTick(1_000);
    expect(m.copyOf(a.object.aguid)).toBeUndefined();
    const read = (t: number): ReplicaEffect[] => m.onMessage('client-r', { type: 'read', requestId: t, aguid: a.object.aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, t);
    for (const t of [2_000, 30_000, 60_000]) {
      const asked = [...read(t), ...m.onTick(t)].filter((e) => e.kind === 'send' && e.message.type === 'attach' && toHex(e.message.aguid) === toHex(a.object.aguid));
      expect(asked).toEqual([]);
      expect(m.copyOf(a.object.aguid)).toBeUndefined();
    }
    read(61_001);
    expect(m.copyOf(a.object.aguid)).toBeDefined(); // cooled down: followed again
    expect(m.counters.get('read-subscription-over-budget')).toBe(1);
  });

  it('the cooldown doubles at each further close of the object (up to readSubscriptionIdleMs): objects read every 100 s stop being followed', () => {
    const m = member(new MemoryKvStore(), 0, { readSubscriptionBytesMax: 1, readSubscriptionCooldownMs: 60_000, readSubscriptionIdleMs: 900_000 });
    let opened = 0;
    let reads = 0;
    // Three objects over a 1-byte budget, each read every 100 s (a read of each, 1 s apart).
    for (let t = 0; t <= 1_800_000; t += 100_000) {
      objects.forEach((o, i) => {
        const at = t + 1_000 * i;
        const effects = m.onMessage('client-r', { type: 'read', requestId: reads++, aguid: o.object.aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, at);
        effects.push(...m.onTick(at));
        if (effects.some((e) => e.kind === 'send' && e.message.type === 'attach' && toHex(e.message.aguid) === toHex(o.object.aguid))) {
          opened++;
          m.onMessage('P', { type: 'attach-ok', aguid: o.object.aguid, path: ['P'], nextVersion: o.history.length }, at);
          m.onMessage('P', { type: 'push', aguid: o.object.aguid, entries: o.history.map((h) => h.entry) }, at);
        }
      });
    }
    // 7 of the 57 reads open one (and fetch the head); with the fixed 60 s cooldown 20 did.
    expect(reads).toBe(57);
    expect(opened).toBeLessThanOrEqual(10);
  });

  it('the cooldown starts again from readSubscriptionCooldownMs once the object was left alone for a cooldown', () => {
    const m = member(new MemoryKvStore(), 0, { readSubscriptionBytesMax: 1, readSubscriptionCooldownMs: 60_000, readSubscriptionIdleMs: 900_000 });
    const a = objects[0]!;
    const followed = (t: number): boolean => {
      m.onMessage('client-r', { type: 'read', requestId: t, aguid: a.object.aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, t);
      return m.copyOf(a.object.aguid) !== undefined;
    };
    /** a followed at t, then `other` read after it: a goes over the budget at the next sweep. */
    const closeA = (t: number, other: (typeof objects)[number]): void => {
      // The other subscriptions went quiet meanwhile: their parent, P, is left as silent and shunned
      // 10 s (distrustSilentMs); let that pass first.
      if (t > 0) m.onTick(t - 20_000);
      readAndFollow(m, a, t);
      readAndFollow(m, other, t + 10);
      m.onTick(t + 1_000);
      expect(m.copyOf(a.object.aguid)).toBeUndefined();
    };
    closeA(0, objects[1]!); // cooldown 60 s, to 61 s
    closeA(100_000, objects[2]!); // closed again 39 s after it ended: 120 s, to 221 s
    expect(followed(200_000)).toBe(false);
    // A day later, closed again: 60 s, not 240 s.
    closeA(86_400_000, objects[1]!);
    expect(followed(86_400_000 + 61_002)).toBe(true);
  });

  it("subscribe()'s subscriptions never end, and subscribe() makes a read's subscription one of them", () => {
    const store = new MemoryKvStore();
    const m = member(store, 0, { readSubscriptionBytesMax: 1 });
    readAndFollow(m, objects[0]!, 0);
    m.subscribe(objects[0]!.object.aguid);
    m.subscribe(objects[1]!.object.aguid);
    m.onTick(1);
    for (const o of objects.slice(0, 2)) {
      m.onMessage('P', { type: 'attach-ok', aguid: o.object.aguid, path: ['P'], nextVersion: o.history.length }, 2);
      m.onMessage('P', { type: 'push', aguid: o.object.aguid, entries: o.history.map((h) => h.entry) }, 3);
    }
    for (let t = 1_000; t <= 60_000; t += 1_000) m.onTick(t);
    expect(objects.slice(0, 2).every((o) => m.copyOf(o.object.aguid)?.head !== null)).toBe(true);
    expect(member(store, 60_000).copyOf(objects[0]!.object.aguid)).toBeDefined();
  });
});
