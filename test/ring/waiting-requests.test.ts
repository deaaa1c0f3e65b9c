/**
 * Requests the primary keeps waiting for blocks (session 21). Before, nothing said which request a
 * block completes: every block arrival, even of a block already stored, made the primary try to
 * issue batches, looking at up to 4 × 256 waiting requests (a block lookup each: ~6 ms a tiny
 * put-block while 1,024 waited), and it asked its peers again every status period for the blocks
 * of every request it kept waiting (1,024 requests naming 64 blocks never uploaded: 655,360
 * BGUIDs a second). Now the waiting requests are indexed by the blocks they lack and their
 * re-asks back off (ring/waiting-index.ts).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { ClientRequests, heldLimits, type Verdict } from '../../ring/client-requests.ts';
import type { ClientRequest, RingMessage } from '../../ring/messages.ts';
import type { Cluster } from '../../ring/sim-cluster.ts';
import { reaskPeriodsMax } from '../../ring/waiting-index.ts';
import { objectRing, sendWaiting, viewChanges } from './waiting-flood.ts';

const parameters = { requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };

/** A tiny block of its own for each i. */
const ownBlock = (i: number): Uint8Array => Uint8Array.of(0xb1, i >> 8, i & 255);

/** Counts the primary's block lookups for requests (calls of its service's blocksNeeded). */
function countLookups(c: Cluster): { readonly calls: number } {
  const service = c.replica(0)!.service;
  const blocksNeeded = service.blocksNeeded!.bind(service);
  const counter = { calls: 0 };
  service.blocksNeeded = (operation, limit) => {
    counter.calls++;
    return blocksNeeded(operation, limit);
  };
  return counter;
}

/** A put-block handled by the primary at once (no tick between), its messages sent on. */
function putAtPrimary(c: Cluster, block: Uint8Array): void {
  for (const effect of c.replica(0)!.onMessage('client-1', { kind: 'put-block', block }, c.sim.nowMs)) {
    if (effect.kind === 'send') c.sim.send('ring-0', effect.to, effect.message);
  }
}

describe('a block arriving at the primary while requests wait for blocks', () => {
  /** `waiting` requests at the primary, each naming a tiny block of its own never uploaded yet. */
  const ringWithWaiting = (waiting: number): { c: Cluster; requests: ClientRequest[] } => {
    const c = objectRing({ clientCount: 2, parameters });
    const requests: ClientRequest[] = [];
    for (let i = 0; i < waiting; i++) requests.push(sendWaiting(c, i, 0x21, `client-w${i % 4}`, 'ring-0', [ownBlock(i)]));
    c.sim.runFor(20);
    expect(c.replica(0)!.queue.size).toBe(waiting);
    return { c, requests };
  };

  for (const waiting of [256, 2048]) {
    it(`costs no look at them when nobody needs it or it is here already, and one look at the request it completes (${waiting} waiting)`, () => {
      // Before: 64 puts of blocks nobody needs cost 64 × min(waiting, 1,024) lookups.
      const { c, requests } = ringWithWaiting(waiting);
      const primary = c.replica(0)!;
      const lookups = countLookups(c);
      const looksBefore = primary.queue.looks;
      for (let k = 0; k < 32; k++) putAtPrimary(c, Uint8Array.of(0xee, k));
      for (let k = 0; k < 32; k++) putAtPrimary(c, Uint8Array.of(0xee, 0));
      expect(lookups.calls).toBe(0);
      expect(primary.queue.looks - looksBefore).toBe(0);
      // The block of request 7 wakes it alone: looked at once when it arrives, once more as the batch takes it.
      putAtPrimary(c, ownBlock(7));
      expect(lookups.calls).toBeLessThanOrEqual(2);
      expect(primary.queue.waitingSize).toBe(waiting - 1);
      const hex = toHex(requests[7]!.clientKey);
      expect(c.sim.runUntil(() => [0, 1, 2, 3].every((i) => c.replica(i)!.clients.get(hex)?.nonce === 1), 2_000)).toBe(true);
      expect(viewChanges(c)).toBe(0);
    });
  }
});

