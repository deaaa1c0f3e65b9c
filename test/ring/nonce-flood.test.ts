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
import { ClientRequests, heldLimits, requestsPerClientMax } from '../../ring/client-requests.ts';
import { signerOf } from '../../core/crypto.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';
import { signMessage } from '../../ring/signing.ts';
import { create, freshSigner, objectRing, sendWaiting, updateBy, viewChanges } from './waiting-flood.ts';

const parameters = { requestTimeoutMs: 50, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };

/** Runs `ms` 1 ms steps; the most requests any replica held (pending or queued) meanwhile. */
function heldMostOver(c: Cluster, ms: number): number {
  let held = 0;
  for (let t = 0; t < ms; t++) {
    c.sim.runFor(1);
    for (const i of [0, 1, 2, 3]) held = Math.max(held, c.replica(i)!.pending.size, c.replica(i)!.queue.size);
  }
  return held;
}

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
    expect(heldMostOver(c, 100)).toBeLessThanOrEqual(requestsPerClientMax + 1);
    const attackerHex = toHex(attacker.publicKey);
    expect(c.sim.runUntil(() => c.completed[0] === 1 && [0, 1, 2, 3].every((i) => c.replica(i)!.pending.size === 0 && c.replica(i)!.clients.get(attackerHex)?.nonce === flood), 5_000)).toBe(true);
    c.sim.runFor(1_000);
    expect(Math.max(...[0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges))).toBe(0);
    expect(c.replica(1)!.drops.get('client-window') ?? 0).toBeGreaterThan(0);
  });
});

describe('a fresh-key flood from one connection (twentieth session review)', () => {
  it('is held to heldLimits.perOriginMax requests at every replica, refused before its signatures are checked: no view change, another connection is served', () => {
    // Before: requestsPerClientMax is per key and keys are free, so every replica verified and held
    // all 3,000 (8,000 in the review made the backups replace a correct primary twice).
    const c = buildCluster({ seed: 41, f: 1, clientCount: 2, crypto: fakeCrypto, parameters: { ...parameters, batchSizeMax: 8, pipelineDepthMax: 3 }, network: { delayMsMin: 1, delayMsMax: 1 } });
    const flood = heldLimits.perOriginMax * 3;
    for (let i = 0; i < flood; i++) {
      const attacker = signerOf(fakeCrypto, Uint8Array.from({ length: 32 }, (_, j) => (i >> (8 * (j % 4))) & 255 ^ j));
      const req = signMessage<ClientRequest>(fakeCrypto, attacker, {
        kind: 'request', clientKey: attacker.publicKey, nonce: 1, replyTo: 'client-1',
        operation: kvOperation(kvKeyFor(attacker.publicKey, 'x'), -1, Uint8Array.of(i & 255)),
      });
      for (const id of c.replicaIds) c.sim.send('client-1', id, req);
    }
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, 'honest'), -1, Uint8Array.of(1)));
    expect(heldMostOver(c, 50)).toBeLessThanOrEqual(heldLimits.perOriginMax + 1); // and the honest client's
    // Refused before the signature check: 'held-full' comes first in onRequest.
    expect(c.replica(1)!.drops.get('held-full') ?? 0).toBeGreaterThanOrEqual(flood - heldLimits.perOriginMax);
    expect(c.sim.runUntil(() => c.completed[0] === 1, 10_000)).toBe(true);
    c.sim.runFor(1_000);
    expect(Math.max(...[0, 1, 2, 3].map((i) => c.replica(i)!.counters.viewChanges))).toBe(0);
  });
});

