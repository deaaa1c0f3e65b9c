/**
 * A measurement, not a gate: how long a replica lacking N blocks takes to fetch them with f = 2
 * (n = 7) when TWO members are faulty towards its fetches (ring/replica-blocks.ts requestBlocks),
 * and whether that costs a view change or a client write longer than the runtime's request
 * timeout. The open question of sessions 22-23 (replica-blocks.ts hedgePeriods, docs/ring.md
 * "catch-up no longer buries"): the hedges reach a correct holder after at most 2f-1 = 3 of them,
 * at 4 + 8 + 16 = 28 status periods, 7 s at the runtime's 250 ms, above its 6 s request timeout.
 *
 * Timeouts are the runtime's in status periods (runtime/cluster-config.ts runtimeRingDefaults:
 * 250 ms period, request timeout 6 s = 24 periods, view change 8 s = 32 periods), here with a
 * 50 ms period: requestTimeoutMs 1,200, viewChangeTimeoutMs 1,600. Links 1-2 ms.
 *
 * ring-6 (L) lacks the N blocks of 4 KiB one update names (the client put them to ring-0..5);
 * ring-1 and ring-2 are faulty. Two paths:
 * - agreement: the faulty members send nothing but block data (no prepare, commit, status, reply),
 *   so the update needs L's prepare, and L fetches at agreement (the backup's path);
 * - restart: the faulty members take part in agreement; L is down while the update executes,
 *   restarts, and fetches at execution (a restarted replica's catch-up). A small write is
 *   submitted at the restart to see whether L's catch-up delays clients.
 * Fault modes, towards L's fetches only (each an interceptor on the faulty member's block-data to L):
 * - none: no faulty member (the base); agreement path also "out only": out of agreement, prompt answers;
 * - silent: both answer no fetch;
 * - before-hedge: both answer each fetch just before the first hedge age (4 periods less 12 ms from
 *   when the fetch reached them), so they never look late and keep their share of the budget;
 * - silent+drip: ring-1 silent, ring-2 drips its answers, oldest first, one per 3.5 periods;
 * - chain: an omniscient pair trying for the 2f-1 chain: ring-1 withholds every block but answers
 *   the newest block asked of it once a period (so it never looks late and keeps being asked),
 *   ring-2 answers promptly except the blocks first asked of ring-1 (its hedges), which it
 *   withholds;
 * - chain+lagging: chain, and ring-5 (correct) lacks the blocks as well and is treated so too, so
 *   only f+1 correct members hold them (ring-0, -3, -4): the setting of the 28-period estimate
 *   (silent, silent, lacking, then a holder).
 * Which member is asked first: chooseMember sends each new block to the member with the fewest open
 * asks, ties to the members after the last one asked (from ring-0 on a fresh replica), so ring-1 and
 * ring-2 are first asked for about a third of the blocks; a test cannot make them first for all
 * without making the correct members look late.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const statusIntervalMs = 50;
const p = statusIntervalMs;
/** The runtime's 6 s request timeout at its 250 ms period: 24 periods. */
const requestTimeoutMs = 24 * p;
const parameters = { statusIntervalMs, requestTimeoutMs, viewChangeTimeoutMs: 32 * p };
const blockBytes = 4096;
const lagging = 'ring-6';
const faulty = ['ring-1', 'ring-2'] as const;

function update(c: Cluster, w: Signer, nonce: number, clauses: Clause[], name = 'big'): Uint8Array {
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, name), writerPublicKey: w.publicKey, nonce, clauses }));
}
const create = (name: string): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];
const appendBlocks = (c: Cluster, blocks: Uint8Array[]): Clause[] => [
  { predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: blocks.map((b) => ({ kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: b.length })) }] },
];
const dataBlocks = (count: number, salt: number): Uint8Array[] =>
  Array.from({ length: count }, (_, i) => {
    const b = new Uint8Array(blockBytes).fill(salt);
    new DataView(b.buffer).setUint32(0, i);
    return b;
  });

type Mode = 'none' | 'out only' | 'silent' | 'before-hedge' | 'silent+drip' | 'chain' | 'chain+lagging';
type Path = 'agreement' | 'restart';

