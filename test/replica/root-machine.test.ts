/** The ring side (TreeRoot / TreeRootMachine): bounded fan-out with redirects, gap fill from the log, queued publishes. */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import { TreeRootMachine } from '../../replica/root.ts';
import { Prng } from '../../sim/prng.ts';

const aguid = new Uint8Array(32).fill(7);
const entry = (i: number) => ({ update: new Uint8Array([i]), certificate: new Uint8Array([100 + i]), blocks: [] });
const sends = (effects: Effect<TreeMessage, unknown>[]) =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));

describe('TreeRootMachine', () => {
  it('queues publishes until the next tick, admits fanOutMax children, redirects the rest to them, and gap-fills joiners', () => {
    const root = new TreeRootMachine({ nodeId: 'ring-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 }, { fanOutMax: 2 });
    root.publish(aguid, 0, entry(0));
    root.publish(aguid, 1, entry(1));
    expect(() => root.publish(aguid, 3, entry(3))).toThrow(/next version of this object \(2\)/);
    const a = sends(root.onMessage('a', { type: 'attach', aguid, nextVersion: 1 }, 10));
    expect(a[0]).toEqual({ to: 'a', message: { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: 2 } });
    // Joined knowing version 0: gets version 1 only.
    expect(a[1]!.message.type === 'push' && a[1]!.message.entries).toEqual([entry(1)]);
    root.onMessage('b', { type: 'attach', aguid, nextVersion: 0 }, 10);
    const c = sends(root.onMessage('c', { type: 'attach', aguid, nextVersion: 0 }, 10));
    expect(c).toHaveLength(1);
    expect(c[0]!.message.type).toBe('attach-refused');
    expect(c[0]!.message.type === 'attach-refused' && [...c[0]!.message.redirect].sort()).toEqual(['a', 'b']);
    root.publish(aguid, 2, entry(2));
    const pushed = sends(root.onTick(20)).filter((s) => s.message.type === 'push');
    expect(pushed.map((s) => s.to).sort()).toEqual(['a', 'b']);
    // Silent children are dropped after childTimeoutMs, freeing their slots.
    root.onTick(20 + 3_001);
    expect(root.root.childrenOf(aguid)).toEqual([]);
  });

  it('a gap fill weighs entries as they go on the wire: versions by reference (400 KiB of blocks each) are their updates only, so one push holds them all (session-26 review: weighed whole, one a push)', () => {
    const root = new TreeRootMachine({ nodeId: 'ring-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 }, {});
    const large = (i: number) => ({ ...entry(i), blocks: [new Uint8Array(400 * 1024).fill(i)] });
    for (let v = 0; v < 4; v++) root.publish(aguid, v, large(v));
    root.onTick(5);
    const pushes = sends(root.onMessage('a', { type: 'attach', aguid, nextVersion: 0 }, 10)).filter((s) => s.message.type === 'push');
    expect(pushes).toHaveLength(1);
    const entries = pushes[0]!.message.type === 'push' ? pushes[0]!.message.entries : [];
    expect(entries.map((e) => e.update[0])).toEqual([0, 1, 2, 3]);
    expect(entries.every((e) => e.blocks.length === 0)).toBe(true);
  });
});
