/**
 * One client floods every replica with validly signed requests under consecutive nonces. Before
 * session 18 every replica kept all of them (backups in `pending`, the primary in its queue): the
 * primary batches one request per client, so the k-th waited k batches, and the fairness rule
 * (a pending request older than 8 request timeouts) made the backups suspect a correct primary;
 * the primary also rescanned its whole queue for every batch (quadratic CPU). Now a replica holds
 * at most requestsPerClientMax requests per client (the newest: an honest client has one
 * outstanding and moves on to a higher nonce when it gives one up), and the fairness timer runs on
 * each client's lowest pending nonce only.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { ClientRequest } from '../../ring/messages.ts';
import { requestsPerClientMax } from '../../ring/client-requests.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { signMessage } from '../../ring/signing.ts';

const parameters = { requestTimeoutMs: 50, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };

describe('a nonce flood from one client', () => {
  it('is held to a few requests per client at every replica: no view change, the newest executes, another client is served', () => {
    const c = buildCluster({ seed: 41, f: 1, clientCount: 2, crypto: fakeCrypto, parameters, network: { delayMsMin: 1, delayMsMax: 1 } });
    const attacker = c.clientSigners[1]!;
    const flood = 600;
    for (let nonce = 1; nonce <= flood; nonce++) {
      const req = signMessage<ClientRequest>(fakeCrypto, attacker, {
        kind: 'request', clientKey: attacker.publicKey, nonce, replyTo: 'client-1',
        operation: kvOperation(kvKeyFor(attacker.publicKey, `x${nonce % 7}`), -1, Uint8Array.of(nonce & 255)),
      });
      for (const id of c.replicaIds) c.sim.send('client-1', id, req);
    }
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, 'honest'), -1, Uint8Array.of(1)));
    let held = 0;
    for (let t = 0; t < 100; t++) {
      c.sim.runFor(1);
      for (const i of [0, 1, 2, 3]) held = Math.max(held, c.replica(i)!.pending.size, c.replica(i)!.queue.size);
    }
    expect(held).toBeLessThanOrEqual(requestsPerClientMax + 1);
    const attackerHex = toHex(attacker.publicKey);
    expect(c.sim.runUntil(() => c.completed[0] === 1 && [0, 1, 2, 3].every((i) => c.replica(i)!.pending.size === 0 && c.replica(i)!.clients.get(attackerHex)?.nonce === flood), 5_000)).toBe(true);
    c.sim.runFor(1_000);
    expect(Math.max(...[0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges))).toBe(0);
    expect(c.replica(1)!.drops.get('client-window') ?? 0).toBeGreaterThan(0);
  });
});
