/**
 * A state request is answered with the whole snapshot at the stable checkpoint (up to the 64 MiB
 * frame limit). Before session 18 every one was, with no rate limit and whether or not the asker
 * was behind: a faulty member sending a few bytes per message made every correct replica encode
 * and upload its whole state again and again. Now a member is answered only when its last status
 * does not show it past the checkpoint, at most once per status period; likewise a block is sent
 * to one member at most once per half status period.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../core/machine.ts';
import { bguidOf } from '../../core/version/block.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import type { RingOutput } from '../../ring/outputs.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const parameters = { checkpointInterval: 4, watermarkWindow: 16, statusIntervalMs: 50 };

function ringPastACheckpoint(): Cluster {
  const c = buildCluster({ seed: 81, f: 1, clientCount: 1, crypto: fakeCrypto, parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  for (let k = 0; k < 12; k++) {
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
    expect(c.sim.runUntil(() => c.completed[0] === k + 1, 2_000)).toBe(true);
  }
  c.sim.runFor(200);
  expect(c.replica(1)!.stableSeq).toBeGreaterThan(0);
  return c;
}

const count = (effects: readonly Effect<RingMessage, RingOutput>[], kind: RingMessage['kind']): number =>
  effects.filter((e) => e.kind === 'send' && e.message.kind === kind).length;

describe('state requests', () => {
  it('from a member whose status shows it past the checkpoint are not answered', () => {
    const c = ringPastACheckpoint();
    const r1 = c.replica(1)!;
    let replies = 0;
    for (let i = 0; i < 100; i++) replies += count(r1.onMessage('ring-3', { kind: 'state-request', seq: 1 }, c.sim.nowMs), 'state-reply');
    expect(replies).toBe(0);
    expect(r1.drops.get('stale') ?? 0).toBeGreaterThanOrEqual(100);
  });

  it('from a member that is behind are answered at most once per status period', () => {
    const c = ringPastACheckpoint();
    const r1 = c.replica(1)!;
    // ring-3 says it lost its state (as after a restart on an empty disk).
    r1.onMessage('ring-3', { kind: 'status', view: r1.view, viewActive: true, lastExecuted: 0, stableSeq: 0 }, c.sim.nowMs);
    const t = c.sim.nowMs;
    let replies = 0;
    for (let i = 0; i < 100; i++) replies += count(r1.onMessage('ring-3', { kind: 'state-request', seq: r1.stableSeq }, t + i * 0.1), 'state-reply');
    expect(replies).toBe(1);
    expect(count(r1.onMessage('ring-3', { kind: 'state-request', seq: r1.stableSeq }, t + parameters.statusIntervalMs), 'state-reply')).toBe(1);
  });
});

describe('block fetches', () => {
  it('a block is sent to one member at most once per half status period, however often it asks', () => {
    const c = buildCluster({ seed: 82, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
    const block = new Uint8Array(4096).fill(3);
    for (const id of c.replicaIds) c.sim.send('client-0', id, { kind: 'put-block', block });
    c.sim.runFor(20);
    const r1 = c.replica(1)!;
    const fetch = { kind: 'fetch-blocks' as const, bguids: [bguidOf(fakeCrypto, 'data', block)] };
    const t = c.sim.nowMs;
    let sent = 0;
    for (let i = 0; i < 100; i++) sent += count(r1.onMessage('ring-3', fetch, t + i * 0.1), 'block-data');
    expect(sent).toBe(1);
    expect(count(r1.onMessage('ring-2', fetch, t + 10), 'block-data')).toBe(1);
    expect(count(r1.onMessage('ring-3', fetch, t + parameters.statusIntervalMs / 2), 'block-data')).toBe(1);
  });
});
