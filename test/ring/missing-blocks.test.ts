/**
 * An update naming a block nobody holds cannot be proposed by any primary (it waits in the
 * primary's queue for the block). Before session 18 every backup that got it (the client's
 * retransmissions go to all) still put it on the request timer and suspected each primary in turn:
 * view changes without end, from one client and no faulty replica. Now a backup times a request
 * only once it holds the blocks the request names, as the primary proposes only then.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { primaryOf } from '../../ring/config.ts';
import type { ClientRequest, RingMessage } from '../../ring/messages.ts';
import { signMessage } from '../../ring/signing.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const parameters = { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };
const block = new Uint8Array(4096).fill(7);
const neverUploaded = new Uint8Array(4096).fill(9);

function update(c: Cluster, w: Signer, nonce: number, name: string, clauses: Clause[]): Uint8Array {
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, name), writerPublicKey: w.publicKey, nonce, clauses }));
}
const create = (name: string): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];
const appendBlock = (c: Cluster, b = block): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid: bguidOf(c.crypto, 'data', b), length: b.length }] }] }];

/** Client 1's request, signed by hand: a faulty client chooses whom it sends what. */
function request(c: Cluster, nonce: number, operation: Uint8Array): ClientRequest {
  const w = c.clientSigners[1]!;
  return signMessage<ClientRequest>(fakeCrypto, w, { kind: 'request', clientKey: w.publicKey, nonce, replyTo: 'client-1', operation });
}
/** Client 1's request `nonce` naming a block nobody holds. */
const waiting = (c: Cluster, nonce: number): ClientRequest => request(c, nonce, update(c, c.clientSigners[1]!, nonce, `m${nonce}`, appendBlock(c, neverUploaded)));

