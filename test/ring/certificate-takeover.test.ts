/**
 * Statements that only replicas other than the certifiers still hold are certified all the same
 * (ring/replica-certificates.ts maybeStartRound): here both certifiers of view 0 restart without
 * their uncertified statements (their records gone, as after a state transfer), and the two other replicas, which learn what is certified only
 * from f+1 matching claims, take over after their rank's wait. Before the thirteenth session these
 * writes stayed uncertified for good.
 */
import { describe, expect, it } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster, restartWithoutStatements } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { ringWithUncertifiedWrites } from './uncertified-writes.ts';

describe('certificate rounds by replicas that are not certifiers', () => {
  for (const [checks, forge] of [['inline', false], ['host', false], ['inline', true], ['host', true]] as const) {
    it(`both certifiers lose their statements: ranks 2 and 3 certify them (checks ${checks}${forge ? ', and the new primary floods them with false claims' : ''})`, () => {
      // Shares stop after three certified writes: the next three complete but are not certified.
      const { c, write, blocking, unblock } = ringWithUncertifiedWrites({ seed: 7, certified: 3, cluster: { certificateWork: checks, parameters: { heartbeatIntervalMs: 0 } } });
      // The next view's certifiers (backups now) restart without their statements for those
      // writes. Then the primary stops proposing, so the view changes to theirs.
      const view = c.replica(0)!.view;
      const primary = view % 4;
      const certifiers = [(view + 1) % 4, (view + 2) % 4];
      const holders = [primary, (view + 3) % 4];
      for (const i of certifiers) restartWithoutStatements(c, i);
      let stalled = true;
      c.sim.setInterceptor(c.replicaIds[primary]!, (m): RingMessage[] => ((blocking() && m.kind === 'share') || (stalled && m.kind === 'pre-prepare') ? [] : [m]));
      const lastExecuted = c.replica(holders[1]!)!.lastExecuted;
      write(6);
      expect(c.sim.runUntil(() => [0, 1, 2, 3].every((i) => c.replica(i)!.view === view + 1 && c.replica(i)!.viewActive), 5_000)).toBe(true);
      stalled = false;
      // Shares stay blocked past the life of the round the old primary had in flight (a takeover
      // period): what certifies writes 3-5 is a round a replica starts as a non-certifier.
      c.sim.runFor(1_200);
      expect(c.certified).toEqual([3, 3]);
      expect(c.completed).toEqual([7, 7]);
      unblock();
      for (const i of certifiers) expect(c.replica(i)!.certificateState.leavesFloor).toBeGreaterThan(lastExecuted);
      for (const i of holders) expect(c.replica(i)!.certificateState.leavesFloor).toBeLessThanOrEqual(lastExecuted);
      // Writes 3-5 (and 6, whose statement the restarted certifiers do hold) are held only by ranks
      // 2 and 3 of the new view: rank 2 takes over first, two takeover periods after they executed.
      // A Byzantine new primary may claim those spans certified, again and again, under roots of its
      // own: the first claim that fails to match proves it faulty, and the takeover goes on.
      const newPrimary = certifiers[0]!;
      for (let round = 0; forge && round < 80 && !c.certified.every((n) => n >= 6); round++) {
        for (const h of holders) {
          const root = Uint8Array.from({ length: 32 }, (_, b) => (b + round) % 256);
          const from = c.replica(h)!.certificateState.certifiedThrough + 1; // where its statements start
          c.sim.send(c.replicaIds[newPrimary]!, c.replicaIds[h]!, { kind: 'span-certified', from, to: lastExecuted, leafCount: 3, root, signature: new Uint8Array(48), replica: newPrimary });
        }
        c.sim.runFor(100);
      }
      expect(c.sim.runUntil(() => c.certified.every((n) => n >= 6), 8_000)).toBe(true);
      // Rank 2 found the new primary's claim false when its turn came, and took over (rank 3's turn comes later).
      if (forge) expect(c.replica(holders[1]!)!.certificateState.refuted.get(newPrimary)).toBe(view + 1);
      expect(c.sim.runUntil(() => c.certified.every((n) => n === 7), 8_000)).toBe(true);
      expect(c.replica(0)!.view).toBe(view + 1);
      // Rank 2 took over first (it waits two takeover periods, rank 3 three).
      expect(c.replica(holders[1]!)!.certificateState.certifiedThrough).toBeGreaterThanOrEqual(lastExecuted);
    });
  }

  it('a backup certifier down: the others see only the primary\'s claims, and take over nothing the primary certifies', () => {
    const c = buildCluster({ seed: 11, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 3 }, certificateWork: 'host' });
    const rounds: string[] = [];
    const certificates: string[] = [];
    c.replicaIds.forEach((id) => c.sim.setInterceptor(id, (m): RingMessage[] => (m.kind === 'sign-request' && id !== 'ring-0' ? (rounds.push(id), [m]) : [m])));
    c.sim.onOutput((node, e) => void (e.kind === 'certificate' && certificates.push(node)));
    c.sim.crash('ring-1'); // rank 1 in view 0: claims never reach f+1 = 2 senders
    for (let k = 0; k < 20; k++) {
      for (let i = 0; i < 2; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
      c.sim.runFor(250);
    }
    c.sim.runFor(5_000);
    expect(c.certified).toEqual([20, 20]);
    expect(c.replica(2)!.view).toBe(0);
    // Only the primary ran rounds: ranks 2 and 3, whose statements its claims covered, checked
    // those claims (a pairing each, once their takeover wait was up) instead of taking over.
    expect(rounds).toEqual([]);
    expect(new Set(certificates)).toEqual(new Set(['ring-0']));
  });
});
