/**
 * Snapshots to a child below a member's log (replica/children.ts gapFill): a renewal brings none
 * if one went to that child within snapshotRepeatMs (10 s), a fetch none within snapshotResendMs
 * (1 s); the times are kept past a detach. Session-22 second review: the whole head went at every
 * renewal and fetch. Session-23 review of the first limit (10 s per child for both): a lost
 * snapshot, a restarted child and a parent that jumped ahead each made the child leave an honest
 * parent as withholding. Simulated time; the messages are wired by hand.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { BlockCache } from '../../replica/block-cache.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { ReplicaEffect } from '../../replica/events.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import { ObjectCopy } from '../../replica/object-copy.ts';
import { TreeRoot } from '../../replica/root.ts';
import { SecondaryReplica, type SecondaryConfig } from '../../replica/secondary.ts';
import { Prng } from '../../sim/prng.ts';
import { eightVersionSetup, makeHeartbeat } from './test-ring.ts';

const crypto = nodeCrypto;

const setup = () => eightVersionSetup(crypto);
type Setup = ReturnType<typeof setup>;

function member(s: Setup, near: string[], roots: string[], id = 'me', extra: Partial<SecondaryConfig> = {}): SecondaryReplica {
  return new SecondaryReplica(
    { nodeId: id, store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: s.signer.trust(), executor: s.object.executor, locator: new ConfigLocator(roots, near), cacheBytesMax: 16 << 20, subscriptions: [s.object.aguid], ...extra },
  );
}

/** The object's first `count` versions taken by a copy: its snapshot is what a member holding them sends. */
function snapshotOf(s: Setup, count: number) {
  const limits = { pendingEntriesMax: 16, pendingBytesMax: 1 << 30, logEntriesMax: 1000, logBytesMax: 1 << 30 };
  const copy = new ObjectCopy(s.object.aguid, s.signer.trust(), s.object.executor, new BlockCache(crypto, 1 << 26), limits, () => {});
  for (const h of s.history.slice(0, count)) copy.offer(h.entry, 'x');
  return copy.snapshot()!;
}

const snapshotsIn = (effects: readonly { kind: string; message?: TreeMessage }[]): number => effects.filter((e) => e.kind === 'send' && e.message?.type === 'snapshot').length;
const withholding = (log: string[]): string[] => log.filter((l) => l.includes('withholding'));

/**
 * A root restarted at v5 (its log starts there; below it, its stored head v7) and a fresh member
 * whose only candidate it is, for `endMs` in 50 ms steps, a heartbeat a second. `drop` may lose a
 * root's message; at `restartAtMs` the member restarts without its copy.
 */
function restartedRoot(options: { drop?: (m: TreeMessage) => boolean; restartAtMs?: number; endMs?: number } = {}) {
  const s = setup();
  const { aguid } = s.object;
  const latest = s.history[s.history.length - 1]!;
  const stored = snapshotOf(s, s.history.length);
  let built = 0;
  const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(4), snapshotOf: () => (built++, stored) });
  for (let v = 5; v < s.history.length; v++) root.publish(aguid, v, s.history[v]!.entry);
  let m = member(s, [], ['ring-0']);
  const log: string[] = [];
  let headAtMs: number | null = null;
  const deliver = (effects: ReplicaEffect[], t: number): void => {
    for (let queue = effects, round = 0; queue.length > 0 && round < 100; round++) {
      const next: ReplicaEffect[] = [];
      for (const e of queue) {
        if (e.kind === 'output' && e.event.kind === 'detached') log.push(`${t} detached ${e.event.reason}`);
        if (e.kind !== 'send' || e.to !== 'ring-0') continue;
        for (const r of root.onMessage('me', e.message, t)) {
          if (r.kind !== 'send') continue;
          if (options.drop?.(r.message)) continue;
          next.push(...m.onMessage('ring-0', r.message, t));
        }
      }
      queue = next;
    }
  };
  for (let t = 0, seq = 1; t <= (options.endMs ?? 30_000); t += 50) {
    if (t === options.restartAtMs) {
      m = member(s, [], ['ring-0']); // its subscription is durable, its copy is not
      headAtMs = null;
    }
    if (t % 1_000 === 0) {
      for (const e of root.publishHeartbeat(aguid, makeHeartbeat(crypto, s.signer, aguid, latest, t, seq++))) {
        if (e.kind === 'send') deliver(m.onMessage('ring-0', e.message, t), t);
      }
    }
    root.onTick(t);
    deliver(m.onTick(t), t);
    if (headAtMs === null && m.copyOf(aguid)?.head?.version === latest.version) headAtMs = t;
  }
  return { log, headAtMs, built };
}

