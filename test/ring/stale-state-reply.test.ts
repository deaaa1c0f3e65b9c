/**
 * A state reply older than the stable checkpoint a replica waits for. Before session 18 it was
 * installed anyway (any validly proved snapshot above lastExecuted), becomeStable did nothing for
 * it and the wait was cleared: the replica sat below its stable checkpoint with nothing to execute
 * and no reason to ask again, so with the faulty replica silent the ring stalled for good.
 */
import { describe, expect, it } from 'vitest';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage, StateReply } from '../../ring/messages.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const parameters = { checkpointInterval: 4, watermarkWindow: 16, requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50, batchSizeMax: 1 };
const op = (c: Cluster, client: number, name: string): Uint8Array =>
  kvOperation(kvKeyFor(c.clientSigners[client]!.publicKey, name), -1, new TextEncoder().encode(name));

function drive(c: Cluster, from: number, to: number): void {
  for (let k = from; k < to; k++) for (let i = 0; i < c.clientIds.length; i++) c.submit(i, op(c, i, `k${k}`));
}

/** ring-3 is partitioned away across two checkpoints; on healing ring-0 (faulty) answers its state request with a snapshot from the first. */
function staleReplyThenSilence(withStaleReply: boolean): { completed: boolean; lastExecuted: number; stableSeq: number; staleSeq: number } {
  const c = buildCluster({ seed: 31, f: 1, clientCount: 2, crypto: fakeCrypto, parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.sim.partition([['ring-0', 'ring-1', 'ring-2', ...c.clientIds], ['ring-3']]);
  drive(c, 0, 5);
  expect(c.sim.runUntil(() => c.completed.every((k) => k === 5) && c.replica(0)!.stableSeq >= 8, 20_000)).toBe(true);
  const r0 = c.replica(0)!;
  const staleSeq = r0.stableSeq;
  const answer = r0.onMessage('ring-3', { kind: 'state-request', seq: staleSeq }, c.sim.nowMs).find((e) => e.kind === 'send' && e.message.kind === 'state-reply');
  const stale = (answer as { message: StateReply }).message;
  drive(c, 5, 14);
  expect(c.sim.runUntil(() => c.completed.every((k) => k === 14) && c.replica(1)!.stableSeq >= staleSeq + 8, 20_000)).toBe(true);
  // The honest state replies are lost until ring-3 has taken one (the network may drop them).
  let taken = false;
  if (withStaleReply) {
    c.sim.setInterceptor('ring-0', (m: RingMessage, to: string) => (m.kind === 'state-reply' && to === 'ring-3' ? [stale] : [m]));
    for (const id of ['ring-1', 'ring-2']) c.sim.setInterceptor(id, (m: RingMessage, to: string) => (m.kind === 'state-reply' && to === 'ring-3' && !taken ? [] : [m]));
  }
  c.sim.heal();
  const r3 = () => c.replica(3)!;
  c.sim.runUntil(() => r3().lastExecuted >= staleSeq || (r3().drops.get('stale') ?? 0) > 0, 5_000);
  c.sim.runFor(100);
  taken = true;
  // ring-0 goes silent (f = 1): ring-1..3 are 2f+1 correct replicas and must go on.
  c.sim.crash('ring-0');
  const before = c.completed[0]!;
  c.submit(0, op(c, 0, 'after'));
  const completed = c.sim.runUntil(() => c.completed[0] === before + 1, 10_000);
  return { completed, lastExecuted: r3().lastExecuted, stableSeq: r3().stableSeq, staleSeq };
}

describe('state transfer', () => {
  it('control: with honest state replies the three correct replicas go on after the faulty one goes silent', () => {
    expect(staleReplyThenSilence(false).completed).toBe(true);
  });

  it('a validly proved state reply older than the awaited checkpoint is refused; the replica asks again and catches up', () => {
    const r = staleReplyThenSilence(true);
    expect(r.completed).toBe(true);
    expect(r.lastExecuted).toBeGreaterThanOrEqual(r.stableSeq);
    expect(r.stableSeq).toBeGreaterThan(r.staleSeq);
  });
});