describe('bounds that must not starve anyone (second review of the held-request bounds)', () => {
  /** Client 0's creates `from`..`to` each commit within `withinMs`. */
  const honestCreates = (c: Cluster, from: number, to: number, withinMs: number) => {
    for (let k = from; k <= to; k++) {
      c.submit(0, updateBy(c, c.clientSigners[0]!, k, `o${k}`, create(`o${k}`)));
      expect(c.sim.runUntil(() => c.completed[0] === k, withinMs), `honest update ${k}`).toBe(true);
    }
  };

  it('a burst of requests waiting for blocks never uploaded, from 8 connections to the primary, keeps no other connection out: no view change', () => {
    // Before: a bound across connections (8,192) filled with requests that wait for ever, every
    // later request was refused at the primary, and the backups replaced it.
    const c = objectRing({ clientCount: 10, parameters: { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 } });
    for (let i = 0; i < 8 * heldLimits.perOriginMax; i++) sendWaiting(c, i, 0x77, `client-${2 + (i % 8)}`, 'ring-0');
    c.sim.runFor(100);
    honestCreates(c, 2, 6, 3_000);
    expect(viewChanges(c)).toBe(0);
  });

  it('requests waiting for blocks never uploaded, sent by one connection to a backup only, are held at the primary no more than waitingMax in all', () => {
    // Third review: a backup relays such requests without holding them, and the primary took
    // members' relays without admission: one connection queued any number at the primary.
    const c = objectRing({ parameters: { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 } });
    const flood = heldLimits.waitingMax + 2 * heldLimits.perOriginMax;
    for (let i = 0; i < flood; i++) sendWaiting(c, i, 0x5a, 'client-2', 'ring-1');
    c.sim.runFor(200);
    expect(c.replica(0)!.queue.size).toBeLessThanOrEqual(heldLimits.waitingMax);
    expect(c.replica(0)!.drops.get('held-full') ?? 0).toBeGreaterThanOrEqual(flood - heldLimits.waitingMax);
    honestCreates(c, 2, 4, 5_000);
    expect(viewChanges(c)).toBe(0);
  });

  it('requests waiting for blocks from many connection names are bounded in all at the primary (oldest out), and an honest request is not held up past its timeout', () => {
    // Fourth review: origins are connection names (free; waiting requests outlive connections),
    // so 96 names queued 98,304 at the primary and an honest request behind them waited past the
    // backups' timeout (a view change).
    const c = objectRing({ clientCount: 2, tickMs: 10 });
    for (let i = 0; i < 24 * heldLimits.perOriginMax; i++) sendWaiting(c, i, 0x6b, `client-sybil${i % 24}`, 'ring-0');
    c.sim.runFor(50);
    expect(c.replica(0)!.queue.size).toBeLessThanOrEqual(heldLimits.waitingMax);
    honestCreates(c, 2, 2, 10_000);
    expect(viewChanges(c)).toBe(0);
  });

  it("a burst to the backups only, within each backup's bounds, is relayed and taken by the primary: no view change", () => {
    // Before: the primary bounded each relaying member like a client connection (1,024), so a
    // backup held requests the primary refused, re-relayed them once, and left the view.
    const c = buildCluster({ seed: 9, f: 1, clientCount: 10, crypto: fakeCrypto, parameters: { requestTimeoutMs: 400, viewChangeTimeoutMs: 600, statusIntervalMs: 100, batchSizeMax: 8, pipelineDepthMax: 2 }, network: { delayMsMin: 1, delayMsMax: 1 } });
    let i = 0;
    for (const backup of [c.replicaIds[1]!, c.replicaIds[2]!]) {
      for (let k = 0; k < 2 * heldLimits.perOriginMax; k++, i++) {
        const origin = `client-${1 + (k % 2)}`;
        const w = freshSigner(i, 0x33);
        c.sim.send(origin, backup, signMessage<ClientRequest>(fakeCrypto, w, { kind: 'request', clientKey: w.publicKey, nonce: 1, replyTo: origin, operation: kvOperation(kvKeyFor(w.publicKey, 'x'), -1, Uint8Array.of(i & 255)) }));
      }
    }
    const sent = i;
    expect(c.sim.runUntil(() => c.replica(3)!.clients.size >= sent && [1, 2].every((r) => c.replica(r)!.pending.size === 0), 20_000)).toBe(true);
    expect(Math.max(...[0, 1, 2, 3].map((r) => c.replica(r)!.counters.viewChanges))).toBe(0);
  });
});

