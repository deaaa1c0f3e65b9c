/**
 * The batch timestamp is the primary's choice (one of PBFT's non-deterministic choices);
 * backups bound it by their own clock. Before session 18 nothing did: a faulty primary proposed a
 * heartbeat batch stamped ten years ahead, every replica executed it (execution keeps the highest
 * timestamp), heartbeat certificates carried that time, and a reader's maxAgeMs check passed for
 * ten years, also after the faulty primary was replaced.
 */
import { describe, expect, it } from 'vitest';
import { create, objectRing, update } from './heartbeat-ring.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { Batch, PrePrepare } from '../../ring/messages.ts';
import { batchDigest } from '../../ring/signing.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { resolveParameters } from '../../ring/config.ts';
import { issue } from '../../ring/replica-requests.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';

const tenYearsMs = 10 * 365 * 24 * 3600 * 1000;
const aheadMaxMs = resolveParameters(undefined).timestampAheadMaxMs;

describe('batch timestamps', () => {
  it('a pre-prepare stamped far ahead of a backup\'s clock is refused, the primary is replaced, and the agreed clock stays near real time', () => {
    const { c, heartbeatTimes } = objectRing(71, { requestTimeoutMs: 200, viewChangeTimeoutMs: 300 });
    const r0 = c.replica(0)!;
    issue(r0, r0.nextSeq++, { timestampMs: Math.floor(c.sim.nowMs) + tenYearsMs, heartbeat: true, requests: [] });
    c.sim.runFor(1_000);
    // The backups refused it and suspected ring-0 (the slot never executed): view 1 without a crash.
    expect([1, 2, 3].map((i) => c.replica(i)!.drops.get('future-timestamp') ?? 0).every((n) => n > 0)).toBe(true);
    expect([1, 2, 3].every((i) => c.replica(i)!.view >= 1 && c.replica(i)!.viewActive)).toBe(true);
    c.sim.crash('ring-0');
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'p', create('p')));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 10_000)).toBe(true);
    const marker = heartbeatTimes.length;
    c.sim.runFor(2_000);
    const now = c.sim.nowMs;
    for (const i of [1, 2, 3]) expect(c.replica(i)!.lastTimestampMs).toBeLessThanOrEqual(now);
    expect(heartbeatTimes.length).toBeGreaterThan(marker);
    for (const t of heartbeatTimes) expect(t).toBeLessThanOrEqual(now);
  });

  it('a timestamp within the bound ahead is taken (clocks differ a little), and its slot executes', () => {
    const { c } = objectRing(71, { requestTimeoutMs: 200, viewChangeTimeoutMs: 300 });
    const r0 = c.replica(0)!;
    const seq = r0.nextSeq++;
    issue(r0, seq, { timestampMs: Math.floor(c.sim.nowMs) + aheadMaxMs - 10, heartbeat: true, requests: [] });
    expect(c.sim.runUntil(() => [1, 2, 3].every((i) => c.replica(i)!.lastExecuted >= seq), 1_000)).toBe(true);
    expect(c.replica(1)!.view).toBe(0);
  });

  it('one backup refusing a pre-prepare for a slot the primary has not filled does not leave the view alone (review 2, finding 3)', () => {
    // Before: the refused slot went on the withheld timer at once; the primary (faulty, here
    // ring-0's key signing by hand) sent it to ring-3 only, three slots ahead, and ring-3 started
    // a view change alone before that slot was reached, sitting out while the others worked on.
    const c = buildCluster({ seed: 5, f: 1, clientCount: 1, crypto: fakeCrypto, parameters: { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 }, network: { delayMsMin: 1, delayMsMax: 2 } });
    const key = kvKeyFor(c.clientSigners[0]!.publicKey, 'k');
    c.submit(0, kvOperation(key, -1, Uint8Array.of(1)));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 3_000)).toBe(true);
    const r0 = c.replica(0)!;
    const batch: Batch = { timestampMs: Math.floor(c.sim.nowMs) + 60_000, heartbeat: false, requests: [] };
    const pp = r0.sign({ kind: 'pre-prepare', view: 0, seq: r0.nextSeq + 3, digest: batchDigest(fakeCrypto, batch), replica: 0, batch }) as PrePrepare;
    c.sim.send('ring-0', 'ring-3', pp);
    for (let k = 2; k <= 6; k++) {
      c.submit(0, kvOperation(key, k - 1, Uint8Array.of(k)));
      expect(c.sim.runUntil(() => c.completed[0] === k, 3_000)).toBe(true);
      c.sim.runFor(200);
    }
    expect(c.replica(3)!.drops.get('future-timestamp')).toBe(1);
    expect([0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges)).toEqual([0, 0, 0, 0]);
    expect(c.replica(3)!.lastExecuted).toBe(c.replica(0)!.lastExecuted);
  });
});
