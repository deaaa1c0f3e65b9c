/**
 * A secondary replica against parents (and would-be parents) that lie, stall or waste its
 * resources (DESIGN.md "Dissemination tree": a member leaves a parent that forges, withholds or
 * goes silent, and blames only the node that sent the lie). Each test drives one SecondaryReplica
 * by hand, message by message, on made-up times.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { ReplicaEffect, ReplicaEvent } from '../../replica/events.ts';
import { SecondaryReplica } from '../../replica/secondary.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, testObject } from './test-ring.ts';

const crypto = nodeCrypto;

function setup() {
  const signer = new TestRingSigner(crypto, 'fake', 5);
  const object = testObject(crypto, 'core', 5);
  const history = buildHistory(crypto, signer, object, { versionCount: 8, referenceEvery: 3, seed: 5 });
  return { signer, object, history };
}

/** A member following the test object; `near` are tried before the roots. */
function member(s: ReturnType<typeof setup>, near: string[], roots: string[], cacheBytesMax = 16 << 20): SecondaryReplica {
  return new SecondaryReplica(
    { nodeId: 'me', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: s.signer.trust(), executor: s.object.executor, locator: new ConfigLocator(roots, near), cacheBytesMax, subscriptions: [s.object.aguid] },
  );
}

function sends(effects: ReplicaEffect[]) {
  return effects.filter((e): e is Extract<ReplicaEffect, { kind: 'send' }> => e.kind === 'send');
}

function outputs(effects: ReplicaEffect[]): ReplicaEvent[] {
  return effects.flatMap((e) => (e.kind === 'output' ? [e.event] : []));
}

describe('early entries from a would-be parent', () => {
  it('a forged early entry from attach target X is dropped when X refuses, so the honest root that fills the gap is not blamed', () => {
    const s = setup();
    const { history, object } = s;
    const m = member(s, ['X'], ['ring-0']);
    expect(sends(m.onTick(0)).some((e) => e.to === 'X' && e.message.type === 'attach')).toBe(true);
    // X pushes the real certificate of version 1 with another update (digest mismatch): parked as early.
    m.onMessage('X', { type: 'push', aguid: object.aguid, entries: [{ ...history[1]!.entry, update: history[2]!.entry.update }] }, 10);
    expect(m.copyOf(object.aguid)!.pendingCount).toBe(1);
    const eff = m.onMessage('X', { type: 'attach-refused', aguid: object.aguid, redirect: [] }, 20);
    expect(sends(eff).some((e) => e.to === 'ring-0' && e.message.type === 'attach')).toBe(true);
    expect(m.copyOf(object.aguid)!.pendingCount).toBe(0);
    m.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: history.length }, 30);
    const events = outputs(m.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: [history[0]!.entry, history[1]!.entry] }, 40));
    expect(events.filter((e) => e.kind === 'detached' || e.kind === 'rejected')).toEqual([]);
    expect(m.parentOf(object.aguid)!.parentId).toBe('ring-0');
    expect(m.copyOf(object.aguid)!.head!.version).toBe(1);
  });

  it('the same after an attach timeout: X never answers, its early entry does not outlive the switch', () => {
    const s = setup();
    const { history, object } = s;
    const m = member(s, ['X'], ['ring-0']);
    m.onTick(0);
    m.onMessage('X', { type: 'push', aguid: object.aguid, entries: [{ ...history[1]!.entry, update: history[2]!.entry.update }] }, 10);
    const eff = m.onTick(1_100); // past attachTimeoutMs
    expect(sends(eff).some((e) => e.to === 'ring-0' && e.message.type === 'attach')).toBe(true);
    m.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: history.length }, 1_110);
    const events = outputs(m.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: [history[0]!.entry, history[1]!.entry] }, 1_120));
    expect(events.filter((e) => e.kind === 'detached' || e.kind === 'rejected')).toEqual([]);
    expect(m.copyOf(object.aguid)!.head!.version).toBe(1);
  });

  it('one Byzantine would-be parent repeating this round after round gets no ring server blamed', () => {
    const s = setup();
    const { history, object } = s;
    const roots = ['ring-0', 'ring-1', 'ring-2', 'ring-3'];
    const m = member(s, ['X'], roots);
    let t = 0;
    const events: ReplicaEvent[] = [];
    // Each round: the silent root is left (no heartbeats here), X is tried again, pushes a forged
    // early entry and refuses, and the next root fills the gap.
    for (let round = 0; round < 3; round++) {
      const version = m.copyOf(object.aguid)!.nextVersion;
      let attach;
      do {
        t += 50;
        const eff = m.onTick(t);
        events.push(...outputs(eff));
        attach = sends(eff).find((e) => e.message.type === 'attach');
      } while (attach?.to !== 'X' && t < 60_000);
      expect(attach?.to).toBe('X');
      m.onMessage('X', { type: 'push', aguid: object.aguid, entries: [{ ...history[version + 1]!.entry, update: history[version + 2]!.entry.update }] }, t + 1);
      const next = sends(m.onMessage('X', { type: 'attach-refused', aguid: object.aguid, redirect: [] }, t + 2)).find((e) => e.message.type === 'attach')!;
      m.onMessage(next.to, { type: 'attach-ok', aguid: object.aguid, path: [next.to], nextVersion: history.length }, t + 3);
      events.push(...outputs(m.onMessage(next.to, { type: 'push', aguid: object.aguid, entries: [history[version]!.entry, history[version + 1]!.entry] }, t + 4)));
      expect(m.copyOf(object.aguid)!.nextVersion).toBe(version + 2);
    }
    expect(events.filter((e) => e.kind === 'rejected')).toEqual([]);
    // Left for silence only (distrustSilentMs), never as liars (distrustLiarMs).
    expect(roots.filter((r) => m.isDistrusted(r, t + 60_000))).toEqual([]);
  });
});