interface Row {
  path: Path;
  mode: Mode;
  n: number;
  /** From the update's submission (agreement) or L's restart (restart) until L holds all N blocks. */
  blocksMs: number;
  /** Until L executed the update. */
  executedMs: number;
  /** The update's client write (agreement) or the small write submitted at the restart, from its submission. */
  writeMs: number;
  viewChanges: number;
  /** Blocks L asked of the faulty members / of the correct ones (each ask of a member counted once per fetch). */
  askedFaulty: number;
  askedHonest: number;
  /** Most open asks L held at once at the faulty members (blocks asked of them and not yet at L). */
  faultyOpenMax: number;
  /** Blocks that reached L more than once. */
  duplicates: number;
}

function run(path: Path, mode: Mode, n: number, seed: number): Row {
  const c = buildCluster({ seed, f: 2, clientCount: 2, crypto: fakeCrypto, service: 'object', parameters, network: { delayMsMin: 1, delayMsMax: 2 } });
  c.submit(0, update(c, c.clientSigners[0]!, 1, create('big')));
  c.submit(1, update(c, c.clientSigners[1]!, 1, create('small'), 'small'));
  expect(c.sim.runUntil(() => c.completed[0] === 1 && c.completed[1] === 1, 5_000)).toBe(true);
  // The replicas that lack the blocks: L, and with 'chain+lagging' ring-5 as well (then only f+1
  // correct members, ring-0, -3 and -4, hold them: the 2f-1 bound's worst case).
  const lags = mode === 'chain+lagging' ? [lagging, 'ring-5'] : [lagging];
  const holders = c.replicaIds.filter((id) => !lags.includes(id));
  const honest = holders.filter((id) => !faulty.includes(id as never) || mode === 'none');
  const blocks = dataBlocks(n, 3);
  const keys = blocks.map((b) => toHex(bguidOf(c.crypto, 'data', b)));
  const keySet = new Set(keys);
  for (const b of blocks) for (const id of holders) c.sim.send('client-0', id, { kind: 'put-block', block: b });
  c.sim.runFor(50);
  const L = (): ReturnType<Cluster['replica']> => c.replica(6);
  const hasAll = (): boolean => L() !== null && blocks.every((b) => L()!.service.getBlock!(bguidOf(c.crypto, 'data', b)) !== undefined);

  // What each lagging replica asks of whom (an observer on its fetches: it is correct). Figures are L's.
  interface Lag { firstAsked: Map<string, string>; lastAskedOf: Map<string, string>; sent: Map<string, number>; nextDripMs: number; lastTrickleMs: number }
  const lag = new Map<string, Lag>(lags.map((id) => [id, { firstAsked: new Map(), lastAskedOf: new Map(), sent: new Map(), nextDripMs: 0, lastTrickleMs: -Infinity }]));
  const openAtFaulty = new Map<string, Set<string>>(faulty.map((f) => [f, new Set<string>()]));
  let askedFaulty = 0;
  let askedHonest = 0;
  let faultyOpenMax = 0;
  const observe = new Map<string, (m: RingMessage & { kind: 'fetch-blocks' }, to: string) => RingMessage[]>();
  for (const id of lags) {
    const state = lag.get(id)!;
    observe.set(id, (m, to) => {
      for (const bguid of m.bguids) {
        const key = toHex(bguid);
        if (!keySet.has(key)) continue;
        if (!state.firstAsked.has(key)) state.firstAsked.set(key, to);
        state.lastAskedOf.set(to, key);
        if (id !== lagging) continue;
        if (faulty.includes(to as never)) {
          askedFaulty++;
          openAtFaulty.get(to)!.add(key);
        } else askedHonest++;
      }
      faultyOpenMax = Math.max(faultyOpenMax, openAtFaulty.get(faulty[0])!.size + openAtFaulty.get(faulty[1])!.size);
      return [m];
    });
  }
  // Blocks on their way to each lagging replica, from anyone (L's arrival checked by hasAll once all are on their way).
  const noteSent = (m: RingMessage, to: string): void => {
    const state = lag.get(to);
    if (m.kind !== 'block-data' || !state) return;
    const key = toHex(bguidOf(c.crypto, m.blockKind, m.bytes));
    if (!keySet.has(key)) return;
    state.sent.set(key, (state.sent.get(key) ?? 0) + 1);
    if (to === lagging) for (const open of openAtFaulty.values()) open.delete(key);
  };
  const sendLater = (from: string, to: string, delayMs: number, m: RingMessage): void =>
    c.sim.later(from, Math.max(0, delayMs), 'withheld-block', () => {
      noteSent(m, to);
      c.sim.send(from, to, m);
      return [];
    });

  const outOfAgreement = path === 'agreement' && mode !== 'none';
  for (const id of c.replicaIds.filter((i) => !faulty.includes(i as never))) {
    c.sim.setInterceptor(id, (m: RingMessage, to: string) => {
      if (m.kind === 'fetch-blocks' && observe.has(id)) return observe.get(id)!(m, to);
      noteSent(m, to);
      return [m];
    });
  }
  faulty.forEach((id, k) => {
    c.sim.setInterceptor(id, (m: RingMessage, to: string) => {
      const state = lag.get(to);
      if (m.kind !== 'block-data' || !state) return outOfAgreement ? [] : [m];
      const key = toHex(bguidOf(c.crypto, m.blockKind, m.bytes));
      const behaviour = mode === 'silent+drip' ? (k === 0 ? 'silent' : 'drip') : mode === 'chain+lagging' ? 'chain' : mode;
      const forward = (): RingMessage[] => (noteSent(m, to), [m]);
      switch (behaviour) {
        case 'silent':
          return [];
        case 'before-hedge':
          sendLater(id, to, 4 * p - 12, m);
          return [];
        case 'drip':
          state.nextDripMs = Math.max(state.nextDripMs, c.sim.nowMs + 3.5 * p);
          sendLater(id, to, state.nextDripMs - c.sim.nowMs, m);
          state.nextDripMs += 3.5 * p;
          return [];
        case 'chain':
          // ring-2: prompt, but withholds the blocks first asked of ring-1 (ring-1's hedges).
          if (k === 1) return state.firstAsked.get(key) === faulty[0] ? [] : forward();
          // ring-1: withholds all but the newest block asked of it, once a period (so never late).
          if (state.lastAskedOf.get(id) === key && c.sim.nowMs - state.lastTrickleMs >= p) {
            state.lastTrickleMs = c.sim.nowMs;
            return forward();
          }
          return [];
        default: // none, out only
          return forward();
      }
    });
  });
  if (mode !== 'none') for (const f of faulty) c.byzantine.add(Number(f.slice(5)));

  let startMs: number;
  let writeMs = NaN;
  let executedSeq: number;
  if (path === 'agreement') {
    startMs = c.sim.nowMs;
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    const done = c.sim.runUntil(() => {
      if (Number.isNaN(writeMs) && c.completed[0] === 2) writeMs = c.sim.nowMs - startMs;
      return c.completed[0] === 2;
    }, 60_000);
    expect(done).toBe(true);
    executedSeq = c.replica(0)!.lastExecuted;
  } else {
    for (const id of lags) c.sim.crash(id);
    c.submit(0, update(c, c.clientSigners[0]!, 2, appendBlocks(c, blocks)));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 5_000)).toBe(true);
    executedSeq = c.replica(0)!.lastExecuted;
    c.sim.runFor(100);
    for (const id of lags) c.sim.restart(id);
    startMs = c.sim.nowMs;
    c.submit(1, update(c, c.clientSigners[1]!, 2, appendBlocks(c, []), 'small'));
  }
  let blocksMs = NaN;
  let executedMs = NaN;
  const sentToL = lag.get(lagging)!.sent;
  const finished = c.sim.runUntil(() => {
    if (Number.isNaN(writeMs) && path === 'restart' && c.completed[1] === 2) writeMs = c.sim.nowMs - startMs;
    if (Number.isNaN(blocksMs) && sentToL.size === n && hasAll()) blocksMs = c.sim.nowMs - startMs;
    if (Number.isNaN(executedMs) && (L()?.lastExecuted ?? 0) >= executedSeq) executedMs = c.sim.nowMs - startMs;
    return !Number.isNaN(blocksMs) && !Number.isNaN(executedMs) && !Number.isNaN(writeMs);
  }, 60_000);
  expect(finished).toBe(true);
  let duplicates = 0;
  for (const count of sentToL.values()) duplicates += count - 1;
  const correct = honest.concat(lags).map((id) => Number(id.slice(5)));
  const viewChanges = Math.max(c.events.viewChanges, ...correct.map((i) => c.replica(i)?.counters.viewChanges ?? 0));
  return { path, mode, n, blocksMs, executedMs, writeMs, viewChanges, askedFaulty, askedHonest, faultyOpenMax, duplicates };
}

