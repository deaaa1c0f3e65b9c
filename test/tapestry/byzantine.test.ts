/**
 * What one Byzantine member can do to others in a signed cluster (idOf + real ed25519, as the
 * runtime runs): the twentieth session review's findings 2 and 3, adapted from its repros.
 */
import { describe, expect, it } from 'vitest';
import type { NodeRef } from '../../tapestry/id.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';
import { randomRequestId } from '../../tapestry/requests.ts';
import { SignedCluster, lastOutput } from './signed-cluster.ts';

const objectId = 'd'.repeat(40);

/** A "not found" answer to `requestId` in `answeredBy`'s name (what m7 sends in these tests). */
function notFound(requestId: number, answeredBy: NodeRef): TapestryMessage {
  return { kind: 'locateReply', requestId, objectId, server: null, issuedAtMs: 0, signature: new Uint8Array(0), answeredBy, hops: 1 };
}

describe('answers to a locate or route come only from the node that answered (finding 3)', () => {
  /** A cluster where m1 publishes objectId, and an origin other than m1 and m7 that holds no pointer. */
  function setup(): { c: SignedCluster; originName: string } {
    const c = new SignedCluster(8);
    c.connectAll();
    c.apply('m1', c.nodes.get('m1')!.publish(objectId, c.nowMs));
    c.run();
    const originName = c.names.find((n) => n !== 'm1' && n !== 'm7' && c.nodes.get(n)!.pointers.holders(objectId).length === 0)!;
    return { c, originName };
  }

  it('request ids are not sequential: an off-path member cannot guess the next one (before: r0 + 1)', () => {
    const { c, originName } = setup();
    const origin = c.nodes.get(originName)!;
    const ids = Array.from({ length: 20 }, () => origin.locate(objectId, c.nowMs).requestId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(Number.isSafeInteger(id) && id >= 0).toBe(true);
    expect(ids.slice(1).filter((id, i) => id === ids[i]! + 1)).toEqual([]);
  });

  it('randomRequestId spans [0, 2^53) and stays a safe integer (the codec takes up to 2^53 - 1)', () => {
    const fixed = (byte: number) => ({ int: () => 0, float: () => 0, bytes: (n: number) => new Uint8Array(n).fill(byte) });
    expect(randomRequestId(fixed(0xff))).toBe(Number.MAX_SAFE_INTEGER);
    expect(randomRequestId(fixed(0))).toBe(0);
  });

  /** A locate at the origin with m7's `forged(requestId)` delivered before the real answer: its result. */
  function locateAfterForgery(c: SignedCluster, originName: string, forged: (requestId: number) => TapestryMessage) {
    const origin = c.nodes.get(originName)!;
    const r = origin.locate(objectId, c.nowMs);
    const dropped = origin.stats.dropped;
    c.apply(originName, origin.onMessage('m7', forged(r.requestId), c.nowMs));
    const forgeryDropped = origin.stats.dropped === dropped + 1;
    c.apply(originName, r.effects);
    c.run();
    return { requestId: r.requestId, forgeryDropped, result: lastOutput(c, originName, 'locateResult') };
  }

  it('a "not found" from a member other than the one it names as answeredBy is dropped; the real answer settles the locate', () => {
    const { c, originName } = setup();
    // Even knowing the id (a member on the path sees it), m7 cannot answer in m5's name.
    const { requestId, forgeryDropped, result } = locateAfterForgery(c, originName, (id) => notFound(id, c.refs.get('m5')!));
    expect(forgeryDropped).toBe(true);
    expect(result).toMatchObject({ requestId, server: { name: 'm1' }, answered: true });
  });

  it('a guessed "next id" answer is dropped (the reviewer\'s repro: r0 + 1, from m7)', () => {
    const { c, originName } = setup();
    const r0 = c.nodes.get(originName)!.locate(objectId, c.nowMs);
    c.apply(originName, r0.effects);
    c.run();
    const { requestId, result } = locateAfterForgery(c, originName, () => notFound(r0.requestId + 1, c.refs.get('m7')!));
    expect(result).toMatchObject({ requestId, server: { name: 'm1' }, answered: true });
  });

  it('a routeReply naming a root other than its sender is dropped; the real root answers', () => {
    const { c, originName } = setup();
    const origin = c.nodes.get(originName)!;
    const target = '0'.repeat(40);
    const rr = origin.route(target, c.nowMs);
    const dropped = origin.stats.dropped;
    c.apply(originName, origin.onMessage('m7', { kind: 'routeReply', requestId: rr.requestId, targetId: target, root: c.refs.get('m5')!, hops: 0 }, c.nowMs));
    expect(origin.stats.dropped).toBe(dropped + 1);
    c.apply(originName, rr.effects);
    c.run();
    const route = lastOutput(c, originName, 'routeResult');
    expect(route?.requestId).toBe(rr.requestId);
    expect(route?.root).not.toBeNull();
    // The real root: the one every node's own route reaches (consistent full tables).
    const check = c.nodes.get('m7')!.route(target, c.nowMs);
    c.apply('m7', check.effects);
    c.run();
    expect(route?.root).toEqual(lastOutput(c, 'm7', 'routeResult')?.root);
  });
});

describe('one member cannot fill another node\'s pointer store (finding 2)', () => {
  it('side copies of its own statements, up to the cap, do not keep out an honest publish: the root stores it and every node locates it (before: dropped, not found)', () => {
    const pointersMax = 2_000;
    const c = new SignedCluster(8, { pointersMax });
    c.connectAll();
    const r = c.nodes.get('m0')!.route(objectId, c.nowMs);
    c.apply('m0', r.effects);
    c.run();
    const root = lastOutput(c, 'm0', 'routeResult')!.root!.name;
    const publisher = c.names.find((n) => n !== root)!;
    const attacker = c.names.find((n) => n !== root && n !== publisher)!;
    for (let i = 0; i < pointersMax + 50; i++) c.inject(attacker, root, c.statementOf(attacker, '1' + i.toString(16).padStart(39, '0'), c.nowMs));
    c.run();
    const store = c.nodes.get(root)!.pointers;
    expect(store.size).toBe(pointersMax);
    c.apply(publisher, c.nodes.get(publisher)!.publish(objectId, c.nowMs));
    c.run();
    expect(store.get(objectId, c.refs.get(publisher)!.id)).toBeDefined();
    expect(store.size).toBe(pointersMax);
    for (const via of c.names.filter((n) => n !== publisher)) {
      const l = c.nodes.get(via)!.locate(objectId, c.nowMs);
      c.apply(via, l.effects);
      c.run();
      expect(lastOutput(c, via, 'locateResult')).toMatchObject({ requestId: l.requestId, server: { name: publisher } });
    }
  });
});
