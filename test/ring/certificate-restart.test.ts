/**
 * Statements outlive restarts (ring/replica-certificates.ts recoverStatements): a batch's
 * statements are kept in the store with its execution until certified, so updates a ring executed
 * and acknowledged just before every replica crashed are certified after the restart. Before the
 * sixteenth session statements were volatile, and these writes (acknowledged, never certified,
 * so never handed to the archive) stayed uncertified for good.
 */
import { describe, expect, it } from 'vitest';
import { holdersOnly, ringWithUncertifiedWrites } from './uncertified-writes.ts';
import { loadHoles } from '../../ring/replica-store.ts';

describe('statements kept across restarts', () => {
  for (const checks of ['inline', 'host'] as const) {
    it(`every replica crashes after executing writes nobody certified yet: all are certified after the restart (checks ${checks})`, () => {
      // The last three writes per client complete (f+1 replies) but are not certified.
      const { c, write, unblock } = ringWithUncertifiedWrites({ seed: 3, certified: 3, cluster: { certificateWork: checks } });
      const executed = c.replicaIds.map((_, i) => c.replica(i)!.lastExecuted);
      for (const id of c.replicaIds) c.sim.crash(id);
      for (const id of c.replicaIds) c.sim.restart(id);
      unblock();
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

  it('a non-certifier down while the others certified what it held gives those statements up on its peers\' refusals, then follows their claims', () => {
    const { c, write, unblock } = ringWithUncertifiedWrites({ seed: 3, certified: 0, cluster: { parameters: { heartbeatIntervalMs: 0 } } });
    // Rank 3 (no certifier) goes down holding the three writes' statements; the others certify them.
    const down = (c.replica(0)!.view + 3) % 4;
    const held = [...c.replica(down)!.certificateState.executed.keys()];
    expect(held.length).toBeGreaterThan(0);
    c.sim.crash(c.replicaIds[down]!);
    unblock();
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 3), 10_000)).toBe(true);
    c.sim.restart(c.replicaIds[down]!);
    expect([...c.replica(down)!.certificateState.executed.keys()]).toEqual(held);
    // Later spans start above what it holds, so their claims do not cover it; its own takeover
    // round asks for statements the others forgot, they refuse, and it skips to where they start.
    for (let k = 3; k < 8; k++) {
      write(k);
      c.sim.runFor(300);
    }
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 8), 10_000)).toBe(true);
    const r = () => c.replica(down)!;
    const caughtUp = () => r().certificateState.certifiedThrough === r().lastExecuted && r().certificateState.executed.size === 0;
    expect(c.sim.runUntil(caughtUp, 10_000)).toBe(true);
    c.sim.runFor(100);
    expect(c.sim.store(c.replicaIds[down]!).keys('ring/leaves/')).toEqual([]);
    // And it keeps up from then on.
    for (let k = 8; k < 12; k++) {
      write(k);
      c.sim.runFor(300);
    }
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 12) && caughtUp(), 10_000)).toBe(true);
  });

  it('a crash just after a state transfer keeps the statements from before it only below the hole it recorded, and certifies with its peers\' roots', () => {
    const { c, write, unblock } = ringWithUncertifiedWrites({ seed: 5, certified: 0, cluster: { parameters: { heartbeatIntervalMs: 0 } } });
    // A certifier holding uncertified statements is cut off while the others go on past a stable
    // checkpoint; healed, it takes a state transfer and crashes in the same step's wake.
    const cut = (c.replica(0)!.view + 1) % 4;
    const id = c.replicaIds[cut]!;
    const stale = [...c.replica(cut)!.certificateState.executed.keys()];
    expect(stale.length).toBeGreaterThan(0);
    c.sim.partition([[id], c.replicaIds.filter((x) => x !== id).concat(c.clientIds)]);
    for (let k = 3; k < 30; k++) {
      write(k);
      c.sim.runFor(30);
    }
    let transferred = -1;
    let crashNow = false;
    c.sim.onOutput((node, e) => {
      if (node !== id || e.kind !== 'state-transferred' || transferred >= 0) return;
      transferred = e.seq;
      crashNow = true;
    });
    c.sim.onStep(() => {
      if (!crashNow) return;
      crashNow = false;
      c.sim.crash(id);
    });
    c.sim.heal();
    expect(c.sim.runUntil(() => !c.sim.isUp(id), 5_000)).toBe(true);
    const kept = c.sim.store(id).keys('ring/leaves/').map((k) => Number(k.slice('ring/leaves/'.length)));
    // Records below the transferred state are what it executed before the transfer, below the hole
    // recorded with it: never read as batches without statements.
    const hole = loadHoles(c.sim.store(id)).find((h) => h.to === transferred);
    expect(hole).toBeDefined();
    expect(kept.every((seq) => seq > transferred || seq < hole!.from)).toBe(true);
    expect(kept.some((seq) => seq < hole!.from)).toBe(true); // its own uncertified statements stay
    c.sim.restart(id);
    const r = c.replica(cut)!;
    // Restarted, it holds them again below the hole, and nothing inside it.
    expect(r.certificateState.holes).toContainEqual(hole);
    const held = [...r.certificateState.executed.keys()];
    expect(held.some((seq) => seq < hole!.from)).toBe(true);
    expect(held.every((seq) => seq < hole!.from || seq > transferred)).toBe(true);
    unblock();
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 30), 10_000)).toBe(true);
    // Its roots matched its peers' all along: no correct replica refused one of its spans.
    c.replicaIds.forEach((_, i) => expect(c.replica(i)!.drops.get('bad-proof') ?? 0).toBe(0));
  });

  it('a non-certifier that skipped while one replica was silent keeps what it skipped: that replica may be the other holder', () => {
    const { c, write } = holdersOnly(3);
    // Later writes are certified from the skip on, and the certifiers' claims reach the taker. It
    // keeps the skipped statements all the same, so the silent holder's takeover gets its share.
    for (let k = 6; k < 9; k++) {
      write(k);
      c.sim.runFor(300);
    }
    c.sim.runFor(6_000);
    for (let k = 9; k < 11; k++) {
      write(k);
      c.sim.runFor(300);
    }
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 11), 10_000)).toBe(true);
  });
});
