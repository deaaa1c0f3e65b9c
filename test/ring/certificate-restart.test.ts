/**
 * Statements outlive restarts (ring/replica-certificates.ts recoverStatements): a batch's
 * statements are kept in the store with its execution until certified, so updates a ring executed
 * and acknowledged just before every replica crashed are certified after the restart. Before the
 * sixteenth session statements were volatile, and these writes (acknowledged, never certified,
 * so never handed to the archive) stayed uncertified for good.
 */
import { describe, expect, it } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

describe('statements kept across restarts', () => {
  for (const checks of ['inline', 'host'] as const) {
    it(`every replica crashes after executing writes nobody certified yet: all are certified after the restart (checks ${checks})`, () => {
      const c = buildCluster({ seed: 3, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 3 }, certificateWork: checks });
      const write = (k: number) => {
        for (let i = 0; i < 2; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
      };
      for (let k = 0; k < 3; k++) write(k);
      expect(c.sim.runUntil(() => c.certified.every((n) => n === 3), 10_000)).toBe(true);
      // No share gets through: the next writes complete (f+1 replies) but are not certified.
      let blocking = true;
      c.replicaIds.forEach((id) => c.sim.setInterceptor(id, (m): RingMessage[] => (blocking && m.kind === 'share' ? [] : [m])));
      for (let k = 3; k < 6; k++) write(k);
      expect(c.sim.runUntil(() => c.completed.every((n) => n === 6), 10_000)).toBe(true);
      // Long enough for every replica's held execution writes to be staged (a tick), not for a takeover.
      c.sim.runFor(50);
      expect(c.certified).toEqual([3, 3]);
      const executed = c.replicaIds.map((_, i) => c.replica(i)!.lastExecuted);
      for (const id of c.replicaIds) c.sim.crash(id);
      for (const id of c.replicaIds) c.sim.restart(id);
      blocking = false;
      // Each replica holds again what it executed and had not seen certified.
      c.replicaIds.forEach((_, i) => {
        const r = c.replica(i)!;
        expect(r.lastExecuted).toBe(executed[i]);
        expect(r.certificateState.leavesFloor).toBeLessThanOrEqual(r.lastExecuted);
        expect(r.certificateState.executed.size).toBeGreaterThan(0);
      });
      expect(c.sim.runUntil(() => c.certified.every((n) => n === 6), 10_000)).toBe(true);
      // Certified statements are forgotten in memory and, once the deletes are staged, in the store.
      write(6);
      expect(c.sim.runUntil(() => c.certified.every((n) => n === 7), 10_000)).toBe(true);
      c.sim.runFor(100);
      c.replicaIds.forEach((id, i) => {
        const r = c.replica(i)!;
        const kept = c.sim.store(id).keys('ring/leaves/').map((k) => Number(k.slice('ring/leaves/'.length)));
        expect(kept.every((seq) => seq > r.certificateState.certifiedThrough)).toBe(true);
      });
    });
  }
});
