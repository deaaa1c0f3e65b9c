/**
 * A view change for a view older than the one installed is answered with the new-view the sender
 * missed. Before session 18 that answer went to r.idOf(vc.replica) before any check: one unsigned
 * frame naming replica 200 (the codec allows indices up to 255) threw out of onMessage and killed
 * the replica's process, and a valid index directed the new-view (the protocol's largest message)
 * at whichever member an attacker named.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import type { Effect } from '../../core/machine.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { cloneRingMessage } from '../../ring/codec.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage, ViewChange } from '../../ring/messages.ts';
import type { RingOutput } from '../../ring/outputs.ts';
import { buildCluster, secretKeyFor, type Cluster } from '../../ring/sim-cluster.ts';
import { signMessage } from '../../ring/signing.ts';

const seed = 11;
const parameters = { checkpointInterval: 4, watermarkWindow: 16, requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };
const op = (c: Cluster, name: string): Uint8Array => kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, name), -1, new TextEncoder().encode(name));

/** A ring whose replica 1 has installed view 1 (ring-0 crashed). */
function inViewOne(): Cluster {
  const c = buildCluster({ seed, f: 1, clientCount: 1, crypto: fakeCrypto, parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.submit(0, op(c, 'a'));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 2_000)).toBe(true);
  c.sim.crash('ring-0');
  c.submit(0, op(c, 'b'));
  expect(c.sim.runUntil(() => c.completed[0] === 2 && c.replica(1)!.view === 1 && c.replica(1)!.viewActive, 5_000)).toBe(true);
  return c;
}

const staleViewChange = (replica: number): RingMessage =>
  cloneRingMessage({ kind: 'view-change', newView: 0, stableSeq: 0, checkpointProof: [], prepared: [], replica, signature: new Uint8Array(64) } as RingMessage);

const newViewsSent = (effects: readonly Effect<RingMessage, RingOutput>[]): string[] =>
  effects.flatMap((e) => (e.kind === 'send' && e.message.kind === 'new-view' ? [e.to] : []));

describe('stale view changes', () => {
  it('one naming a replica index past the ring (from anyone) is dropped, not thrown', () => {
    const c = inViewOne();
    const r1 = c.replica(1)!;
    expect(() => r1.onMessage('client-0', staleViewChange(200), c.sim.nowMs)).not.toThrow();
    expect(() => r1.onMessage('ring-3', staleViewChange(4), c.sim.nowMs)).not.toThrow();
  });

  it('is answered only to the member that sent and signed it, at most once per status period', () => {
    const c = inViewOne();
    const r1 = c.replica(1)!;
    // Unsigned, and naming another member than its sender: no new-view to anyone.
    expect(newViewsSent(r1.onMessage('client-0', staleViewChange(2), c.sim.nowMs))).toEqual([]);
    expect(newViewsSent(r1.onMessage('ring-3', staleViewChange(2), c.sim.nowMs))).toEqual([]);
    expect(newViewsSent(r1.onMessage('ring-2', staleViewChange(2), c.sim.nowMs))).toEqual([]);
    // ring-0 restarted in view 0 and asks: signed by it and sent by it, answered once per period.
    const signer = signerOf(fakeCrypto, secretKeyFor(fakeCrypto, seed, 'replica', 0));
    const signed = signMessage<ViewChange>(fakeCrypto, signer, { kind: 'view-change', newView: 0, stableSeq: 0, checkpointProof: [], prepared: [], replica: 0 });
    const now = c.sim.nowMs;
    expect(newViewsSent(r1.onMessage('ring-0', signed, now))).toEqual(['ring-0']);
    expect(newViewsSent(r1.onMessage('ring-0', signed, now + 1))).toEqual([]);
    expect(newViewsSent(r1.onMessage('ring-0', signed, now + parameters.statusIntervalMs))).toEqual(['ring-0']);
  });
});