const periods = (ms: number): string => (ms / p).toFixed(1);
function table(rows: Row[]): string {
  const head = '| path | mode | N | all blocks at L: periods (ms) | L executed: periods | client write: periods (ms) ≤ 24? | view changes | asked of faulty: blocks (KiB) | asked of correct: blocks (KiB) | faulty open max | duplicates |';
  const lines = rows.map((r) =>
    `| ${r.path} | ${r.mode} | ${r.n} | ${periods(r.blocksMs)} (${r.blocksMs.toFixed(0)}) | ${periods(r.executedMs)} | ${periods(r.writeMs)} (${r.writeMs.toFixed(0)}) ${r.writeMs <= requestTimeoutMs ? 'yes' : 'NO'} | ${r.viewChanges} | ${r.askedFaulty} (${(r.askedFaulty * blockBytes) / 1024}) | ${r.askedHonest} (${(r.askedHonest * blockBytes) / 1024}) | ${r.faultyOpenMax} | ${r.duplicates} |`,
  );
  return [head, '|---|---|---|---|---|---|---|---|---|---|---|', ...lines].join('\n');
}

describe('fetching missing blocks with f = 2 and two faulty members (measured)', () => {
  for (const path of ['agreement', 'restart'] as const) {
    it(`${path} path: 200 and 1,000 blocks, each fault mode against the base`, () => {
      const modes: Mode[] = path === 'agreement' ? ['none', 'out only', 'silent', 'before-hedge', 'silent+drip', 'chain', 'chain+lagging'] : ['none', 'silent', 'before-hedge', 'silent+drip', 'chain', 'chain+lagging'];
      const rows: Row[] = [];
      for (const n of [200, 1000]) for (const mode of modes) rows.push(run(path, mode, n, n === 200 ? 71 : 72));
      console.log(`f = 2, ${path} path (status period ${p} ms; request timeout ${requestTimeoutMs} ms = 24 periods):\n${table(rows)}`);
      // Bounds with margin over what was measured (session 24: at most 14.0 periods for the chains,
      // 6.0 otherwise, every write well inside 24 periods, no view change, no duplicate). All blocks
      // reached L and the cluster's checkers (same execution at each seq on the correct replicas)
      // ran after every event.
      const base = new Map(rows.filter((r) => r.mode === 'none').map((r) => [r.n, r]));
      for (const r of rows) {
        expect(r.blocksMs).toBeLessThan(20 * p); // the 28-period estimate was not reached
        expect(r.viewChanges).toBe(0);
        expect(r.writeMs).toBeLessThan(requestTimeoutMs);
        expect(r.duplicates).toBeLessThanOrEqual(r.n / 20);
        // Each block asked of a faulty member about once at most, never all of them at once.
        expect(r.askedFaulty).toBeLessThanOrEqual(r.n / 2);
        expect(r.faultyOpenMax).toBeLessThanOrEqual(r.n / 2);
        // Against the base: faults cost at most a first and a second hedge age (4 + 8 periods) and a
        // few periods of agreement's retransmissions.
        expect(r.blocksMs).toBeLessThanOrEqual(base.get(r.n)!.blocksMs + 16 * p);
      }
    });
  }
});