describe("the primary's re-asks for the blocks of requests that wait", () => {
  it('back off to one every reaskPeriodsMax status periods: the BGUIDs asked over 10 s stay bounded; a late block of an honest request is still fetched within a few periods', () => {
    // Before: all 64 blocks of each waiting request every status period, 200 times over 10 s.
    const c = objectRing({ clientCount: 2, parameters });
    let asked = 0;
    const askedAt: number[] = [];
    c.sim.setInterceptor('ring-0', (m: RingMessage, to: string) => {
      if (m.kind === 'fetch-blocks' && to === 'ring-1') {
        asked += m.bguids.length;
        askedAt.push(c.sim.nowMs);
      }
      return [m];
    });
    const waiting = 64;
    const blocksEach = 64;
    for (let i = 0; i < waiting; i++) {
      const blocks = Array.from({ length: blocksEach }, (_, k) => Uint8Array.of(0xd0, i, k));
      sendWaiting(c, i, 0x31, 'client-2', 'ring-0', blocks);
    }
    const startMs = c.sim.nowMs;
    const runMs = 10_000;
    c.sim.runFor(runMs);
    const perAsk = waiting * blocksEach;
    const periods = runMs / parameters.statusIntervalMs;
    // The first ask, one each at 1, 2, 4, ... periods up to the cap, then one per cap.
    const asksMax = 1 + Math.log2(reaskPeriodsMax) + 1 + Math.ceil(periods / reaskPeriodsMax);
    expect(asked).toBeGreaterThanOrEqual(perAsk);
    expect(asked).toBeLessThanOrEqual(asksMax * perAsk);
    expect(asked).toBeLessThan((periods / 10) * perAsk);
    // Over the last 4 s (past the ramp), at most one re-ask per request per cap.
    const lateAsks = askedAt.filter((t) => t >= startMs + 6_000).length;
    expect(lateAsks * 64).toBeLessThanOrEqual(Math.ceil(4_000 / (reaskPeriodsMax * parameters.statusIntervalMs)) * perAsk);
    expect(c.replica(0)!.queue.waitingSize).toBe(waiting);

    // An honest request naming a block its client gives the backups only, 120 ms after the request:
    // the primary's first asks find it nowhere, the re-ask two periods on fetches it.
    const late = ownBlock(0x4242);
    const honest = sendWaiting(c, 1, 0x99, 'client-1', 'ring-0', [late]);
    c.sim.runFor(120);
    for (const id of ['ring-1', 'ring-2', 'ring-3']) c.sim.send('client-1', id, { kind: 'put-block', block: late });
    const hex = toHex(honest.clientKey);
    expect(c.sim.runUntil(() => c.replica(0)!.clients.get(hex)?.nonce === 1, 4 * parameters.statusIntervalMs)).toBe(true);
    expect(viewChanges(c)).toBe(0);
  });
});

