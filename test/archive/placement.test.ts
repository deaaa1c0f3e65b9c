import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { placementOf, rankedServersOf, repairTargetOf, serverRingOf } from '../../archive/placement.ts';
import { Prng } from '../../sim/prng.ts';

const serversOf = (count: number): string[] => Array.from({ length: count }, (_, i) => `archive-${i}`);

describe('placement (rendezvous hashing over the archive servers)', () => {
  it('puts the n fragments of a block on n distinct servers whenever there are at least n servers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 30 }), (bguid, n, extra) => {
        const placed = placementOf(serverRingOf(serversOf(n + extra)), bguid, n);
        expect(placed).toHaveLength(n);
        expect(new Set(placed).size).toBe(n);
      }),
      { numRuns: 300 },
    );
  });

  it('wraps only when there are fewer servers than fragments, and then uses every server', () => {
    const placed = placementOf(serverRingOf(serversOf(3)), new Prng(1).bytes(32), 8);
    expect(new Set(placed).size).toBe(3);
    expect(placed.slice(0, 3)).toEqual(placed.slice(3, 6));
  });

  it('depends only on the BGUID and the set of servers, not on the order they are listed in', () => {
    const random = new Prng(2);
    const servers = serversOf(20);
    const shuffled = random.shuffle([...servers]);
    for (let i = 0; i < 50; i++) {
      const bguid = random.bytes(32);
      expect(rankedServersOf(serverRingOf(shuffled), bguid)).toEqual(rankedServersOf(serverRingOf(servers), bguid));
    }
  });

  it('spreads fragments evenly: every server holds within 15% of the mean over 8,000 blocks', () => {
    const random = new Prng(3);
    const ring = serverRingOf(serversOf(16));
    const load = new Map<string, number>();
    for (let b = 0; b < 8000; b++) for (const s of placementOf(ring, random.bytes(32), 8)) load.set(s, (load.get(s) ?? 0) + 1);
    const mean = (8000 * 8) / 16;
    for (const count of load.values()) expect(Math.abs(count - mean) / mean).toBeLessThan(0.15);
  });

  it('moves minimally when a server joins: each holder set changes by at most one server, about n/(N+1) of blocks change', () => {
    const random = new Prng(4);
    const before = serverRingOf(serversOf(32));
    const after = serverRingOf([...serversOf(32), 'archive-new']);
    let changed = 0;
    const blocks = 4000;
    for (let b = 0; b < blocks; b++) {
      const bguid = random.bytes(32);
      const oldSet = new Set(placementOf(before, bguid, 8));
      const newSet = placementOf(after, bguid, 8);
      const entered = newSet.filter((s) => !oldSet.has(s));
      expect(entered.length).toBeLessThanOrEqual(1);
      if (entered.length === 1) {
        expect(entered[0]).toBe('archive-new');
        changed++;
      }
    }
    expect(changed / blocks).toBeGreaterThan((8 / 33) * 0.8);
    expect(changed / blocks).toBeLessThan((8 / 33) * 1.2);
  });

  it('moves minimally when a server leaves: blocks it did not hold keep their holders exactly', () => {
    const random = new Prng(5);
    const servers = serversOf(24);
    const without = servers.filter((s) => s !== 'archive-7');
    for (let b = 0; b < 1000; b++) {
      const bguid = random.bytes(32);
      const oldPlaced = placementOf(serverRingOf(servers), bguid, 8);
      const newPlaced = placementOf(serverRingOf(without), bguid, 8);
      if (!oldPlaced.includes('archive-7')) expect(newPlaced).toEqual(oldPlaced);
      else expect(newPlaced.filter((s) => !oldPlaced.includes(s))).toHaveLength(1);
    }
  });

  it('sends a repaired fragment to the best-ranked live server holding nothing of the block', () => {
    const ring = serverRingOf(serversOf(12));
    const bguid = new Prng(6).bytes(32);
    const ranked = rankedServersOf(ring, bguid);
    const holders = new Set(ranked.slice(0, 8));
    holders.delete(ranked[2]!); // its holder died
    const dead = new Set([ranked[2]!, ranked[8]!]);
    const target = repairTargetOf(ring, bguid, (s) => !dead.has(s), (s) => (holders.has(s) ? 1 : 0));
    expect(target).toBe(ranked[9]);
    expect(repairTargetOf(ring, bguid, () => false, () => 0)).toBeUndefined();
  });
});
