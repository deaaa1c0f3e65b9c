// Certificates over spans of executed batches (ring/replica-certificates.ts): one threshold round
// covers many batches under load, a silent certifier is replaced by the next rank, a bad share is
// named, and every other replica checks a span before its tree root and archiver use it.
import { describe, expect, it } from 'vitest';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import type { RingOutput } from '../../ring/outputs.ts';

const value = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('certificate spans', () => {
  it('certifies every update with fewer threshold rounds than batches when rounds are paced', () => {
    const c = buildCluster({ seed: 11, f: 1, clientCount: 4, crypto: fakeCrypto, parameters: { certifyIntervalMs: 40, batchSizeMax: 2 } });
    const rounds: number[] = [];
    for (let i = 0; i < 4; i++) c.sim.setInterceptor(`ring-${i}`, (m) => (m.kind === 'sign-request' && rounds.push(i), [m]));
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 4; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, 'x'), -1, value(`v${round}`)));
    }
    expect(c.sim.runUntil(() => c.certified.every((k) => k === 6), 10_000)).toBe(true);
    const batches = c.replica(0)!.counters.executedBatches;
    // Each sign-request is broadcast to n-1 replicas: rounds = requests / 3.
    expect(rounds.length / 3).toBeLessThan(batches);
    expect(new Set(rounds)).toEqual(new Set([0])); // the primary certifies while it is correct
  });

  it('a certifier that never asks for shares is replaced by the next rank after the takeover period', () => {
    const c = buildCluster({ seed: 12, f: 1, clientCount: 2, crypto: fakeCrypto, parameters: { certifyTakeoverMs: 200 } });
    // The primary (rank 0) orders and executes, but its sign requests never leave it.
    c.sim.setInterceptor('ring-0', (m) => (m.kind === 'sign-request' ? [] : [m]));
    for (let i = 0; i < 2; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, 'k'), -1, value('once')));
    expect(c.sim.runUntil(() => c.certified.every((k) => k === 1), 5_000)).toBe(true);
    expect(c.replica(0)!.view).toBe(0);
  });

  it('names a replica whose share is bad and still certifies with the honest shares', () => {
    const c = buildCluster({ seed: 13, f: 1, clientCount: 1, crypto: fakeCrypto });
    const badShares: RingOutput[] = [];
    c.sim.setInterceptor('ring-1', (m) => (m.kind === 'share' ? [{ ...m, share: m.share.map((b) => b ^ 1) }] : [m]));
    // The honest backups' first shares are lost, so the first combination must use ring-1's share;
    // the certifier retries the round and certifies with the honest shares.
    for (const id of ['ring-2', 'ring-3']) c.sim.setInterceptor(id, (m) => (m.kind === 'share' && c.sim.nowMs < 300 ? [] : [m]));
    c.sim.onOutput((_node, e) => void (e.kind === 'bad-share' && badShares.push(e)));
    c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, 'b'), -1, value('v')));
    expect(c.sim.runUntil(() => c.certified[0] === 1, 5_000)).toBe(true);
    expect(badShares.some((e) => e.kind === 'bad-share' && e.sender === 1)).toBe(true);
  });

  it('the f+1 certifiers (primary and backups) hand the same verified span to their tree roots (certificate output)', () => {
    const c = buildCluster({ seed: 14, f: 1, clientCount: 2, crypto: fakeCrypto });
    const seen = new Map<string, number>();
    c.sim.onOutput((node, e) => void (e.kind === 'certificate' && seen.set(node, (seen.get(node) ?? 0) + e.statements.length)));
    for (let i = 0; i < 2; i++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, 'z'), -1, value('w')));
    const all = (): boolean => seen.size === 2 && [...seen.values()].every((k) => k >= 2);
    expect(c.sim.runUntil(() => c.certified.every((k) => k === 1) && all(), 5_000)).toBe(true);
    c.sim.runFor(500);
    expect([...seen.keys()].sort()).toEqual(['ring-0', 'ring-1']); // view 0: ranks 0 and 1
    expect([...seen.values()]).toEqual([2, 2]);
  });
});
