import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { toHex } from '../../core/bytes.ts';
import { digitAt, sharedPrefixLength } from '../../tapestry/id.ts';
import type { NodeRef, TapestryId } from '../../tapestry/id.ts';
import { RoutingTable } from '../../tapestry/routing-table.ts';

const self: NodeRef = { id: '5'.repeat(40), name: 'self' };
const ref = (id: string, name = id.slice(0, 6)): NodeRef => ({ id, name });

/** The unique root by global surrogate routing (§3.1.1), computed from the whole membership. */
function globalRoot(target: TapestryId, ids: readonly TapestryId[]): TapestryId {
  let candidates = ids;
  for (let level = 0; level < 40 && candidates.length > 1; level++) {
    for (let k = 0; k < 16; k++) {
      const d = (digitAt(target, level) + k) % 16;
      const sub = candidates.filter((c) => digitAt(c, level) === d);
      if (sub.length > 0) {
        candidates = sub;
        break;
      }
    }
  }
  return candidates[0]!;
}

describe('routing table (JSAC 2004 §3.1-3.2)', () => {
  it('keeps the c closest candidates per slot, sorted by round trip, and reports the evicted one', () => {
    const table = new RoutingTable(self, 3);
    const ids = ['a1', 'a2', 'a3', 'a4'].map((p) => p + '0'.repeat(38));
    expect(table.consider(ref(ids[0]!), 40).inserted).toBe(true);
    table.consider(ref(ids[1]!), 10);
    table.consider(ref(ids[2]!), 30);
    expect(table.slot(0, 10).map((n) => n.rttMs)).toEqual([10, 30, 40]);
    const worse = table.consider(ref(ids[3]!), 50);
    expect(worse).toEqual({ inserted: false, evicted: null });
    const better = table.consider(ref(ids[3]!), 20);
    expect(better.inserted).toBe(true);
    expect(better.evicted?.id).toBe(ids[0]);
    expect(table.slot(0, 10).map((n) => n.rttMs)).toEqual([10, 20, 30]);
  });

  it('removing the primary promotes the next-closest backup (repair from backups, §4.2)', () => {
    const table = new RoutingTable(self, 3);
    table.consider(ref('b1' + '0'.repeat(38)), 5);
    table.consider(ref('b2' + '0'.repeat(38)), 9);
    expect(table.remove('b1' + '0'.repeat(38))).toBe(0);
    expect(table.nextHop('b1' + '0'.repeat(38), 0)?.hop.id).toBe('b2' + '0'.repeat(38));
    expect(table.remove('ff'.repeat(20))).toBe(-1);
  });

  it('routes around a primary that missed its last beacon through the backup, without changing the slot', () => {
    const table = new RoutingTable(self, 3);
    table.consider(ref('c1' + '0'.repeat(38)), 5);
    table.consider(ref('c2' + '0'.repeat(38)), 9);
    table.get('c1' + '0'.repeat(38))!.beaconMisses = 1;
    expect(table.nextHop('c1' + '0'.repeat(38), 0)?.hop.id).toBe('c2' + '0'.repeat(38));
    table.get('c2' + '0'.repeat(38))!.beaconMisses = 1;
    expect(table.nextHop('c1' + '0'.repeat(38), 0)?.hop.id).toBe('c1' + '0'.repeat(38));
  });

  it('surrogate routing takes the next higher digit (mod 16) when the wanted slot is empty', () => {
    const table = new RoutingTable(self, 3);
    table.consider(ref('9' + '0'.repeat(39)), 5);
    // wanted digit 7: slots 7 and 8 are empty, 9 is filled.
    expect(table.nextHop('7' + '0'.repeat(39), 0)?.hop.id).toBe('9' + '0'.repeat(39));
    // wanted digit 3: 3 and 4 empty, 5 is our own digit, so routing continues locally at level 1.
    expect(table.nextHop('3' + '0'.repeat(39), 0)).toBeNull();
  });

  it('with consistent tables every start node reaches the same unique root (property, vs the global rule)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 20, maxLength: 20 }).map(toHex), { minLength: 2, maxLength: 40, selector: (s) => s }),
        fc.array(fc.uint8Array({ minLength: 20, maxLength: 20 }).map(toHex), { minLength: 1, maxLength: 5 }),
        (ids, targets) => {
          const tables = new Map(ids.map((id) => [id, new RoutingTable({ id, name: id }, 3)]));
          for (const t of tables.values()) for (const id of ids) t.consider(ref(id, id), 1 + (parseInt(id.slice(0, 4), 16) % 97));
          for (const target of targets) {
            const root = globalRoot(target, ids);
            for (const start of ids) {
              let at = start;
              let level = 0;
              for (let hop = 0; ; hop++) {
                expect(hop).toBeLessThanOrEqual(40);
                const next = tables.get(at)!.nextHop(target, level);
                if (!next) break;
                expect(next.level).toBeGreaterThan(level);
                at = next.hop.id;
                level = next.level;
              }
              expect(at).toBe(root);
            }
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('excludeSelf answers where a message would go without us: the root of the remaining nodes', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 20, maxLength: 20 }).map(toHex), { minLength: 3, maxLength: 30, selector: (s) => s }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }).map(toHex),
        (ids, target) => {
          const leaver = globalRoot(target, ids);
          const table = new RoutingTable({ id: leaver, name: 'leaver' }, 3);
          for (const id of ids) table.consider(ref(id, id), 1);
          const rest = ids.filter((id) => id !== leaver);
          const next = table.nextHop(target, 0, true);
          expect(next).not.toBeNull();
          // The handed-to node shares the resolved prefix with the new root: its subtree contains it.
          const newRoot = globalRoot(target, rest);
          expect(sharedPrefixLength(next!.hop.id, newRoot)).toBeGreaterThanOrEqual(next!.level);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('backpointers are kept per shared-prefix level, and silent ones are found by their last beacon', () => {
    const table = new RoutingTable(self, 3);
    const other = ref('55' + 'a'.repeat(38));
    table.addBackpointer(other, 0);
    expect(table.backpointersAt(2)).toEqual([other]);
    table.heardFromBackpointer(other.id, 500);
    expect(table.takeSilentBackpointers(500)).toEqual([]);
    expect(table.takeSilentBackpointers(501)).toEqual([other]);
    table.addBackpointer(other, 0);
    table.removeBackpointer(other.id);
    expect(table.allBackpointers()).toEqual([]);
  });
});
