/**
 * The batch timestamp is the primary's choice (one of PBFT's non-deterministic choices);
 * backups bound it by their own clock. Before session 18 nothing did: a faulty primary proposed a
 * heartbeat batch stamped ten years ahead, every replica executed it (execution keeps the highest
 * timestamp), heartbeat certificates carried that time, and a reader's maxAgeMs check passed for
 * ten years, also after the faulty primary was replaced.
 */
import { describe, expect, it } from 'vitest';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { decode } from '../../core/codec.ts';
import { heartbeatStatementFromTuple, statementKindOf } from '../../core/threshold/statements.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { resolveParameters } from '../../ring/config.ts';
import { issue } from '../../ring/replica-requests.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const tenYearsMs = 10 * 365 * 24 * 3600 * 1000;
const aheadMaxMs = resolveParameters(undefined).timestampAheadMaxMs;

function create(c: Cluster, w: Signer, nonce: number, name: string): Uint8Array {
  const clauses: Clause[] = [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, name), writerPublicKey: w.publicKey, nonce, clauses }));
}

function objectRing(): { c: Cluster; heartbeatTimes: number[] } {
  const c = buildCluster({ seed: 71, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', parameters: { heartbeatIntervalMs: 200, requestTimeoutMs: 200, viewChangeTimeoutMs: 300 }, network: { delayMsMin: 1, delayMsMax: 2 } });
  const heartbeatTimes: number[] = [];
  c.sim.onOutput((node, event) => {
    if (event.kind !== 'certificate' || node !== 'ring-1') return;
    for (const s of event.statements) {
      const v = decode(s, 4096);
      if (statementKindOf(v) === 'heartbeat') heartbeatTimes.push(heartbeatStatementFromTuple(v).timestampMs);
    }
  });
  c.submit(0, create(c, c.clientSigners[0]!, 1, 'o'));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  return { c, heartbeatTimes };
}

describe('batch timestamps', () => {
  it('a pre-prepare stamped far ahead of a backup\'s clock is refused, the primary is replaced, and the agreed clock stays near real time', () => {
    const { c, heartbeatTimes } = objectRing();
    const r0 = c.replica(0)!;
    issue(r0, r0.nextSeq++, { timestampMs: Math.floor(c.sim.nowMs) + tenYearsMs, heartbeat: true, requests: [] });
    c.sim.runFor(1_000);
    // The backups refused it and suspected ring-0 (the slot never executed): view 1 without a crash.
    expect([1, 2, 3].map((i) => c.replica(i)!.drops.get('future-timestamp') ?? 0).every((n) => n > 0)).toBe(true);
    expect([1, 2, 3].every((i) => c.replica(i)!.view >= 1 && c.replica(i)!.viewActive)).toBe(true);
    c.sim.crash('ring-0');
    c.submit(0, create(c, c.clientSigners[0]!, 2, 'p'));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 10_000)).toBe(true);
    const marker = heartbeatTimes.length;
    c.sim.runFor(2_000);
    const now = c.sim.nowMs;
    for (const i of [1, 2, 3]) expect(c.replica(i)!.lastTimestampMs).toBeLessThanOrEqual(now);
    expect(heartbeatTimes.length).toBeGreaterThan(marker);
    for (const t of heartbeatTimes) expect(t).toBeLessThanOrEqual(now);
  });

  it('a timestamp within the bound ahead is taken (clocks differ a little), and its slot executes', () => {
    const { c } = objectRing();
    const r0 = c.replica(0)!;
    const seq = r0.nextSeq++;
    issue(r0, seq, { timestampMs: Math.floor(c.sim.nowMs) + aheadMaxMs - 10, heartbeat: true, requests: [] });
    expect(c.sim.runUntil(() => [1, 2, 3].every((i) => c.replica(i)!.lastExecuted >= seq), 1_000)).toBe(true);
    expect(c.replica(1)!.view).toBe(0);
  });
});
