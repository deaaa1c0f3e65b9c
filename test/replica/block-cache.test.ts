/** The secondary replica's bounded block cache: LRU eviction of unpinned blocks, pinned blocks kept. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { IntegrityError } from '../../core/errors.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { BlockCache } from '../../replica/block-cache.ts';

const block = (fill: number, size = 100): Uint8Array => new Uint8Array(size).fill(fill);

describe('BlockCache', () => {
  it('evicts the least recently used unpinned blocks first, and only down to the budget', () => {
    const cache = new BlockCache(nodeCrypto, 300);
    const a = cache.put('data', block(1));
    const b = cache.put('data', block(2));
    const c = cache.put('data', block(3));
    cache.get(a, 'data'); // a is now the most recent: b is the oldest
    cache.put('data', block(4));
    cache.evict();
    expect(cache.has(b)).toBe(false);
    expect(cache.has(a) && cache.has(c)).toBe(true);
    expect(cache.bytes).toBe(300);
    expect(cache.stats.evictedBlocks).toBe(1);
  });

  it('never evicts pinned blocks (the current version), even over budget, and counts the overshoot', () => {
    const cache = new BlockCache(nodeCrypto, 150);
    const a = cache.put('data', block(1));
    const b = cache.put('data', block(2));
    const pinned = new Set([toHex(a), toHex(b)]);
    cache.repin(new Set(), pinned);
    expect(cache.has(a) && cache.has(b)).toBe(true);
    expect(cache.stats.overBudgetPasses).toBe(1);
    // Moving the pin to a new version releases the old blocks for eviction.
    const c = cache.put('data', block(3));
    cache.repin(pinned, new Set([toHex(c)]));
    expect(cache.has(c)).toBe(true);
    expect(cache.bytes).toBeLessThanOrEqual(150);
  });

  it('refuses bytes that do not hash to the claimed BGUID', () => {
    const cache = new BlockCache(nodeCrypto, 1000);
    const good = cache.put('data', block(1));
    expect(() => cache.putVerified(good, 'data', block(2))).toThrow(IntegrityError);
    expect(cache.get(good, 'interior')).toBeUndefined(); // same bytes, other kind: not that block
  });

  it('matches a model: after any sequence of puts, gets and pins, pinned blocks are present and unpinned bytes fit', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('put', 'get', 'pin'), fc.nat({ max: 20 })), { maxLength: 80 }),
        fc.integer({ min: 100, max: 1500 }),
        (ops, budget) => {
          const cache = new BlockCache(nodeCrypto, budget);
          const ids = Array.from({ length: 21 }, (_, i) => cache.put('data', block(i, 50 + i)));
          for (const id of ids) cache.delete(id);
          let pinned = new Set<string>();
          for (const [op, i] of ops) {
            if (op === 'put') cache.put('data', block(i, 50 + i));
            if (op === 'get') cache.get(ids[i]!, 'data');
            if (op === 'pin') {
              if (!cache.has(ids[i]!)) cache.put('data', block(i, 50 + i));
              const next = new Set([toHex(ids[i]!)]);
              cache.repin(pinned, next);
              pinned = next;
            }
          }
          cache.evict();
          for (const key of pinned) expect(cache.isPinned(ids.find((id) => toHex(id) === key)!)).toBe(true);
          let pinnedBytes = 0;
          for (const id of ids) if (cache.has(id) && pinned.has(toHex(id))) pinnedBytes += cache.byteLengthOf(id, 'data')!;
          expect(cache.bytes <= budget || cache.bytes === pinnedBytes).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