describe('ClientRequests: the waiting index', () => {
  const request = (key: number, nonce = 1, bytes = 1): ClientRequest => ({ kind: 'request', clientKey: Uint8Array.of(key >> 8, key & 255), nonce, replyTo: 'x', operation: new Uint8Array(bytes), signature: new Uint8Array(0) });
  const block = (key: number): Uint8Array => Uint8Array.of(0xbb, key >> 8, key & 255);
  const hexOf = (key: number): string => toHex(block(key));
  const ready = (): Verdict => 'ready';

  it('holds nothing of a request let go by any path: remove, settle, eviction, a batch, clear', () => {
    const held = new ClientRequests();
    for (let key = 0; key < 8; key++) held.add(request(key), 0, 'o', [block(key)]);
    expect([held.waitingSize, held.blocksIndexed, held.readySize]).toEqual([8, 8, 0]);
    expect(held.remove(request(0))).toBe(true);
    expect(held.settle(toHex(request(1).clientKey), 1, 0)).toBe(1);
    // The same nonce, proposable now (the client's retransmission after its blocks came by another way): replaces it.
    expect(held.add(request(2), 0, 'o', [])).toBe('replaced');
    // Nonces 2..5 of client 3: full; a newcomer pushes out the highest waiting one.
    for (let nonce = 2; nonce <= 4; nonce++) held.add(request(3, nonce), 0, 'o', [block(3)]);
    expect(held.add(request(3, 9), 0, 'o', [])).toBe('replaced');
    expect(held.waitingSize).toBe(8 - 3 + 2);
    for (const key of [0, 1, 2]) expect(held.blockArrived(hexOf(key), 0, ready)).toBe(0);
    expect(held.blocksIndexed).toBe(5);
    expect(held.takeOnePerClient(8, 0, ready).map((r) => [r.clientKey[1], r.nonce])).toEqual([[2, 1], [3, 9]]);
    // Client 3's nonces 1..3 wait for one block: its arrival wakes all three.
    expect(held.blockArrived(hexOf(3), 0, ready)).toBe(3);
    expect(held.blocksIndexed).toBe(4);
    held.clear();
    expect([held.size, held.waitingSize, held.waitingBytes, held.blocksIndexed]).toEqual([0, 0, 0, 0]);
    expect(held.blockArrived(hexOf(4), 0, ready)).toBe(0);
  });

  it('sheds the oldest waiting by last arrival beyond waitingMax, and a proposable request never', () => {
    const held = new ClientRequests();
    for (let key = 0; key < heldLimits.waitingMax; key++) held.add(request(key), 0, `o${key % 8}`, [block(key)]);
    held.add(request(9000), 0, 'p', []);
    expect(held.shedWaiting()).toBe(0);
    // Request 0 arrives again: request 1 is the oldest now.
    expect(held.add(request(0), 1, 'o0', [block(0)])).toBe('held');
    held.add(request(5000), 2, 'o1', [block(5000)]);
    held.add(request(5001), 2, 'o1', [block(5001)]);
    expect(held.shedWaiting()).toBe(2);
    expect([held.has(request(0)), held.has(request(1)), held.has(request(2)), held.has(request(3)), held.has(request(9000))]).toEqual([true, false, false, true, true]);
    expect([held.waitingSize, held.blocksIndexed, held.readySize]).toEqual([heldLimits.waitingMax, heldLimits.waitingMax, 1]);
  });

  it('a request found lacking a block as a batch looks at it waits for that block, and its arrival wakes it', () => {
    const held = new ClientRequests();
    held.add(request(1), 0, 'o', []);
    expect(held.takeOnePerClient(8, 0, () => [block(1)])).toEqual([]);
    expect([held.waitingSize, held.readySize]).toEqual([1, 0]);
    expect(held.blockArrived(hexOf(1), 5, ready)).toBe(1);
    expect(held.takeOnePerClient(8, 5, ready).map((r) => r.clientKey[1])).toEqual([1]);
  });

  it('looks at a waiting request again after 1, 2, 4, ... periods, at most reaskPeriodsMax apart; one whose blocks came by another way wakes then', () => {
    const held = new ClientRequests();
    held.add(request(1), 0, 'o', [block(1)]);
    const periodMs = 10;
    const at: number[] = [];
    for (let now = 1; now <= 3_000; now++) {
      held.reaskDue(now, periodMs, () => {
        at.push(now);
        return [block(1)];
      });
    }
    const cap = reaskPeriodsMax * periodMs;
    expect(at.slice(0, 8)).toEqual([10, 30, 70, 150, 310, 630, 630 + cap, 630 + 2 * cap]);
    expect(at.length).toBe(8 + Math.floor((3_000 - (630 + 2 * cap)) / cap));
    expect(held.reaskDue(3_000 + cap, periodMs, ready)).toBe(1);
    expect([held.waitingSize, held.readySize]).toEqual([0, 1]);
  });
});