/** A ring where client 0 has created object 'big'. */
function ring(seed: number): Cluster {
  const c = buildCluster({ seed, f: 1, clientCount: 2, crypto: fakeCrypto, service: 'object', parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.submit(0, update(c, c.clientSigners[0]!, 1, 'big', create('big')));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  return c;
}

const viewChanges = (c: Cluster): number => Math.max(...[0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges));

/**
 * Client 1's proposable request with nonce 1 (after what the test sent the primary first), to
 * every replica: it executes everywhere, with no view change.
 */
function proposableNonceOneRuns(c: Cluster): void {
  c.sim.runFor(20);
  const proposable = request(c, 1, update(c, c.clientSigners[1]!, 1, 'o1', create('o1')));
  for (const id of c.replicaIds) c.sim.send('client-1', id, proposable);
  c.sim.runFor(1_500);
  expect(viewChanges(c)).toBe(0);
  const hex = toHex(c.clientSigners[1]!.publicKey);
  for (const i of [0, 1, 2, 3]) expect(c.replica(i)!.clients.get(hex)?.nonce).toBe(1);
}

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

  it('a former primary does not time one whose blocks it lacks: after two ordinary view changes no more (review 2, finding 1)', () => {
    // Before: the primary put it on its request timer (only backups checked the blocks); as a
    // backup after a view change it timed it and re-sent it to the next primary, which did the
    // same: view changes without end once two primaries had been replaced.
    const c = ring(32);
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'big', appendBlock(c)));
    c.sim.runFor(500);
    const h = c.clientSigners[1]!;
    let done = 0;
    const write = (): void => {
      c.submit(1, update(c, h, done + 1, `o${done}`, create(`o${done}`)));
      expect(c.sim.runUntil(() => c.completed[1] === done + 1, 5_000)).toBe(true);
      done++;
    };
    for (const cut of [0, 1]) {
      c.sim.partition([[`ring-${cut}`], c.sim.nodeIds().filter((id) => id !== `ring-${cut}`)]);
      write();
      c.sim.heal();
      c.sim.runFor(1_000);
    }
    const before = viewChanges(c);
    for (let k = 0; k < 3; k++) {
      write();
      c.sim.runFor(1_000);
    }
    expect(viewChanges(c) - before).toBe(0);
    for (const i of [0, 1, 2, 3]) expect(c.replica(i)!.pending.size).toBe(0);
  });

  it('requests waiting for blocks at the primary keep out no lower nonce the backups time (review 2, finding 2)', () => {
    // Before: four of them (to the primary only) filled its per-client window and the lower nonce,
    // sent to all, was dropped there ('client-window') while every backup timed it: one view
    // change of a correct primary per five requests of one client.
    const c = ring(32);
    for (let k = 2; k <= 5; k++) c.sim.send('client-1', 'ring-0', waiting(c, k));
    proposableNonceOneRuns(c);
  });

  it('one whose blocks the primary lacks, pushed out of its queue before they came, is relayed again by the backups (review 2, finding 2)', () => {
    // Request 6 names a block the client gave the backups only; requests 2-5 (to the primary only)
    // name one nobody holds and arrive while the primary still fetches the block: the fourth
    // pushes request 6, the highest waiting, out (ClientRequests.add). Without the backups' relay
    // halfway through the request timeout nothing brings it back (a faulty client does not
    // retransmit) and the backups, which hold its block, time it: a view change. (Before the
    // session-18 second review the window kept the highest nonces, and request 1 in place of 6
    // was pushed out the same way.)
    const c = ring(32);
    for (const id of ['ring-1', 'ring-2', 'ring-3']) c.sim.send('client-1', id, { kind: 'put-block', block });
    c.sim.runFor(20);
    let fetchAnswered = false;
    for (const id of ['ring-1', 'ring-2', 'ring-3']) c.sim.setInterceptor(id, (m: RingMessage) => (m.kind === 'block-data' && !fetchAnswered ? [] : [m]));
    for (const id of c.replicaIds) c.sim.send('client-1', id, request(c, 6, update(c, c.clientSigners[1]!, 6, 'big1', appendBlock(c))));
    c.sim.runFor(5);
    for (let k = 2; k <= 5; k++) c.sim.send('client-1', 'ring-0', waiting(c, k));
    c.sim.runFor(5);
    fetchAnswered = true;
    expect(primaryOf(c.replica(1)!.view, 4)).toBe(0);
    const hex = toHex(c.clientSigners[1]!.publicKey);
    expect(c.sim.runUntil(() => [0, 1, 2, 3].every((i) => c.replica(i)!.clients.get(hex)?.nonce === 6), 1_500)).toBe(true);
    expect(viewChanges(c)).toBe(0);
  });

  it('a client naming thousands of blocks nobody holds leaves the primary asking for a bounded number, and forgetting them (session 19)', () => {
    // Before: the primary put every missing BGUID a queued request named in its wanted map and
    // broadcast fetches for all of them (one 2.4 MB request can name 65,536); entries left only when
    // the block came, so each new nonce added thousands for good.
    const c = ring(32);
    const w = c.clientSigners[1]!;
    const many = (nonce: number): Clause[] => {
      const refs = Array.from({ length: 2_000 }, (_, i) => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setUint32(0, nonce);
        new DataView(b.buffer).setUint32(4, i);
        return { kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: 4096 };
      });
      return [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: refs }] }];
    };
    let fetched = 0;
    c.sim.setInterceptor('ring-0', (m: RingMessage) => {
      if (m.kind === 'fetch-blocks') fetched += m.bguids.length;
      return [m];
    });
    for (let k = 1; k <= 20; k++) {
      c.sim.send('client-1', 'ring-0', request(c, k, update(c, w, k, 'big', many(k))));
      c.sim.runFor(20);
    }
    const wanted = c.replica(0)!.blockState.wanted;
    // 64 per request, each forgotten three status periods (150 ms) after it left the queue.
    expect(wanted.size).toBeLessThanOrEqual(12 * 64);
    // To three peers: 64 for each request on arrival, then 64 for each of the (at most four)
    // queued ones per status period (50 ms) over ~400 ms. Before: 3 x 40,000.
    expect(fetched).toBeLessThanOrEqual(3 * 64 * (20 + 4 * 8));
    c.sim.runFor(1_000);
    // The four still queued (the client's window).
    expect(wanted.size).toBeLessThanOrEqual(4 * 64);
    expect(viewChanges(c)).toBe(0);
  });

  it('one naming 200 blocks the primary lacks and the backups hold executes: it fetches 64 at a time (session 19)', () => {
    const c = ring(35);
    const data = Array.from({ length: 200 }, (_, i) => new Uint8Array(4096).fill(i % 250).map((b, j) => (j === 0 ? i >> 8 : b)));
    for (const b of data) for (const id of ['ring-1', 'ring-2', 'ring-3']) c.sim.send('client-0', id, { kind: 'put-block', block: b });
    c.sim.runFor(50);
    const refs = data.map((b) => ({ kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: b.length }));
    c.submit(0, update(c, c.clientSigners[0]!, 2, 'big', [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: refs }] }]));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 3_000)).toBe(true);
    expect(viewChanges(c)).toBe(0);
    expect(c.replica(0)!.blockState.wanted.size).toBe(0);
  });

  it('a request the backups time is not thrown away at the primary for one with its nonce waiting for blocks (session-19 third review)', () => {
    // Client 1 sends the primary request 1 naming a block nobody holds, then a proposable request
    // with the same nonce to every replica. Before: the primary held the first ('held') and threw
    // the second away, while every backup timed the second: a view change of a correct primary,
    // again at each nonce, from any client. The proposable one now takes the waiting one's place.
    const c = ring(32);
    c.sim.send('client-1', 'ring-0', waiting(c, 1));
    proposableNonceOneRuns(c);
  });
});
