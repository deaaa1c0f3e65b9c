/**
 * Statements far below the execution point are given up (ring/replica-certificates.ts giveUpStale)
 * only once every certifier rank has had its turn at them. Until session 29 the distance alone
 * decided: a ring that executed more than 2 x watermarkWindow batches within one takeover period
 * (128 in 3 s at the runtime's settings) gave them up on every replica, and writes whose certifier
 * had skipped them by a state transfer, acknowledged to their clients, were never certified. A
 * simulator sweep of whole-ring crashes found it (seed 63 of its runtime-parameter runs, without
 * any crash): the primary took a state transfer while one batch behind, and the next rank's turn
 * came 3 s later, after the others had given the statements up.
 */
import { describe, expect, it } from 'vitest';
import { resetBelow } from '../../ring/replica-certificates.ts';
import { ringWithUncertifiedWrites } from './uncertified-writes.ts';

describe('statements the certifier skipped, while the ring runs far ahead', () => {
  it('are certified by the next rank when its turn comes, not given up before', () => {
    const takeoverMs = 3_000;
    const { c, write, unblock } = ringWithUncertifiedWrites({ seed: 11, certified: 3, cluster: { parameters: { certifyTakeoverMs: takeoverMs, heartbeatIntervalMs: 0 } } });
    // Writes 3-5 executed and were acknowledged; the primary (rank 0) lost their statements, as a
    // state transfer past them does. The other three replicas hold them.
    const view = c.replica(0)!.view;
    const primary = c.replica(view % 4)!;
    resetBelow(primary, primary.lastExecuted);
    unblock();
    const startMs = c.sim.nowMs;
    const startSeq = primary.lastExecuted;
    // The clients go on writing for most of a takeover period: well over 2 x watermarkWindow batches.
    let k = 6;
    for (let i = 0; i < 1_000 && c.sim.nowMs - startMs < takeoverMs - 500; i++, k++) {
      write(k);
      expect(c.sim.runUntil(() => c.completed.every((n) => n === k + 1), 2_000)).toBe(true);
    }
    expect(primary.lastExecuted - startSeq).toBeGreaterThan(2 * c.replica(0)!.params.watermarkWindow);
    // Every write is certified, 3-5 by rank 1 when its turn comes (3 s after they executed).
    expect(c.sim.runUntil(() => c.certified.every((n) => n === k), 3 * takeoverMs)).toBe(true);
    expect(c.replica(0)!.view).toBe(view);
  });
});
