/**
 * Batch timestamps far behind a backup's clock (session 24). Before, nothing bounded them: a
 * primary stamping every batch a minute in the past (faulty, or with a lagging clock) froze the
 * ring's agreed clock (execution keeps the highest timestamp), so heartbeat certificates carried an
 * ever older time: readers' maxAgeMs checks failed and tree members left honest parents. Backups
 * now refuse a new pre-prepare stamped more than timestampBehindMaxMs behind the time they first
 * received it; honest lateness (blocks fetched before the retransmission is accepted, a re-proposal
 * in a new view) is not refused.
 */
import { describe, expect, it } from 'vitest';
import { create, objectRing, update } from './heartbeat-ring.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import type { Batch, RingMessage } from '../../ring/messages.ts';
import { resolveParameters } from '../../ring/config.ts';
import { batchDigest } from '../../ring/signing.ts';
import { type Cluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

const minuteMs = 60_000;
const behindMaxMs = resolveParameters(undefined).timestampBehindMaxMs;
const block = new Uint8Array(4096).fill(5);

const appendBlock = (c: Cluster): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: bguidOf(c.crypto, 'data', block), length: block.length }] }] }];

/** Ring-0 stamps every batch it proposes `lagMs` behind its clock (its signing is the one place a batch passes). */
function stampBehind(c: Cluster, lagMs: number): void {
  const r0 = c.replica(0)!;
  const sign = r0.sign.bind(r0);
  r0.sign = (unsigned: object): unknown => {
    const m = unsigned as { kind: string; batch?: Batch | null };
    if (m.kind !== 'pre-prepare' || !m.batch) return sign(unsigned);
    const batch: Batch = { ...m.batch, timestampMs: m.batch.timestampMs - lagMs };
    return sign({ ...m, batch, digest: batchDigest(fakeCrypto, batch) });
  };
}

const pastDrops = (c: Cluster, i: number): number => c.replica(i)!.drops.get('past-timestamp') ?? 0;
const dropAll = (kind: RingMessage['kind'], to?: readonly string[]) => (m: RingMessage, dest: string): RingMessage[] =>
  m.kind === kind && (!to || to.includes(dest)) ? [] : [m];

describe('batch timestamps behind the clock', () => {
  it('a primary stamping every batch a minute in the past is refused and replaced, and the certified clock stays near real time', () => {
    const { c, heartbeatTimes } = objectRing(71, { requestTimeoutMs: 200, viewChangeTimeoutMs: 300 });
    // A minute in: the stamps are a real time, a minute ago (not below the agreed clock's start).
    c.sim.runFor(minuteMs);
    stampBehind(c, minuteMs);
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'p', create('p')));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 10_000)).toBe(true);
    const marker = heartbeatTimes.length;
    // Long enough for a frozen clock to fall the whole minute behind (it does without the check).
    c.sim.runFor(minuteMs + 5_000);
    expect([1, 2, 3].every((i) => pastDrops(c, i) > 0)).toBe(true);
    expect([1, 2, 3].every((i) => c.replica(i)!.view >= 1 && c.replica(i)!.viewActive)).toBe(true);
    const now = c.sim.nowMs;
    // Before the check: view 0 throughout, and lastTimestampMs and the certified heartbeats a
    // minute behind (measured: 60.0 s for both); with it 6 ms and 206 ms (seed 71).
    for (const i of [0, 1, 2, 3]) expect(now - c.replica(i)!.lastTimestampMs).toBeLessThan(behindMaxMs);
    expect(heartbeatTimes.length).toBeGreaterThan(marker);
    expect(now - heartbeatTimes[heartbeatTimes.length - 1]!).toBeLessThan(behindMaxMs);
  });

  it('a pre-prepare whose blocks arrive later than timestampBehindMaxMs is judged from its first receipt: accepted, no view change', () => {
    // Two backups lack the block and get no answer to their fetches for 3 s (bound 2 s): the slot
    // cannot prepare without them, so a refused retransmission would stall it until a view change.
    const { c } = objectRing(72, { timestampBehindMaxMs: 2_000, requestTimeoutMs: 6_000, viewChangeTimeoutMs: 600, statusIntervalMs: 100 });
    const late = ['ring-2', 'ring-3'];
    for (const id of ['ring-0', 'ring-1']) {
      c.sim.send('client-0', id, { kind: 'put-block', block });
      c.sim.setInterceptor(id, dropAll('block-data', late));
    }
    c.sim.runFor(20);
    const submittedMs = c.sim.nowMs;
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'o', appendBlock(c)));
    c.sim.runFor(3_000);
    expect(c.completed[0]).toBe(1);
    for (const id of ['ring-0', 'ring-1']) c.sim.setInterceptor(id, null);
    expect(c.sim.runUntil(() => c.completed[0] === 2, 2_000)).toBe(true);
    expect(c.sim.nowMs - submittedMs).toBeGreaterThan(3_000);
    expect([0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges)).toEqual([0, 0, 0, 0]);
    expect([2, 3].every((i) => (c.replica(i)!.drops.get('missing-blocks') ?? 0) > 0)).toBe(true);
    expect([0, 1, 2, 3].map((i) => pastDrops(c, i))).toEqual([0, 0, 0, 0]);
  });

  it('a batch prepared in one view and re-proposed in the next with its old timestamp is not refused', () => {
    // Commits are lost until the view changes: the batch is prepared everywhere, decided nowhere,
    // and the new view (over 3 s later, bound 2 s) re-proposes it with its old stamp.
    const { c } = objectRing(73, { timestampBehindMaxMs: 2_000, requestTimeoutMs: 3_000, viewChangeTimeoutMs: 600, statusIntervalMs: 100 });
    for (const id of c.replicaIds) c.sim.setInterceptor(id, dropAll('commit'));
    const seq = c.replica(0)!.nextSeq;
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'p', create('p')));
    expect(c.sim.runUntil(() => [1, 2, 3].every((i) => c.replica(i)!.slots.get(seq)?.prepared), 1_000)).toBe(true);
    const stampMs = c.replica(1)!.slots.get(seq)!.prepared!.prePrepare.batch!.timestampMs;
    c.sim.crash('ring-0');
    // Commits flow again only once the backups have left view 0 (the view change voids them).
    expect(c.sim.runUntil(() => [1, 2, 3].every((i) => c.replica(i)!.view >= 1), 5_000)).toBe(true);
    for (const id of c.replicaIds) c.sim.setInterceptor(id, null);
    expect(c.sim.runUntil(() => c.completed[0] === 2, 10_000)).toBe(true);
    for (const i of [1, 2, 3]) {
      expect(c.replica(i)!.view).toBeGreaterThanOrEqual(1);
      expect(c.replica(i)!.slots.get(seq)?.committed?.prePrepare.batch!.timestampMs).toBe(stampMs);
      expect(pastDrops(c, i)).toBe(0);
    }
    expect(c.sim.nowMs - stampMs).toBeGreaterThan(2_000);
  });
});
