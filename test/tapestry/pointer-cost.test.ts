/**
 * Work per step with many pointers held (twentieth session review, finding 5): expiry looked at
 * every pointer on every tick (100 ms in the runtime), and a table change re-checked every pointer
 * in one step. Work is counted, not timed.
 */
import { describe, expect, it, vi } from 'vitest';
import { Prng } from '../../sim/prng.ts';
import type { NodeRef } from '../../tapestry/id.ts';
import { maintainBudget } from '../../tapestry/object-location.ts';
import { TapestryNode } from '../../tapestry/node.ts';

const a: NodeRef = { id: 'a'.repeat(40), name: 'a' };
const b: NodeRef = { id: 'b'.repeat(40), name: 'b' };
const count = 10_000;
const objectOf = (i: number) => '1' + i.toString(16).padStart(39, '0');

/** A node holding `count` pointers of b's, issued at 1,000 (expiring at 91,000). */
function loaded(sideCopy: boolean): TapestryNode {
  const node = new TapestryNode({ self: a, random: new Prng(1), nowMs: 0, config: { beaconIntervalMs: 0, maintenanceIntervalMs: 0 } });
  for (let i = 0; i < count; i++) {
    node.onMessage('b', { kind: 'publish', objectId: objectOf(i), server: b, level: 0, hops: 1, op: 'publish', issuedAtMs: 1_000, signature: new Uint8Array(0), sideCopy }, 1_000);
  }
  expect(node.pointers.size).toBe(count);
  return node;
}

describe('work per step with many pointers', () => {
  it('a tick looks only at pointers that came due; expiry stays exact, a refreshed pointer is kept', () => {
    const node = loaded(true);
    for (let t = 1_100; t <= 30_000; t += 100) node.onTick(t);
    expect(node.pointers.expiryChecks).toBe(0);
    // One pointer republished at 40 s lives until 130 s.
    node.onMessage('b', { kind: 'publish', objectId: objectOf(7), server: b, level: 0, hops: 1, op: 'publish', issuedAtMs: 40_000, signature: new Uint8Array(0), sideCopy: true }, 40_000);
    node.onTick(90_999);
    expect(node.pointers.size).toBe(count);
    node.onTick(91_000);
    expect(node.pointers.size).toBe(1);
    expect(node.pointers.expiryChecks).toBeLessThanOrEqual(count);
    node.onTick(129_999);
    expect(node.pointers.size).toBe(1);
    node.onTick(130_000);
    expect(node.pointers.size).toBe(0);
  });

  it('a new neighbour re-checks at most maintainBudget pointers per step, and every pointer routed to it is pushed there within a few steps (before: all in one step)', () => {
    const node = loaded(false);
    const peer: NodeRef = { id: '2'.repeat(40), name: 'p' }; // every object (digit 1) now goes to p
    node.onMessage(peer.name, { kind: 'ping', sender: peer, sentAtMs: 0 }, 2_000);
    const sentAtMs = (node as unknown as { watch: { pendingPings: Map<string, number> } }).watch.pendingPings.get(peer.id)!;
    const nextHop = vi.spyOn(node.table, 'nextHop');
    let pushed = 0;
    const publishesTo = (effects: ReturnType<TapestryNode['onTick']>) => effects.filter((e) => e.kind === 'send' && e.to === peer.name && e.message.kind === 'publish').length;
    pushed += publishesTo(node.onMessage(peer.name, { kind: 'pong', sender: peer, sentAtMs }, 2_001));
    expect(nextHop.mock.calls.length).toBeLessThanOrEqual(maintainBudget);
    expect(pushed).toBeGreaterThan(0);
    for (let step = 0; step < 10 && pushed < count; step++) {
      const before = nextHop.mock.calls.length;
      pushed += publishesTo(node.onTick(2_100 + step * 100));
      expect(nextHop.mock.calls.length - before).toBeLessThanOrEqual(maintainBudget);
    }
    expect(pushed).toBe(count);
  });
});
