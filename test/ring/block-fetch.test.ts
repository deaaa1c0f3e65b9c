/**
 * How a replica fetches the blocks it lacks (ring/replica-blocks.ts requestBlocks): each of one
 * member, hedged to one more after a fixed age, within a budget per asker shared among the members
 * that answer promptly. Before session 22 every block was asked of every peer, and again each
 * status period until it came: a restarted ring server catching up on 32 MiB had its peers build
 * ~3 GiB of answers (their send queues refused most) and stall up to 145 s
 * (test/client/catch-up-blocks.test.ts). The first two tests: one peer that holds the blocks is
 * faulty and never answers a fetch, and the lagging replica gets them anyway, each about once.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import type { ObjectService } from '../../ring/object-service.ts';
import type { ClientRequest, RingMessage } from '../../ring/messages.ts';
import { late } from '../../ring/replica-blocks.ts';
import { signMessage } from '../../ring/signing.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const statusIntervalMs = 50;
/**
 * Two askers (agreement and execution), each with 64 MiB by its block-size estimate and at most
 * 1,024 blocks at once (replica-blocks.ts inFlightBytesMax, inFlightBlocksMax).
 */
const inFlightBound = 2 * 1024;

function update(c: Cluster, w: Signer, nonce: number, clauses: Clause[]): Uint8Array {
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, 'big'), writerPublicKey: w.publicKey, nonce, clauses }));
}
const create: Clause[] = [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name: 'big', blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];
const appendBlocks = (c: Cluster, blocks: Uint8Array[]): Clause[] => [
  { predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: blocks.map((b) => ({ kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: b.length })) }] },
];
const sizedBlocks = (count: number, bytes: number, salt: number): Uint8Array[] =>
  Array.from({ length: count }, (_, i) => {
    const b = new Uint8Array(bytes).fill(salt);
    new DataView(b.buffer).setUint32(0, i);
    return b;
  });
const dataBlocks = (count: number, salt: number): Uint8Array[] => sizedBlocks(count, 4096, salt);
const MiB = 1024 * 1024;

interface FetchWatch {
  /** Blocks the peers sent the lagging replica (the silent one's not counted: it sends none). */
  received: number;
  /** Distinct blocks among them (data, and the interior and root blocks of transferred heads). */
  readonly distinct: Set<string>;
  /** Most distinct blocks asked and not yet sent back at once. */
  maxOutstanding: number;
  /** Most bytes of them at once (blocks `bytesOf` names; the others count 0). */
  maxOutstandingBytes: number;
  /** Asks of a block of a second member within a status period of asking the first. */
  askedOfTwo: number;
}

/**
 * Watches `lagging`'s fetches and the answers to them; `silent` holds blocks but answers no fetch
 * (a faulty member; the checkers still compare its executions, which are correct).
 */
function watchFetches(c: Cluster, lagging: string, silent: string, bytesOf = new Map<string, number>()): FetchWatch {
  const watch: FetchWatch = { received: 0, distinct: new Set(), maxOutstanding: 0, maxOutstandingBytes: 0, askedOfTwo: 0 };
  const asked = new Map<string, { atMs: number; of: string }>();
  let outstandingBytes = 0;
  c.sim.setInterceptor(lagging, (m: RingMessage, to: string) => {
    if (m.kind !== 'fetch-blocks') return [m];
    for (const bguid of m.bguids) {
      const key = toHex(bguid);
      const before = asked.get(key);
      if (before && before.of !== to && c.sim.nowMs - before.atMs < statusIntervalMs) watch.askedOfTwo++;
      if (!before) outstandingBytes += bytesOf.get(key) ?? 0;
      asked.set(key, { atMs: c.sim.nowMs, of: to });
    }
    watch.maxOutstanding = Math.max(watch.maxOutstanding, asked.size);
    watch.maxOutstandingBytes = Math.max(watch.maxOutstandingBytes, outstandingBytes);
    return [m];
  });
  for (const peer of c.replicaIds.filter((id) => id !== lagging)) {
    c.sim.setInterceptor(peer, (m: RingMessage, to: string) => {
      if (m.kind !== 'block-data' || to !== lagging) return [m];
      if (peer === silent) return [];
      const key = toHex(bguidOf(c.crypto, m.blockKind, m.bytes));
      watch.received++;
      watch.distinct.add(key);
      if (asked.delete(key)) outstandingBytes -= bytesOf.get(key) ?? 0;
      return [m];
    });
  }
  return watch;
}

