import { describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { DeferredWrites } from '../../ring/deferred-writes.ts';

const b = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('DeferredWrites (execution writes held until the next step)', () => {
  it('holds writes made inside hold(), shows them to reads and keys(), and stages them in order', () => {
    const inner = new MemoryKvStore();
    inner.put('a/1', b('old'));
    inner.put('a/2', b('gone soon'));
    const store = new DeferredWrites(inner);
    store.hold(() => {
      store.put('a/1', b('new'));
      store.delete('a/2');
      store.put('a/3', b('added'));
    });
    store.put('b/1', b('direct'));
    // The inner store (what the host makes durable) has only the direct write.
    expect(inner.get('a/1')).toEqual(b('old'));
    expect(inner.get('a/2')).toEqual(b('gone soon'));
    expect(inner.get('b/1')).toEqual(b('direct'));
    // Reads through the layer see the held state.
    expect(store.get('a/1')).toEqual(b('new'));
    expect(store.get('a/2')).toBeUndefined();
    expect(store.keys('a/')).toEqual(['a/1', 'a/3']);
    expect(store.heldCount).toBe(3);
    store.stage();
    expect(store.heldCount).toBe(0);
    expect(inner.keys('a/')).toEqual(['a/1', 'a/3']);
    expect(inner.get('a/1')).toEqual(b('new'));
  });

  it('a direct write after a held one to the same key wins, before and after staging', () => {
    const inner = new MemoryKvStore();
    const store = new DeferredWrites(inner);
    store.hold(() => store.put('k', b('held')));
    store.put('k', b('direct'));
    expect(store.get('k')).toEqual(b('direct'));
    store.stage();
    expect(inner.get('k')).toEqual(b('direct'));
  });
});