describe('snapshots to a child below the log', () => {
  it('renewing every 500 ms for 25 s brings 3 snapshots; fetching every 300 ms (from versions 0 and 1 in turn), 1, 2, 4, 8, then 10 s apart while the head stands still (one a second before); detaching and attaching again no more (each was one a time: 51 or 84)', () => {
    const s = setup();
    const { aguid } = s.object;
    let built = 0;
    const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(4), snapshotOf: () => (built++, { certificate: s.history[4]!.entry.certificate, blocks: [] }) });
    for (let v = 5; v < s.history.length; v++) root.publish(aguid, v, s.history[v]!.entry);
    const renewals: number[] = [];
    for (let t = 0; t <= 25_000; t += 500) {
      renewals.push(snapshotsIn(root.onMessage('replica-0', { type: 'attach', aguid, nextVersion: 0 }, t)));
      root.onMessage('replica-0', { type: 'detach', aguid }, t + 1);
    }
    expect(renewals.reduce((a, b) => a + b, 0)).toBe(3);
    expect([0, 20, 40].map((i) => renewals[i])).toEqual([1, 1, 1]);
    const sentAtMs: number[] = [];
    for (let t = 30_000; t < 90_000; t += 300) {
      root.onTick(t); // expiry runs: the back-off's record must outlive its capped wait
      const renewed = snapshotsIn(root.onMessage('replica-1', { type: 'attach', aguid, nextVersion: 0 }, t)); // renewing as it goes
      // From version 0 or 1 in turn: both below the log, both the same head.
      const fetched = snapshotsIn(root.onMessage('replica-1', { type: 'fetch', aguid, fromVersion: (t / 300) % 2 }, t));
      if (renewed + fetched > 0) sentAtMs.push(t);
    }
    // The first attach, then 1, 2, 4 and 8 s on, then every 10 s (by renewal or fetch).
    expect(sentAtMs).toEqual([30_000, 31_200, 33_300, 37_500, 45_600, 55_800, 66_000, 76_200, 86_400]);
    expect(built).toBe(3 + sentAtMs.length);
  });

  it('the back-off starts over when the head moves, not when the child asks from another version', () => {
    const s = setup();
    const { aguid } = s.object;
    const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(4), snapshotOf: () => ({ certificate: s.history[4]!.entry.certificate, blocks: [] }) });
    for (let v = 5; v < 7; v++) root.publish(aguid, v, s.history[v]!.entry);
    root.onMessage('replica-1', { type: 'attach', aguid, nextVersion: 0 }, 0);
    const snapshotAt = (t: number, fromVersion = 0): number => {
      root.onMessage('replica-1', { type: 'attach', aguid, nextVersion: fromVersion }, t);
      return snapshotsIn(root.onMessage('replica-1', { type: 'fetch', aguid, fromVersion }, t));
    };
    // Backed off: after the attach's snapshot at 0, fetches got one at 1 s, 3 s, 7 s; the next waits 8 s.
    expect([1_000, 3_000, 7_000].map((t) => snapshotAt(t))).toEqual([1, 1, 1]);
    expect(snapshotAt(8_000)).toBe(0);
    // The head moves: 1 s after the last snapshot is enough again.
    root.publish(aguid, 7, s.history[7]!.entry);
    expect(snapshotAt(8_000)).toBe(1);
    expect(snapshotAt(9_000)).toBe(1);
    expect(snapshotAt(10_000)).toBe(0);
    // Asked from another version below the log: the same head, so no sooner.
    expect(snapshotAt(10_100, 1)).toBe(0);
    expect(snapshotAt(11_000, 1)).toBe(1);
  });

  it('one lost snapshot: the member fetches and gets it again within about a second, and stays with the honest root', () => {
    let lost = false;
    const run = restartedRoot({ drop: (m) => (m.type === 'snapshot' && !lost ? (lost = true) : false) });
    expect(lost).toBe(true);
    expect(run.headAtMs).not.toBeNull();
    expect(run.headAtMs!).toBeLessThanOrEqual(1_500);
    expect(withholding(run.log)).toEqual([]);
  });

  it('a member that restarts without its copy, soon after its last snapshot, gets another at its first fetch', () => {
    const run = restartedRoot({ restartAtMs: 4_000 });
    expect(run.headAtMs).not.toBeNull();
    expect(run.headAtMs!).toBeLessThanOrEqual(5_000);
    expect(withholding(run.log)).toEqual([]);
  });

  it('a parent that jumped ahead by a snapshot gives its child the new head when it fetches, not 10 s on (it was left as withholding)', () => {
    const s = setup();
    const { aguid } = s.object;
    const p = member(s, [], ['ring-0'], 'P');
    const c = member(s, ['P'], ['ring-0'], 'C');
    const log: string[] = [];
    let ringVersion = 5;
    p.onTick(0);
    p.onMessage('ring-0', { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: 6 }, 0);
    const five = snapshotOf(s, 6);
    p.onMessage('ring-0', { type: 'snapshot', aguid, certificate: five.certificate, blocks: five.blocks }, 0);
    expect(p.copyOf(aguid)!.head!.version).toBe(5);
    const deliver = (effects: ReplicaEffect[], t: number): void => {
      for (let queue = effects, round = 0; queue.length > 0 && round < 100; round++) {
        const next: ReplicaEffect[] = [];
        for (const e of queue) {
          if (e.kind === 'output' && e.event.kind === 'detached') log.push(`${t} ${e.event.parent} ${e.event.reason}`);
          if (e.kind !== 'send') continue;
          if (e.to === 'P') next.push(...p.onMessage('C', e.message, t));
          else if (e.to === 'C') next.push(...c.onMessage('P', e.message, t));
          else if (e.to === 'ring-0' && e.message.type === 'attach') next.push(...p.onMessage('ring-0', { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: ringVersion + 1 }, t));
        }
        queue = next;
      }
    };
    let sevenAtMs: number | null = null;
    for (let t = 0, seq = 1; t <= 30_000; t += 50) {
      if (t === 3_000) {
        ringVersion = 7;
        const seven = snapshotOf(s, 8);
        deliver(p.onMessage('ring-0', { type: 'snapshot', aguid, certificate: seven.certificate, blocks: seven.blocks }, t), t);
      }
      if (t % 1_000 === 0) deliver(p.onMessage('ring-0', { type: 'heartbeat', aguid, heartbeat: makeHeartbeat(crypto, s.signer, aguid, s.history[ringVersion]!, t, seq++) }, t), t);
      deliver(p.onTick(t), t);
      deliver(c.onTick(t), t);
      if (t === 2_000) expect(c.copyOf(aguid)!.head?.version).toBe(5);
      if (sevenAtMs === null && c.copyOf(aguid)!.head?.version === 7) sevenAtMs = t;
    }
    expect(withholding(log)).toEqual([]);
    expect(sevenAtMs).not.toBeNull();
    expect(sevenAtMs!).toBeLessThan(4_000);
  });

  it("a wall clock stepped back does not hold a child's snapshots back", () => {
    const s = setup();
    const { aguid } = s.object;
    const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(4), childTimeoutMs: 1_000_000, snapshotOf: () => ({ certificate: s.history[4]!.entry.certificate, blocks: [] }) });
    for (let v = 5; v < s.history.length; v++) root.publish(aguid, v, s.history[v]!.entry);
    expect(snapshotsIn(root.onMessage('replica-0', { type: 'attach', aguid, nextVersion: 0 }, 100_000))).toBe(1);
    // The root's clock steps back a minute: the child's next fetch is answered.
    expect(snapshotsIn(root.onMessage('replica-0', { type: 'fetch', aguid, fromVersion: 0 }, 40_000))).toBe(1);
    root.onTick(40_500);
    expect(snapshotsIn(root.onMessage('replica-0', { type: 'fetch', aguid, fromVersion: 0 }, 40_600))).toBe(0); // 600 ms since that one
  });

  it('a member fetching the leaves of the newest version it knows of sends no fetch meanwhile (each brought the snapshot again)', () => {
    const s = setup();
    const { aguid } = s.object;
    const latest = s.history[s.history.length - 1]!;
    const m = member(s, [], ['ring-0']);
    m.onTick(0);
    m.onMessage('ring-0', { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: 8 }, 1);
    m.onMessage('ring-0', { type: 'heartbeat', aguid, heartbeat: makeHeartbeat(crypto, s.signer, aguid, latest, 2, 1) }, 2);
    const seven = snapshotOf(s, 8);
    const byReference = seven.blocks.filter((b) => b.kind !== 'data');
    expect(byReference.length).toBeLessThan(seven.blocks.length);
    const first = m.onMessage('ring-0', { type: 'snapshot', aguid, certificate: seven.certificate, blocks: byReference }, 3);
    expect(first.some((e) => e.kind === 'send' && e.message.type === 'fetch-blocks')).toBe(true);
    const sent: string[] = [];
    for (let t = 50; t <= 1_500; t += 50) for (const e of m.onTick(t)) if (e.kind === 'send') sent.push(e.message.type);
    expect(sent.filter((type) => type === 'fetch')).toEqual([]);
    expect(m.copyOf(aguid)!.head).toBeNull();
  });

  it('a secondary takes snapshotRepeatMs from its config', () => {
    const s = setup();
    const { aguid } = s.object;
    const p = member(s, [], ['ring-0'], 'P', { snapshotRepeatMs: 0 });
    p.onTick(0);
    p.onMessage('ring-0', { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: 8 }, 1);
    const seven = snapshotOf(s, 8);
    p.onMessage('ring-0', { type: 'snapshot', aguid, certificate: seven.certificate, blocks: seven.blocks }, 2);
    expect([100, 200, 300].map((t) => snapshotsIn(p.onMessage('child', { type: 'attach', aguid, nextVersion: 0 }, t)))).toEqual([1, 1, 1]);
  });
});