function ring(seed: number, parameters: Record<string, number> = {}): Cluster {
  const c = buildCluster({ seed, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', parameters: { statusIntervalMs, ...parameters }, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.submit(0, update(c, c.clientSigners[0]!, 1, create));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  return c;
}

const viewChanges = (c: Cluster): number => Math.max(...[0, 1, 2, 3].map((i) => c.replica(i)?.counters.viewChanges ?? 0));

/** Sends each block to the three replicas but ring-3 (which thus lacks them all). */
function uploadMissingAtRing3(c: Cluster, blocks: Uint8Array[]): void {
  for (const b of blocks) for (const id of ['ring-0', 'ring-1', 'ring-2']) c.sim.send('client-0', id, { kind: 'put-block', block: b });
  c.sim.runFor(50);
}

const executedEverywhere = (c: Cluster): boolean => [1, 2, 3].every((i) => c.replica(i)!.lastExecuted === c.replica(0)!.lastExecuted);

describe('fetching missing blocks', () => {
  it('a backup that missed the upload of 200 blocks one update names gets each about once, a bounded number asked at a time, though a peer holding them never answers', () => {
    const c = ring(41);
    const blocks = dataBlocks(200, 1);
    for (const b of blocks) for (const id of ['ring-0', 'ring-1', 'ring-2']) c.sim.send('client-0', id, { kind: 'put-block', block: b });
    c.sim.runFor(50);
    const watch = watchFetches(c, 'ring-3', 'ring-1');
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    expect(c.sim.runUntil(() => c.completed[0] === 2 && executedEverywhere(c), 10_000)).toBe(true);
    console.log(`200 blocks, ring-1 silent: ring-3 received ${watch.received} (${watch.distinct.size} distinct), at most ${watch.maxOutstanding} outstanding, ${watch.askedOfTwo} asked of two peers at once; done at ${c.sim.nowMs.toFixed(0)} ms`);
    const ring3 = c.replica(3)!;
    expect(watch.askedOfTwo).toBe(0);
    expect(watch.maxOutstanding).toBeLessThanOrEqual(inFlightBound);
    // Before: each fetch went to all three peers, and both correct ones answered it (400).
    expect(watch.received).toBeLessThanOrEqual(1.1 * watch.distinct.size);
    expect(ring3.blockState.wanted.size).toBe(0);
    for (const b of blocks) expect(ring3.service.getBlock!(bguidOf(c.crypto, 'data', b))).toBeDefined();
  });

  it('a replica partitioned away past several checkpoints fetches what the transferred heads reach, though a peer holding it never answers', () => {
    const c = ring(42, { checkpointInterval: 2, watermarkWindow: 4, batchSizeMax: 1 });
    c.sim.partition([['ring-0', 'ring-1', 'ring-2', 'client-0'], ['ring-3']]);
    const blocks: Uint8Array[] = [];
    for (let k = 0; k < 6; k++) {
      const more = dataBlocks(40, 10 + k);
      blocks.push(...more);
      for (const b of more) for (const id of ['ring-0', 'ring-1', 'ring-2']) c.sim.send('client-0', id, { kind: 'put-block', block: b });
      c.submit(0, update(c, c.clientSigners[0]!, k + 2, appendBlocks(c, more)));
      expect(c.sim.runUntil(() => c.completed[0] === k + 2, 5_000)).toBe(true);
    }
    const watch = watchFetches(c, 'ring-3', 'ring-1');
    c.sim.heal();
    const ring3 = c.replica(3)!.service as ObjectService;
    expect(c.sim.runUntil(() => executedEverywhere(c) && ring3.missingStateBlocks().length === 0 && c.events.stateTransfers > 0, 10_000)).toBe(true);
    console.log(`state transfer, ${blocks.length} blocks, ring-1 silent: ring-3 received ${watch.received} (${watch.distinct.size} distinct), at most ${watch.maxOutstanding} outstanding, ${watch.askedOfTwo} asked of two peers at once; done at ${c.sim.nowMs.toFixed(0)} ms`);
    expect(watch.askedOfTwo).toBe(0);
    expect(watch.maxOutstanding).toBeLessThanOrEqual(inFlightBound);
    // Before: 544 for 272 distinct.
    expect(watch.received).toBeLessThanOrEqual(1.1 * watch.distinct.size);
    for (const b of blocks) expect(ring3.getBlock(bguidOf(c.crypto, 'data', b))).toBeDefined();
    // Execution goes on from the transferred state.
    c.submit(0, update(c, c.clientSigners[0]!, 8, appendBlocks(c, [])));
    expect(c.sim.runUntil(() => c.completed[0] === 8 && executedEverywhere(c), 5_000)).toBe(true);
  });
});

/**
 * The second review of the session-22 change (findings 1-3). Each fails on that change as it was
 * (ring/replica-blocks.ts before session 23) and passes on HEAD before it and on session 23's.
 */
describe('fetching missing blocks, review findings (session 23)', () => {
  it('finding 1: a member that drips its answers (oldest first, one per 3.5 status periods) and takes no part in agreement delays a lagging backup by a few periods at most', () => {
    // ring-1 sends nothing but its block-data to ring-3, one at a time: so 2f+1 prepares need
    // ring-3, which needs all 200 blocks. Before (session 22): each answer reset "someone
    // answered", so the blocks asked of ring-1 were never asked of another (up to 115 s in the
    // reviewer's run); on HEAD every block was asked of everyone (~50 ms).
    const c = ring(43);
    const blocks = dataBlocks(200, 3);
    uploadMissingAtRing3(c, blocks);
    const dripped: RingMessage[] = [];
    c.sim.setInterceptor('ring-1', (m: RingMessage, to: string) => {
      if (m.kind === 'block-data' && to === 'ring-3') dripped.push(m);
      return [];
    });
    let nextDripMs = c.sim.nowMs;
    const drip = (): void => {
      if (c.sim.nowMs < nextDripMs || dripped.length === 0) return;
      c.sim.send('ring-1', 'ring-3', dripped.shift()!);
      nextDripMs = c.sim.nowMs + 3.5 * statusIntervalMs;
    };
    const startMs = c.sim.nowMs;
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    const done = c.sim.runUntil(() => (drip(), c.completed[0] === 2 && c.replica(3)!.lastExecuted === c.replica(0)!.lastExecuted), 60_000);
    const tookMs = c.sim.nowMs - startMs;
    console.log(`finding 1: 200 blocks, ring-1 dripping: done ${done} after ${tookMs.toFixed(0)} ms (${(tookMs / statusIntervalMs).toFixed(1)} status periods), ${viewChanges(c)} view changes`);
    expect(done).toBe(true);
    expect(tookMs).toBeLessThan(20 * statusIntervalMs);
  });

  it('finding 2: with one member crashed, a backup lacking the 1,000 blocks one update names prepares it without a view change', () => {
    // ring-2 is down, so the update needs ring-3's prepare, and ring-3 fetches the 1,000 blocks at
    // agreement. Before (session 22): 16 blocks per pre-prepare retransmission, the update took
    // seconds and view changes (reviewer: 5-49 s for 200-4,000 blocks; HEAD 253 ms).
    const c = ring(44);
    const blocks = dataBlocks(1000, 4);
    uploadMissingAtRing3(c, blocks);
    c.sim.crash('ring-2');
    const startMs = c.sim.nowMs;
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    const done = c.sim.runUntil(() => c.completed[0] === 2, 60_000);
    const tookMs = c.sim.nowMs - startMs;
    console.log(`finding 2: 1,000 blocks, ring-2 crashed: done ${done} after ${tookMs.toFixed(0)} ms, ${viewChanges(c)} view changes`);
    expect(done).toBe(true);
    expect(viewChanges(c)).toBe(0);
    expect(tookMs).toBeLessThan(20 * statusIntervalMs);
  });

  it('finding 3: with 100 ms answers and small blocks, a lagging backup fetches 2,000 blocks in a few round trips, not one round trip per 16', () => {
    // Before (session 22): 16 blocks at once, so 2,000 took 125 round trips (reviewer: 0.32 s on
    // HEAD, 9.4 s). Now the budget is 64 MiB by the observed block size.
    const c = ring(45);
    const blocks = dataBlocks(2000, 5);
    uploadMissingAtRing3(c, blocks);
    c.sim.setNetwork({ delayMsMin: 50, delayMsMax: 50 });
    const startMs = c.sim.nowMs;
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    const done = c.sim.runUntil(() => c.completed[0] === 2 && c.replica(3)!.lastExecuted === c.replica(0)!.lastExecuted, 60_000);
    const tookMs = c.sim.nowMs - startMs;
    console.log(`finding 3: 2,000 blocks, 100 ms round trips: ring-3 executed after ${tookMs.toFixed(0)} ms, ${viewChanges(c)} view changes`);
    expect(done).toBe(true);
    expect(tookMs).toBeLessThan(1_500);
  });

  it('finding 5: a client naming blocks nobody holds at the primary makes no correct member look late to it', () => {
    // The primary's asks for a queued request's blocks (any client names them) do not time the
    // members (replica-blocks.ts onBlockData, ask): before (session 22) each went unanswered for a
    // status period and put the member asked on the skip list every asker shared.
    const c = buildCluster({ seed: 46, f: 1, clientCount: 2, crypto: fakeCrypto, service: 'object', parameters: { statusIntervalMs }, network: { delayMsMin: 1, delayMsMax: 2 } });
    c.submit(0, update(c, c.clientSigners[0]!, 1, create));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
    const w = c.clientSigners[1]!;
    for (let nonce = 1; nonce <= 10; nonce++) {
      const bogus = dataBlocks(64, 100 + nonce).map((b) => b.subarray(0, 16));
      const operation = encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, `m${nonce}`), writerPublicKey: w.publicKey, nonce, clauses: appendBlocks(c, bogus) }));
      c.sim.send('client-1', 'ring-0', signMessage<ClientRequest>(fakeCrypto, w, { kind: 'request', clientKey: w.publicKey, nonce, replyTo: 'client-1', operation }));
      c.sim.runFor(2 * statusIntervalMs);
    }
    const primary = c.replica(0)!;
    expect(primary.blockState.wanted.size).toBeGreaterThan(0); // still asking for some
    for (const i of [1, 2, 3]) expect(late(primary, i)).toBe(false);
    // And the primary still fetches a correct client's blocks it lacks, ring-3 silent.
    const blocks = dataBlocks(100, 6);
    for (const b of blocks) for (const id of ['ring-1', 'ring-2', 'ring-3']) c.sim.send('client-0', id, { kind: 'put-block', block: b });
    c.sim.runFor(50);
    c.sim.setInterceptor('ring-3', (m: RingMessage) => (m.kind === 'block-data' ? [] : [m]));
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 5_000)).toBe(true);
    expect(viewChanges(c)).toBe(0);
    // The state checked above is not false for everyone: ring-2, lacking the next update's blocks,
    // fetches them (agreement, then execution) and finds the silent ring-3 late.
    const more = dataBlocks(100, 7);
    for (const b of more) for (const id of ['ring-0', 'ring-1', 'ring-3']) c.sim.send('client-0', id, { kind: 'put-block', block: b });
    c.sim.runFor(50);
    c.submit(0, update(c, c.clientSigners[0]!, 3, appendBlocks(c, more)));
    expect(c.sim.runUntil(() => c.completed[0] === 3 && c.replica(2)!.lastExecuted === primary.lastExecuted, 5_000)).toBe(true);
    expect(late(c.replica(2)!, 3)).toBe(true);
    for (const i of [0, 1]) expect(late(c.replica(2)!, i)).toBe(false);
    expect(viewChanges(c)).toBe(0);
  });
});

