/**
 * PointerStore bounds (twentieth session review, finding 2; second review, finding 2): a full store
 * guarantees every server a quota; a server under it makes room by evicting from the server
 * holding the most, if that one is over its quota; the same for withdrawals.
 */
import { describe, expect, it } from 'vitest';
import { PointerStore } from '../../tapestry/pointer-store.ts';

const server = (c: string) => ({ id: c.repeat(40), name: `s${c}` });
const object = (i: number) => i.toString(16).padStart(40, '0');
const proof = (issuedAtMs: number) => ({ issuedAtMs, signature: new Uint8Array(0) });

function fill(store: PointerStore, s: { id: string; name: string }, count: number, from = 0): void {
  for (let i = from; i < from + count; i++) store.put(object(i), s, proof(1), 100, 0, true, s.name);
}

describe('PointerStore: fair eviction when full', () => {
  it('a new server\'s pointer evicts the oldest of the server holding the most', () => {
    const store = new PointerStore(10);
    fill(store, server('a'), 10);
    expect(store.put(object(99), server('b'), proof(1), 100, 0, false, 'sb')).not.toBeNull();
    expect(store.size).toBe(10);
    expect(store.get(object(0), server('a').id)).toBeUndefined(); // a's oldest
    expect(store.get(object(1), server('a').id)).toBeDefined();
    expect(store.serverCount(server('a').id)).toBe(9);
  });

  it('a server at its quota is refused rather than evicting another; only servers over theirs lose pointers', () => {
    const store = new PointerStore(10, 5); // quota 2 each
    fill(store, server('b'), 3, 500);
    fill(store, server('a'), 20);
    expect(store.size).toBe(10);
    expect(store.serverCount(server('b').id)).toBe(3);
    expect(store.serverCount(server('a').id)).toBe(7);
    expect(store.refused).toBe(13);
    // b is over its quota: it takes nothing from a (before: both were evened out at 5).
    fill(store, server('b'), 5, 600);
    expect(store.serverCount(server('b').id)).toBe(3);
    expect(store.serverCount(server('a').id)).toBe(7);
    // c, under its quota, takes from the largest (a) up to its quota, then is refused.
    fill(store, server('c'), 3, 700);
    expect([store.serverCount(server('a').id), store.serverCount(server('b').id), store.serverCount(server('c').id)]).toEqual([5, 3, 2]);
    // Removing keeps the counts right.
    store.remove(object(500), server('b').id);
    expect(store.serverCount(server('b').id)).toBe(2);
    expect(store.removeServer(server('a').id)).toBe(5);
    expect(store.serverCount(server('a').id)).toBe(0);
    expect(store.size).toBe(4);
  });

  it('a server over its quota loses its side copies before the pointers it holds on a publish path', () => {
    const store = new PointerStore(10, 5);
    for (let i = 0; i < 5; i++) store.put(object(i), server('a'), proof(1), 100, 0, false, 'x');
    for (let i = 5; i < 10; i++) store.put(object(i), server('a'), proof(1), 100, 0, true, 'x');
    // A side copy that turns out to be on the path too counts as a path pointer.
    store.put(object(5), server('a'), proof(1), 100, 0, false, 'x');
    fill(store, server('b'), 2, 500);
    expect(store.get(object(5), server('a').id)).toBeDefined();
    expect(store.get(object(6), server('a').id)).toBeUndefined();
    expect(store.get(object(7), server('a').id)).toBeUndefined();
    for (let i = 0; i < 5; i++) expect(store.get(object(i), server('a').id)).toBeDefined();
  });

  it('withdrawals: one server\'s many unpublishes evict only its own, not another server\'s', () => {
    const store = new PointerStore(10);
    store.withdraw(object(1), server('b').id, 5, 1_000);
    for (let i = 0; i < 50; i++) store.withdraw(object(100 + i), server('a').id, 5, 1_000);
    expect(store.withdrawnSince(object(1), server('b').id, 5)).toBe(true);
    expect(store.withdrawnSince(object(149), server('a').id, 5)).toBe(true);
    expect(store.withdrawnSince(object(100), server('a').id, 5)).toBe(false); // a replaced its own oldest
  });
});
