/**
 * Scripted checkpoint and state-transfer interactions (Castro & Liskov TOCS'02 §4.3 checkpoints
 * and log truncation, §5.3.2 state transfer), printing the message trace of the catch-up.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { KvService, kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';

const interesting = /: (checkpoint-proof|state-request|state-reply|commit-proof|view-change|new-view) /;
const parameters = { checkpointInterval: 4, watermarkWindow: 8, requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50, batchSizeMax: 2 };

function scripted(seed: number): { cluster: Cluster; trace: string[] } {
  const trace: string[] = [];
  const cluster = buildCluster({
    seed,
    f: 1,
    clientCount: 3,
    crypto: fakeCrypto,
    parameters,
    network: { delayMsMin: 1, delayMsMax: 3 },
    trace: (line) => {
      if (interesting.test(line)) trace.push(line);
    },
  });
  return { cluster, trace };
}

function drive(c: Cluster, rounds: number): void {
  for (let k = 0; k < rounds; k++) {
    for (let i = 0; i < c.clientIds.length; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k % 3}`), -1, Uint8Array.of(k, i)));
  }
}

const serviceState = (c: Cluster, i: number): string => toHex((c.replica(i)!.service as KvService).snapshot());

describe('checkpoints and state transfer', () => {
  it('truncates the log at stable checkpoints and keeps the watermark window moving', () => {
    const { cluster: c } = scripted(21);
    drive(c, 8);
    expect(c.sim.runUntil(() => c.completed.every((k) => k === 8), 10_000)).toBe(true);
    c.sim.runFor(200);
    for (let i = 0; i < 4; i++) {
      const r = c.replica(i)!;
      expect(r.stableSeq).toBeGreaterThanOrEqual(8);
      expect(r.stableSeq % 4).toBe(0);
      // Nothing at or below the stable checkpoint is kept, in memory or on disk.
      expect([...r.slots.keys()].every((s) => s > r.stableSeq)).toBe(true);
      expect(c.sim.store(c.replicaIds[i]!).keys('ring/slot/').length).toBe(r.slots.size);
    }
  });

  it('brings a replica that was partitioned away past several checkpoints back by state transfer', () => {
    const { cluster: c, trace } = scripted(22);
    c.sim.partition([['ring-0', 'ring-1', 'ring-2', ...c.clientIds], ['ring-3']]);
    trace.push('### partition: ring-3 alone');
    drive(c, 8);
    expect(c.sim.runUntil(() => c.completed.every((k) => k === 8), 10_000)).toBe(true);
    const lagging = c.replica(3)!.lastExecuted;
    const ahead = c.replica(0)!.lastExecuted;
    expect(ahead - lagging).toBeGreaterThan(parameters.watermarkWindow);
    trace.push(`### heal (ring-3 executed ${lagging}, the others ${ahead})`);
    c.sim.heal();
    expect(c.sim.runUntil(() => c.replica(3)!.lastExecuted === c.replica(0)!.lastExecuted, 5_000)).toBe(true);
    console.log(`--- state transfer after a partition\n${trace.join('\n')}`);
    expect(c.events.stateTransfers).toBeGreaterThanOrEqual(1);
    expect(trace.join('\n')).toMatch(/ring-3: state-reply s=\d+/);
    expect(serviceState(c, 3)).toBe(serviceState(c, 0));
  });

  it('rebuilds a replica that lost its disk from a stable checkpoint verified by 2f+1 signatures', () => {
    const { cluster: c, trace } = scripted(23);
    drive(c, 6);
    expect(c.sim.runUntil(() => c.completed.every((k) => k === 6), 10_000)).toBe(true);
    c.sim.runFor(200);
    trace.push('### ring-2 loses its disk');
    c.sim.crash('ring-2');
    const store = c.sim.store('ring-2');
    for (const k of store.keys('')) store.delete(k);
    c.sim.restart('ring-2');
    expect(c.replica(2)!.lastExecuted).toBe(0);
    drive(c, 3);
    expect(c.sim.runUntil(() => c.completed.every((k) => k === 9) && c.replica(2)!.lastExecuted === c.replica(0)!.lastExecuted, 10_000)).toBe(true);
    console.log(`--- state transfer after disk loss\n${trace.join('\n')}`);
    expect(c.events.stateTransfers).toBeGreaterThanOrEqual(1);
    expect(serviceState(c, 2)).toBe(serviceState(c, 0));
  });

  it('restarts a crashed replica from its own disk with everything it executed before its last tick', () => {
    const { cluster: c } = scripted(24);
    drive(c, 3);
    expect(c.sim.runUntil(() => c.completed.every((k) => k === 3), 10_000)).toBe(true);
    // Execution's writes may trail its reply until the replica's next tick (ring/deferred-writes.ts:
    // the batch is decided durably elsewhere); after one, its disk holds all it executed.
    c.sim.runFor(100);
    const before = c.replica(1)!.lastExecuted;
    const state = serviceState(c, 1);
    c.sim.crash('ring-1');
    c.sim.restart('ring-1');
    expect(c.replica(1)!.lastExecuted).toBe(before);
    expect(serviceState(c, 1)).toBe(state);
  });
});