/**
 * The review of session 23's change (its findings 1 and 2; 3-6 are a debug line, a walk per
 * tick, and docs). Each test below fails on that change as committed (b39f4d0).
 */
describe('fetching missing blocks, second review findings (session 23)', () => {
  it('finding 1: 20 blocks of 64 B then 200 of 512 KiB never have more than 64 MiB and a block asked and unanswered at once', () => {
    // ring-2 is down, so the update needs ring-3's prepare, and only ring-3's agreement fetches
    // (one budget). b39f4d0 halved its size estimate at each smaller block: after 16 tiny ones it
    // was 64 B, and all 200 large blocks (100 MiB) were asked at once. Now the estimate is the
    // largest of the last 64 blocks received (starting at 4 MiB): 16 at a time, then 128 of 512 KiB.
    const c = ring(47);
    const blocks = [...sizedBlocks(20, 64, 7), ...sizedBlocks(200, 512 * 1024, 8)];
    uploadMissingAtRing3(c, blocks);
    c.sim.crash('ring-2');
    const bytesOf = new Map(blocks.map((b) => [toHex(bguidOf(c.crypto, 'data', b)), b.length]));
    const watch = watchFetches(c, 'ring-3', '', bytesOf);
    const startMs = c.sim.nowMs;
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    const done = c.sim.runUntil(() => c.completed[0] === 2, 60_000);
    const tookMs = c.sim.nowMs - startMs;
    console.log(`finding 1 (2nd review): 20 x 64 B + 200 x 512 KiB, ring-2 crashed: done ${done} after ${tookMs.toFixed(0)} ms; at most ${(watch.maxOutstandingBytes / MiB).toFixed(1)} MiB (${watch.maxOutstanding} blocks) asked and unanswered at once`);
    expect(done).toBe(true);
    expect(watch.distinct.size).toBe(blocks.length);
    expect(watch.maxOutstandingBytes).toBeLessThanOrEqual(64 * MiB + 512 * 1024);
    expect(viewChanges(c)).toBe(0);
  });

  it('finding 2: a crashed member holds one open ask (a probe) once late, the prompt ones carry the budget, and catch-up takes at most a hedge age more than with the member prompt', () => {
    // 1 MiB blocks: a budget of 16 (64 MiB by the 4 MiB estimate, until 64 arrive), and 25 ms links
    // (a round trip of one status period), so ring-3's 80 blocks take several round trips while a
    // hedge waits 4. ring-1 is crashed (a truly silent member): it is asked its share of the first
    // 16 and owes them; 4 periods on it is late and is asked one block at a time, while ring-0 and
    // ring-2 share the budget. With `late` always false (b39f4d0's tests all pass that way) it keeps
    // its share (6 of 16) the whole catch-up, each ask of it answered only by a hedge 4 periods on.
    const run = (crashed: boolean): { tookMs: number; silentOpenMax: number; silentAsks: number } => {
      const c = ring(48);
      const blocks = sizedBlocks(80, MiB, 9);
      uploadMissingAtRing3(c, blocks);
      // ring-1 takes no part in agreement (so ring-3's prepare is needed and only its agreement
      // fetches), and answers fetches promptly or, crashed, not at all.
      if (crashed) c.sim.crash('ring-1');
      else c.sim.setInterceptor('ring-1', (m: RingMessage) => (m.kind === 'block-data' ? [m] : []));
      c.sim.setNetwork({ delayMsMin: 25, delayMsMax: 25 });
      // The blocks asked of ring-1 and not yet received by ring-3 (from anyone), from 6 periods after
      // its first ask (late after 4; 2 more for the hedges of what it was asked before).
      const openAtSilent = new Set<string>();
      let firstAskMs = Infinity;
      let silentOpenMax = 0;
      let silentAsks = 0;
      c.sim.setInterceptor('ring-3', (m: RingMessage, to: string) => {
        if (m.kind !== 'fetch-blocks' || to !== 'ring-1') return [m];
        firstAskMs = Math.min(firstAskMs, c.sim.nowMs);
        silentAsks += m.bguids.length;
        for (const bguid of m.bguids) openAtSilent.add(toHex(bguid));
        if (c.sim.nowMs >= firstAskMs + 6 * statusIntervalMs) silentOpenMax = Math.max(silentOpenMax, openAtSilent.size);
        return [m];
      });
      for (const peer of ['ring-0', 'ring-2']) {
        c.sim.setInterceptor(peer, (m: RingMessage, to: string) => {
          if (m.kind === 'block-data' && to === 'ring-3') openAtSilent.delete(toHex(bguidOf(c.crypto, m.blockKind, m.bytes)));
          return [m];
        });
      }
      const startMs = c.sim.nowMs;
      c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
      expect(c.sim.runUntil(() => c.completed[0] === 2, 60_000)).toBe(true);
      if (crashed) expect(late(c.replica(3)!, 1)).toBe(true);
      for (const i of crashed ? [0, 2] : [0, 1, 2]) expect(late(c.replica(3)!, i)).toBe(false);
      return { tookMs: c.sim.nowMs - startMs, silentOpenMax, silentAsks };
    };
    const healthy = run(false);
    const faulty = run(true);
    console.log(`finding 2 (2nd review): 80 x 1 MiB, 50 ms round trips: ${healthy.tookMs.toFixed(0)} ms with no silent member; ${faulty.tookMs.toFixed(0)} ms with ring-1 crashed, asked ${faulty.silentAsks} blocks, at most ${faulty.silentOpenMax} open once late`);
    // Without `late` (measured with chooseMember's calls forced false): 696 ms, 6 open once late.
    expect(faulty.silentOpenMax).toBeLessThanOrEqual(1);
    // One hedge age for what was asked of ring-1 before it was late, no more.
    expect(faulty.tookMs).toBeLessThanOrEqual(healthy.tookMs + 4 * statusIntervalMs);
  });
});