describe('a sybil flood sent to the primary alone (second review)', () => {
  it('an honest request from another connection is proposed in the next batch, not after the flood: served, no view change', () => {
    // Before: the primary batched one request per key from the clients served longest ago, so an
    // honest request waited behind thousands of fresh keys; the backups, which hold none of the
    // flood (no progress for them), replaced the correct primary after one request timeout.
    const c = buildCluster({ seed: 7, f: 1, clientCount: 10, crypto: fakeCrypto, parameters: { requestTimeoutMs: 400, viewChangeTimeoutMs: 600, statusIntervalMs: 100, batchSizeMax: 16, pipelineDepthMax: 2 }, network: { delayMsMin: 1, delayMsMax: 1 } });
    let i = 0;
    const flood = (n: number) => {
      for (let k = 0; k < n; k++, i++) {
        const origin = `client-${1 + (i % 8)}`;
        const w = signerOf(fakeCrypto, Uint8Array.from({ length: 32 }, (_, j) => ((i >> (8 * (j % 4))) & 255) ^ j ^ 0x5a));
        c.sim.send(origin, c.replicaIds[0]!, signMessage<ClientRequest>(fakeCrypto, w, { kind: 'request', clientKey: w.publicKey, nonce: 1, replyTo: origin, operation: kvOperation(kvKeyFor(w.publicKey, 'x'), -1, Uint8Array.of(i & 255)) }));
      }
    };
    flood(8 * heldLimits.perOriginMax);
    c.sim.runFor(5);
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, 'honest'), -1, Uint8Array.of(1)));
    for (let t = 0; t < 1500 && c.completed[0] === 0; t++) {
      flood(6);
      c.sim.runFor(1);
    }
    expect(c.completed[0]).toBe(1);
    expect(Math.max(...[0, 1, 2, 3].map((r) => c.replica(r)!.counters.viewChanges))).toBe(0);
  });

  it('takeOnePerClient takes one client per origin first, then the rest, from the clients served longest ago', () => {
    const held = new ClientRequests();
    const request = (key: number): ClientRequest => ({ kind: 'request', clientKey: Uint8Array.of(key), nonce: 1, replyTo: 'x', operation: new Uint8Array(1), signature: new Uint8Array(0) });
    for (let key = 0; key < 6; key++) held.add(request(key), 0, 'sybil');
    held.add(request(6), 0, 'honest');
    expect(held.takeOnePerClient(2, 0, () => 'ready').map((r) => r.clientKey[0])).toEqual([0, 6]);
    expect(held.takeOnePerClient(3, 0, () => 'ready').map((r) => r.clientKey[0])).toEqual([1, 2, 3]);
    expect(held.size).toBe(2);
  });
});

describe('ClientRequests.takeOnePerClient with requests waiting for their blocks', () => {
  it('looks at none of them: a proposable request behind 1,000 is taken in the first call, with one look', () => {
    // Third review: it looked at every waiting request at every tick (26 ms per 10 ms tick at
    // 4,096); then at 4 per place in the batch. Now waiting requests are indexed by the blocks they
    // lack and looked at only when one comes or their re-ask is due.
    const held = new ClientRequests();
    const request = (key: number): ClientRequest => ({ kind: 'request', clientKey: Uint8Array.of(key >> 8, key & 255), nonce: 1, replyTo: 'x', operation: new Uint8Array(1), signature: new Uint8Array(0) });
    const waiting = 1000;
    for (let key = 0; key < waiting; key++) held.add(request(key), 0, 'waiting', [Uint8Array.of(key >> 8, key & 255)]);
    held.add(request(waiting), 0, 'honest-later', []);
    let looks = 0;
    const taken = held.takeOnePerClient(8, 0, () => {
      looks++;
      return 'ready';
    });
    expect(taken.map((r) => (r.clientKey[0]! << 8) | r.clientKey[1]!)).toEqual([waiting]);
    expect(looks).toBe(1);
    expect(held.takeOnePerClient(8, 0, () => 'ready')).toEqual([]);
    expect([held.size, held.readySize, held.waitingSize]).toEqual([waiting, 0, waiting]);
  });
});

describe('ClientRequests.admits', () => {
  it('bounds requests and bytes per origin; a request let go frees its room', () => {
    const held = new ClientRequests();
    const request = (key: number, bytes: number): ClientRequest => ({ kind: 'request', clientKey: Uint8Array.of(key >> 8, key & 255), nonce: 1, replyTo: 'x', operation: new Uint8Array(bytes), signature: new Uint8Array(0) });
    for (let i = 0; i < heldLimits.perOriginMax; i++) expect(held.add(request(i, 1), 0, 'a')).toBe('added');
    expect(held.admits('a', 1)).toBe(false);
    expect(held.admits('b', 1)).toBe(true);
    expect(held.admits('b', heldLimits.perOriginBytesMax + 1)).toBe(false);
    held.settle(toHex(Uint8Array.of(0, 0)), 1, 0);
    expect(held.admits('a', 1)).toBe(true);
    held.clear();
    expect(held.size).toBe(0);
    expect(held.admits('a', heldLimits.perOriginBytesMax)).toBe(true);
  });
});
