/**
 * A replica checks a client request's signature once and caches the answer. Before session 18 the
 * cache was keyed by requestDigest, which leaves out the signature and the reply address: a copy of
 * a request with a garbage signature passed at every replica that had verified the genuine one and
 * failed at one that never had. Proof checks go through the same cache, so correct replicas
 * disagreed on whether one signed proof was valid: a faulty primary ordered such a copy, the replica
 * without the entry refused its commit proofs and every view change carrying it, and with the
 * faulty replica silent the ring stalled.
 */
import { describe, expect, it } from 'vitest';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { Batch, ClientRequest } from '../../ring/messages.ts';
import { issue } from '../../ring/replica-requests.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';
import { signMessage } from '../../ring/signing.ts';

const parameters = { checkpointInterval: 4, watermarkWindow: 16, requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50, batchSizeMax: 1 };
const op = (c: Cluster, name: string): Uint8Array => kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, name), -1, new TextEncoder().encode(name));

/** ring-0 (faulty primary) orders a copy of request R (forged: another signature) while ring-3 is away; then it goes silent. */
function orderCopyThenSilence(forged: boolean): { completed: boolean; replicaThreeCaughtUp: boolean } {
  const c = buildCluster({ seed: 61, f: 1, clientCount: 2, crypto: fakeCrypto, parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.sim.partition([['ring-0', 'ring-1', 'ring-2', ...c.clientIds], ['ring-3']]);
  const signer = c.clientSigners[1]!;
  const R = signMessage<ClientRequest>(fakeCrypto, signer, { kind: 'request', clientKey: signer.publicKey, nonce: 1, replyTo: 'client-1', operation: kvOperation(kvKeyFor(signer.publicKey, 'r'), -1, Uint8Array.of(1)) });
  c.sim.send('client-1', 'ring-0', R);
  expect(c.sim.runUntil(() => c.replica(1)!.lastExecuted >= 1, 2_000)).toBe(true);
  for (let k = 0; k < 10 && c.replica(1)!.stableSeq < 8; k++) {
    c.submit(0, op(c, `k${k}`));
    c.sim.runUntil(() => c.completed[0] === k + 1, 2_000);
  }
  expect(c.sim.runUntil(() => [0, 1, 2].every((i) => c.replica(i)!.stableSeq >= 8), 2_000)).toBe(true);
  const copy: ClientRequest = forged ? { ...R, replyTo: 'nowhere', signature: new Uint8Array(64).fill(9) } : R;
  const r0 = c.replica(0)!;
  const batch: Batch = { timestampMs: Math.floor(c.sim.nowMs), heartbeat: false, requests: [copy] };
  const seq = r0.nextSeq++;
  issue(r0, seq, batch);
  c.sim.runFor(500);
  // ring-3 comes back (state transfer, then commit proofs above the checkpoint); ring-0 goes silent.
  c.sim.heal();
  const replicaThreeCaughtUp = c.sim.runUntil(() => c.replica(3)!.lastExecuted >= c.replica(1)!.lastExecuted, 3_000);
  c.sim.crash('ring-0');
  const before = c.completed[0]!;
  c.submit(0, op(c, 'after'));
  return { completed: c.sim.runUntil(() => c.completed[0] === before + 1, 10_000), replicaThreeCaughtUp };
}

describe('request validity cache', () => {
  it('control: the faulty primary re-orders R itself; the ring goes on without it', () => {
    expect(orderCopyThenSilence(false).completed).toBe(true);
  });

  it('a copy of a verified request with another signature is checked, not taken from the cache: correct replicas agree and the ring goes on', () => {
    const r = orderCopyThenSilence(true);
    expect(r.replicaThreeCaughtUp).toBe(true);
    expect(r.completed).toBe(true);
  });

  it('requestValid answers by the exact request, signature and reply address included', () => {
    const c = buildCluster({ seed: 62, f: 1, clientCount: 1, crypto: fakeCrypto, parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
    const signer = c.clientSigners[0]!;
    const R = signMessage<ClientRequest>(fakeCrypto, signer, { kind: 'request', clientKey: signer.publicKey, nonce: 1, replyTo: 'client-0', operation: op(c, 'x') });
    const r1 = c.replica(1)!;
    expect(r1.requestValid(R)).toBe(true);
    expect(r1.requestValid({ ...R, signature: new Uint8Array(64).fill(9) })).toBe(false);
    expect(r1.requestValid({ ...R, replyTo: 'elsewhere' })).toBe(false);
    expect(r1.requestValid({ ...R })).toBe(true);
  });
});
