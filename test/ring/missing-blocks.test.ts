/**
 * An update naming a block nobody holds cannot be proposed by any primary (it waits in the
 * primary's queue for the block). Before session 18 every backup that got it (the client's
 * retransmissions go to all) still put it on the request timer and suspected each primary in turn:
 * view changes without end, from one client and no faulty replica. Now a backup times a request
 * only once it holds the blocks the request names, as the primary proposes only then.
 */
import { describe, expect, it } from 'vitest';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const parameters = { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };
const block = new Uint8Array(4096).fill(7);

function update(c: Cluster, w: Signer, nonce: number, name: string, clauses: Clause[]): Uint8Array {
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, name), writerPublicKey: w.publicKey, nonce, clauses }));
}
const create = (name: string): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];
const appendBlock = (c: Cluster): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: bguidOf(c.crypto, 'data', block), length: block.length }] }] }];

/** A ring where client 0 has created object 'big'. */
function ring(seed: number): Cluster {
  const c = buildCluster({ seed, f: 1, clientCount: 2, crypto: fakeCrypto, service: 'object', parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.submit(0, update(c, c.clientSigners[0]!, 1, 'big', create('big')));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  return c;
}

const viewChanges = (c: Cluster): number => Math.max(...[0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges));

describe('updates naming blocks', () => {
  it('one naming a block never uploaded changes no view; another client is served meanwhile', () => {
    const c = ring(32);
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'big', appendBlock(c)));
    const h = c.clientSigners[1]!;
    for (let k = 0; k < 10; k++) {
      c.submit(1, update(c, h, k + 1, `o${k}`, create(`o${k}`)));
      expect(c.sim.runUntil(() => c.completed[1] === k + 1, 2_000)).toBe(true);
      c.sim.runFor(400);
    }
    expect(viewChanges(c)).toBe(0);
  });

  it('one whose blocks arrive after it executes once they are there, with no view change', () => {
    const c = ring(33);
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'big', appendBlock(c)));
    c.sim.runFor(1_500);
    for (const id of c.replicaIds) c.sim.send('client-0', id, { kind: 'put-block', block });
    expect(c.sim.runUntil(() => c.completed[0] === 2, 3_000)).toBe(true);
    expect(viewChanges(c)).toBe(0);
  });

  it('a primary that withholds one whose blocks every replica holds is still replaced', () => {
    const c = ring(34);
    for (const id of c.replicaIds) c.sim.send('client-0', id, { kind: 'put-block', block });
    c.sim.runFor(50);
    // ring-0 proposes nothing from client 0 any more (it drops the request on arrival).
    const clientKey = c.clientSigners[0]!.publicKey;
    const withheld = (m: RingMessage): boolean => m.kind === 'pre-prepare' && (m.batch?.requests.some((r) => r.clientKey === clientKey || r.clientKey.every((b, i) => b === clientKey[i])) ?? false);
    c.sim.setInterceptor('ring-0', (m: RingMessage) => (withheld(m) ? [] : [m]));
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'big', appendBlock(c)));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 5_000)).toBe(true);
    expect(c.replica(1)!.view).toBeGreaterThanOrEqual(1);
  });
});
