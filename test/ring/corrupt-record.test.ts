/**
 * A ring record that does not decode at start-up (a corrupted disk). Kept statements (ring/leaves/)
 * are a cache of certificate work: the replica deletes the bad record and every one below it and
 * starts, holding statements only above it, as after a state transfer. Before session 19 the
 * DecodeError stopped the replica at every start. Safety records still stop it, with an error that
 * names the record. Found by the session-19 durability review.
 */
import { describe, expect, it } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { CorruptRecordError, leavesKey, seqOfKey } from '../../ring/replica-store.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { ringWithUncertifiedWrites } from './uncertified-writes.ts';

const garbage = Uint8Array.of(0xff, 0x00, 0x13);

describe('a ring record that does not decode at start-up', () => {
  it('a corrupt statements record: the replica starts without the statements through it, and the ring certifies everything', () => {
    const { c, write, unblock } = ringWithUncertifiedWrites({ seed: 3, certified: 0, cluster: { parameters: { heartbeatIntervalMs: 0 } } });
    // A certifier that is not the primary (no view change): it holds three or more uncertified batches.
    const index = (c.replica(0)!.view + 1) % 4;
    const id = c.replicaIds[index]!;
    c.sim.crash(id);
    const store = c.sim.store(id);
    const kept = store.keys('ring/leaves/').map(seqOfKey);
    expect(kept.length).toBeGreaterThanOrEqual(3);
    const corrupt = kept[1]!;
    store.put(leavesKey(corrupt), garbage);
    c.sim.restart(id);
    // Nothing at or below the bad record is held or kept: a batch missing among the held ones
    // would read as one without statements, and its spans' roots would be refused.
    const r = () => c.replica(index)!;
    expect(r().certificateState.leavesFloor).toBeGreaterThan(corrupt);
    expect([...r().certificateState.executed.keys()]).toEqual(kept.filter((seq) => seq > corrupt));
    expect(store.keys('ring/leaves/').map(seqOfKey)).toEqual(kept.filter((seq) => seq > corrupt));
    unblock();
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 3), 10_000)).toBe(true);
    for (let k = 3; k < 6; k++) {
      write(k);
      c.sim.runFor(300);
    }
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 6), 10_000)).toBe(true);
    expect(c.sim.runUntil(() => r().certificateState.certifiedThrough === r().lastExecuted, 10_000)).toBe(true);
    // Its roots matched its peers' all along: no correct replica refused one of its spans.
    c.replicaIds.forEach((_, i) => expect(c.replica(i)!.drops.get('bad-proof') ?? 0).toBe(0));
  });

  for (const prefix of ['ring/exec', 'ring/client/', 'ring/slot/', 'ring/voting']) {
    it(`a corrupt safety record (${prefix}) stops the replica with a CorruptRecordError naming it`, () => {
      const c = buildCluster({ seed: 9, f: 1, clientCount: 1, crypto: fakeCrypto, parameters: { checkpointInterval: 64, watermarkWindow: 128 }, network: { delayMsMin: 1, delayMsMax: 2 } });
      for (let k = 0; k < 3; k++) c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
      expect(c.sim.runUntil(() => c.completed[0] === 3, 10_000)).toBe(true);
      c.sim.runFor(20);
      c.sim.crash('ring-2');
      const store = c.sim.store('ring-2');
      const key = store.keys(prefix)[0]!;
      expect(key).toBeDefined();
      store.put(key, garbage);
      let thrown: unknown = null;
      try {
        c.sim.restart('ring-2');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(CorruptRecordError);
      expect((thrown as CorruptRecordError).key).toBe(key);
      expect((thrown as Error).message).toContain(`'${key}'`);
      expect((thrown as Error).message).toContain('docs/runtime.md');
    });
  }
});
