import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { Prng } from '../../sim/prng.ts';
import { hopsMax } from '../../tapestry/codec.ts';
import type { NodeRef } from '../../tapestry/id.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { createTapestryNode, tapestryIdOf } from '../../tapestry/index.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { signerOf } from '../../core/crypto.ts';
import { pointerAuthOf, pointerStatement } from '../../tapestry/pointer-auth.ts';

const a: NodeRef = { id: 'a'.repeat(40), name: 'a' };
const b: NodeRef = { id: 'b'.repeat(40), name: 'b' };
const make = (self: NodeRef, config = {}): TapestryNode => new TapestryNode({ self, random: new Prng(1), nowMs: 0, config });
const unsigned = new Uint8Array(0);
/** A publish-kind message as a hop forwards it (unsigned, as nodes without pointerAuth send it). */
type Publish = Extract<TapestryMessage, { kind: 'publish' }>;
const publishOf = (objectId: string, server: NodeRef, issuedAtMs: number, more: Partial<Publish> = {}): Publish =>
  ({ kind: 'publish', objectId, server, level: 0, hops: 1, op: 'publish', issuedAtMs, signature: unsigned, sideCopy: false, ...more });
const outputs = (effects: ReturnType<TapestryNode['onTick']>) => effects.flatMap((e) => (e.kind === 'output' ? [e.event] : []));
const sends = (effects: ReturnType<TapestryNode['onTick']>): { to: string; message: TapestryMessage }[] =>
  effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));

/** Pairs a and b the way a join would: each pings the other and adopts it on the pong. */
function pair(na: TapestryNode, nb: TapestryNode, nowMs = 0, refB = b): void {
  const queue: { from: string; to: TapestryNode; message: TapestryMessage }[] = [];
  const push = (from: TapestryNode, effects: ReturnType<TapestryNode['onTick']>): void => {
    for (const s of sends(effects)) queue.push({ from: from.self.name, to: s.to === 'a' ? na : nb, message: s.message });
  };
  push(na, na.introduce([refB], nowMs));
  for (let i = 0; i < 20 && queue.length > 0; i++) {
    const m = queue.shift()!;
    push(m.to, m.to.onMessage(m.from, m.message, nowMs + 10));
  }
}

describe('tapestry node core: boundary checks (never throws on peer input, drops and counts)', () => {
  it('drops a ping whose claimed sender is not the authenticated peer', () => {
    const node = make(a);
    const effects = node.onMessage('mallory', { kind: 'ping', sender: b, sentAtMs: 0 }, 1);
    expect(effects).toEqual([]);
    expect(node.stats.dropped).toBe(1);
  });

  it('with the members\' ids known (idOf), drops a message that names any node under another id', () => {
    const c: NodeRef = { id: 'c'.repeat(40), name: 'c' };
    const idOf = (name: string): string | undefined => ({ a: a.id, b: b.id, c: c.id })[name];
    const node = new TapestryNode({ self: a, random: new Prng(1), nowMs: 0, idOf });
    const posing: NodeRef = { id: 'a'.repeat(39) + 'c', name: 'c' }; // c handed out next to a's id
    // A candidate list with one bad reference is dropped whole: nobody is pinged.
    expect(sends(node.onMessage('b', { kind: 'candidates', nodes: [c, posing] }, 1))).toEqual([]);
    // A publish naming a server under another id leaves no pointer; under its own id it does.
    const objectId = 'd'.repeat(40);
    node.onMessage('b', publishOf(objectId, posing, 2, { sideCopy: true }), 2);
    expect(node.pointers.holders(objectId).length).toBe(0);
    expect(node.stats.dropped).toBe(2);
    const measured = sends(node.onMessage('b', publishOf(objectId, c, 3, { sideCopy: true }), 3));
    expect(node.pointers.holders(objectId).map((p) => p.server)).toEqual([c]);
    expect(measured.some((x) => x.to === 'c' && x.message.kind === 'ping')).toBe(true); // the good server is measured
  });

  it('with the members\' ids known (idOf), drops a ping, pong or backpointer whose sender claims an id other than its own', () => {
    const idOf = (name: string): string | undefined => ({ a: a.id, b: b.id })[name];
    const node = new TapestryNode({ self: a, random: new Prng(1), nowMs: 0, idOf });
    const chosen: NodeRef = { id: 'a'.repeat(39) + 'b', name: 'b' }; // b posing next to a's id
    expect(node.onMessage('b', { kind: 'ping', sender: chosen, sentAtMs: 0 }, 1)).toEqual([]);
    node.onMessage('b', { kind: 'backpointer', sender: chosen, add: true }, 1);
    expect(node.stats.dropped).toBe(2);
    // Asked to measure b, it pings b; a pong claiming the chosen id is not adopted, b's own is.
    const pings = sends(node.introduce([b], 2)).filter((x) => x.message.kind === 'ping');
    expect(pings.map((x) => x.to)).toEqual(['b']);
    node.onMessage('b', { kind: 'pong', sender: chosen, sentAtMs: 2 }, 3);
    expect(node.table.size).toBe(0);
    expect(node.stats.dropped).toBe(3);
    node.onMessage('b', { kind: 'pong', sender: b, sentAtMs: 2 }, 3);
    expect(node.table.get(b.id)).toBeTruthy();
    expect(sends(node.onMessage('b', { kind: 'ping', sender: b, sentAtMs: 4 }, 5)).some((x) => x.message.kind === 'pong')).toBe(true);
  });

  it('drops an unsolicited pong instead of adopting the sender', () => {
    const node = make(a);
    node.onMessage('b', { kind: 'pong', sender: b, sentAtMs: 0 }, 5);
    expect(node.table.size).toBe(0);
    expect(node.stats.dropped).toBe(1);
  });

  it('drops a routed message that reached the hop limit (loop or attack)', () => {
    const node = make(a);
    const effects = node.onMessage('b', { kind: 'route', requestId: 1, origin: b, targetId: 'c'.repeat(40), level: 0, hops: hopsMax }, 1);
    expect(effects).toEqual([]);
    expect(node.stats.dropped).toBe(1);
  });

  it('drops replies to requests it never made', () => {
    const node = make(a);
    node.onMessage('b', { kind: 'routeReply', requestId: 7, targetId: 'c'.repeat(40), root: b, hops: 1 }, 1);
    node.onMessage('b', { kind: 'locateReply', requestId: 7, objectId: 'c'.repeat(40), server: b, issuedAtMs: 1, signature: unsigned, answeredBy: b, hops: 1 }, 1);
    expect(node.stats.dropped).toBe(2);
  });

  it('createTapestryNode names the node after the host context and derives its id from the public key', () => {
    const publicKey = new Uint8Array(32).fill(3);
    const node = createTapestryNode({ nodeId: 'ring-0', store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 }, { crypto: nodeCrypto, publicKey });
    expect(node.self).toEqual({ id: tapestryIdOf(nodeCrypto, publicKey), name: 'ring-0' });
  });

  it('public API arguments are checked with named errors', () => {
    const node = make(a);
    expect(() => node.route('xyz', 0)).toThrow(InvalidArgumentError);
    expect(() => node.publish('A'.repeat(40), 0)).toThrow(/objectId/);
    expect(() => node.join('a', 0)).toThrow(/gateway/);
    expect(() => node.join([], 0)).toThrow(/gateway/);
    expect(() => node.join(['b', 'a'], 0)).toThrow(/gateway/);
    expect(() => make({ id: 'a'.repeat(40), name: '' })).toThrow(/self\.name/);
    expect(() => make(a, { slotSize: 0 })).toThrow(/slotSize/);
  });

  it('after leave() publish, unpublish, route, locate and join are refused; nothing is sent or stored (twentieth session review, finding 8)', () => {
    const na = make(a, { beaconIntervalMs: 0, maintenanceIntervalMs: 0 });
    pair(na, make(b));
    na.leave(10);
    const objectId = 'c'.repeat(40);
    expect(() => na.publish(objectId, 20)).toThrow(InvalidArgumentError);
    expect(() => na.unpublish(objectId, 20)).toThrow(/has not left/);
    expect(() => na.locate(objectId, 20)).toThrow(/has not left/);
    expect(() => na.route(objectId, 20)).toThrow(/has not left/);
    expect(() => na.join('b', 20)).toThrow(InvalidArgumentError);
    expect(na.publishedObjects()).toEqual([]);
    expect(na.leave(30)).toEqual([]); // leaving again stays a no-op
  });

  it('nowMs must be a finite, non-negative number (publish at NaN signed a statement at -Infinity that no peer could decode)', () => {
    const na = make(a);
    for (const bad of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      expect(() => na.publish('c'.repeat(40), bad)).toThrow(/nowMs/);
      expect(() => na.locate('c'.repeat(40), bad)).toThrow(/nowMs/);
      expect(() => na.route('c'.repeat(40), bad)).toThrow(/nowMs/);
      expect(() => na.unpublish('c'.repeat(40), bad)).toThrow(/nowMs/);
      expect(() => na.join('b', bad)).toThrow(/nowMs/);
      expect(() => na.leave(bad)).toThrow(/nowMs/);
      expect(() => new TapestryNode({ self: a, random: new Prng(1), nowMs: bad })).toThrow(/nowMs/);
    }
    expect(na.publishedObjects()).toEqual([]);
    expect(na.isMember).toBe(true);
  });
});

describe('tapestry node core: behaviour on two nodes (JSAC 2004 §3)', () => {
  it('a join that a gateway never answers (a server replaced and gone) is asked of the next gateway, in turn', () => {
    const node = make(a, { joinStepTimeoutMs: 100 });
    const joinRequestsTo = (effects: ReturnType<TapestryNode['onTick']>): string[] => sends(effects).filter((s) => s.message.kind === 'joinRequest').map((s) => s.to);
    expect(joinRequestsTo(node.join(['gone', 'b'], 0))).toEqual(['gone']);
    expect(joinRequestsTo(node.onTick(399))).toEqual([]); // a join step (x4) to answer
    expect(joinRequestsTo(node.onTick(400))).toEqual(['b']);
    expect(joinRequestsTo(node.onTick(800))).toEqual(['gone']); // round again: 'gone' may be back
    node.onTick(1200); // asking 'b' again
    // A join request reaching it meanwhile goes to the first gateway, never the one it asks now:
    // joiners that rotated onto each other would bounce requests between them.
    const c: NodeRef = { id: 'c'.repeat(40), name: 'c' };
    expect(joinRequestsTo(node.onMessage('c', { kind: 'joinRequest', joiner: c, level: 0, hops: 0 }, 1201))).toEqual(['gone']);
    // A node built to join from the start takes the list too.
    const later = new TapestryNode({ self: a, random: new Prng(1), nowMs: 0, gateway: ['gone', 'b'], config: { joinStepTimeoutMs: 100 } });
    expect(joinRequestsTo(later.onTick(1))).toEqual(['gone']);
    expect(joinRequestsTo(later.onTick(401))).toEqual(['b']);
  });

  it('measures a candidate with ping/pong and adopts it, with a backpointer at the other side', () => {
    const na = make(a);
    const nb = make(b);
    pair(na, nb);
    expect(na.table.get(b.id)?.rttMs).toBe(10);
    expect(nb.table.get(a.id)).toBeDefined();
    expect(nb.table.allBackpointers().map((r) => r.id)).toContain(a.id);
  });

  it('a locally answered route and locate emit their result events at once', () => {
    const node = make(a);
    const route = node.route('c'.repeat(40), 0);
    expect(route.effects).toEqual([{ kind: 'output', event: { kind: 'routeResult', requestId: route.requestId, targetId: 'c'.repeat(40), root: a, hops: 0 } }]);
    node.publish('d'.repeat(40), 0);
    const locate = node.locate('d'.repeat(40), 0);
    expect(locate.effects[0]).toMatchObject({ kind: 'output', event: { kind: 'locateResult', server: a, answered: true } });
  });

  it('publish leaves a pointer on every hop; the root answers a locate from its pointer', () => {
    const na = make(a);
    const nb = make(b);
    pair(na, nb);
    const objectId = 'b'.repeat(39) + '0'; // rooted at b
    const publish = sends(na.publish(objectId, 100));
    expect(publish[0]).toMatchObject({ to: 'b', message: { kind: 'publish', objectId, server: a } });
    expect(na.pointers.get(objectId, a.id)).toBeDefined();
    nb.onMessage('a', publish[0]!.message, 110);
    expect(nb.pointers.get(objectId, a.id)?.forwardedTo).toBeNull();
    const locate = nb.locate(objectId, 120);
    expect(locate.effects[0]).toMatchObject({ kind: 'output', event: { kind: 'locateResult', server: a } });
  });

  it('pointers are soft state: they expire without republish, and unpublish removes them', () => {
    const node = make(b, { pointerTtlMs: 1000, republishIntervalMs: 500 });
    node.onMessage('a', publishOf('b'.repeat(40), a, 0), 0);
    expect(node.pointers.size).toBe(1);
    node.onTick(999);
    expect(node.pointers.size).toBe(1);
    node.onTick(1000);
    expect(node.pointers.size).toBe(0);
    node.onMessage('a', publishOf('b'.repeat(40), a, 2000), 2000);
    node.onMessage('a', publishOf('b'.repeat(40), a, 2001, { op: 'unpublish' }), 2001);
    expect(node.pointers.size).toBe(0);
  });

  it('a pointer handed on keeps its issue time, so a copy never outlives the original (soft state)', () => {
    const node = make(b, { pointerTtlMs: 1000, republishIntervalMs: 500, clockSkewMaxMs: 50 });
    node.onMessage('a', publishOf('b'.repeat(40), a, 1100), 2000);
    expect(node.pointers.get('b'.repeat(40), a.id)?.expiresAtMs).toBe(2100);
    node.onMessage('a', publishOf('c'.repeat(40), a, 1000), 2000); // issued a TTL ago: dead on arrival
    expect(node.pointers.get('c'.repeat(40), a.id)).toBeUndefined();
    node.onMessage('a', publishOf('c'.repeat(40), a, 2051), 2000); // stamped beyond the clock skew allowed
    expect(node.pointers.get('c'.repeat(40), a.id)).toBeUndefined();
    expect(node.stats.dropped).toBe(2);
    node.onMessage('a', publishOf('c'.repeat(40), a, 2050), 2000);
    expect(node.pointers.get('c'.repeat(40), a.id)?.expiresAtMs).toBe(3050);
  });

  it('an unanswered request reports failure after requestTimeoutMs', () => {
    const na = make(a, { requestTimeoutMs: 100 });
    const nb = make(b);
    pair(na, nb);
    const { requestId } = na.locate('b'.repeat(40), 0);
    const outputs = na.onTick(100).filter((e) => e.kind === 'output');
    expect(outputs).toEqual([{ kind: 'output', event: { kind: 'locateResult', requestId, objectId: 'b'.repeat(40), server: null, issuedAtMs: 0, signature: unsigned, answeredBy: null, hops: 0, answered: false } }]);
  });

  it('a neighbour missing beaconMissesMax beacons is declared failed and removed (§4.2)', () => {
    const na = make(a, { beaconIntervalMs: 1000, beaconMissesMax: 3 });
    const nb = make(b);
    pair(na, nb);
    const failed: string[] = [];
    for (let t = 1000; t <= 6000; t += 1000) {
      for (const e of na.onTick(t)) if (e.kind === 'output' && e.event.kind === 'neighbourFailed') failed.push(e.event.neighbour.name);
    }
    expect(failed).toEqual(['b']);
    expect(na.table.get(b.id)).toBeUndefined();
  });

  it('a graceful leave tells neighbours, which drop the leaver', () => {
    const na = make(a);
    const nb = make(b);
    pair(na, nb);
    const leaving = sends(na.leave(50)).find((s) => s.message.kind === 'leaving');
    expect(leaving?.to).toBe('b');
    nb.onMessage('a', leaving!.message, 60);
    expect(nb.table.get(a.id)).toBeUndefined();
    expect(na.onMessage('b', { kind: 'ping', sender: b, sentAtMs: 1 }, 70)).toEqual([]);
  });
});

describe('signed pointers (pointerAuth, real ed25519): a pointer stands only on its server\'s word', () => {
  const members = ['a', 'b', 'c'].map((name, i) => {
    const signer = signerOf(nodeCrypto, new Uint8Array(32).fill(i + 1));
    return { name, signer, ref: { id: tapestryIdOf(nodeCrypto, signer.publicKey), name } };
  });
  const [ma, mb, mc] = members as [typeof members[0], typeof members[0], typeof members[0]];
  const keys = new Map(members.map((m) => [m.name, m.signer.publicKey]));
  const authOf = (m: typeof ma) => pointerAuthOf(nodeCrypto, m.signer, (name) => keys.get(name));
  const nodeOf = (m: typeof ma): TapestryNode =>
    new TapestryNode({ self: m.ref, random: new Prng(1), nowMs: 0, idOf: (name) => keys.has(name) ? tapestryIdOf(nodeCrypto, keys.get(name)!) : undefined, pointerAuth: authOf(m) });
  /** `server`'s statement about objectId as of issuedAtMs, signed by `by` (the server itself, unless forging). */
  const statement = (by: typeof ma, objectId: string, server: typeof ma, issuedAtMs: number, op: 'publish' | 'unpublish' | 'retract' = 'publish'): Publish =>
    publishOf(objectId, server.ref, issuedAtMs, { op, signature: authOf(by).sign(pointerStatement(objectId, server.ref.id, issuedAtMs, op === 'unpublish')) });
  const objectId = 'd'.repeat(40);

  it('signing needs the members\' ids (a statement names the id, its key comes from the name)', () => {
    expect(() => new TapestryNode({ self: ma.ref, random: new Prng(1), nowMs: 0, pointerAuth: authOf(ma) })).toThrow(/pointerAuth/);
  });

  it('a hop stores a pointer only with its server\'s signature over that very statement', () => {
    const hop = nodeOf(mb);
    hop.onMessage('c', publishOf(objectId, ma.ref, 10), 10); // unsigned
    hop.onMessage('c', statement(mc, objectId, ma, 10), 10); // c signing for a
    hop.onMessage('c', { ...statement(ma, 'e'.repeat(40), ma, 10), objectId }, 10); // a's word about another object
    hop.onMessage('c', { ...statement(ma, objectId, ma, 10), issuedAtMs: 11 }, 10); // a's word, restamped
    expect(hop.pointers.size).toBe(0);
    expect(hop.stats.dropped).toBe(4);
    hop.onMessage('c', statement(ma, objectId, ma, 10), 10); // a's own statement, relayed by c: fine
    expect(hop.pointers.get(objectId, ma.ref.id)?.proof.issuedAtMs).toBe(10);
  });

  it('only the server withdraws its pointer; a retraction only demotes it, and only from the hop that first handed it over', () => {
    const hop = nodeOf(mb);
    hop.onMessage('a', statement(ma, objectId, ma, 10), 10); // a published through us directly
    hop.onMessage('c', publishOf(objectId, ma.ref, 20, { op: 'unpublish' }), 20); // unsigned withdrawal
    hop.onMessage('c', statement(mc, objectId, ma, 20, 'unpublish'), 20); // c withdrawing for a
    hop.onMessage('c', statement(ma, objectId, ma, 10, 'retract'), 20); // c retracting what it never handed us
    expect(hop.pointers.get(objectId, ma.ref.id)).toMatchObject({ retracted: false });
    expect(hop.stats.dropped).toBe(3);
    // c replays a's current statement (anyone can get it from a locate answer) to become the
    // giver, then retracts: the first deliverer stays the giver, so the pointer is untouched.
    hop.onMessage('c', statement(ma, objectId, ma, 10), 20);
    hop.onMessage('c', statement(ma, objectId, ma, 10, 'retract'), 20);
    expect(hop.pointers.get(objectId, ma.ref.id)).toMatchObject({ givenBy: 'a', retracted: false });
    hop.onMessage('c', statement(ma, objectId, ma, 20, 'unpublish'), 20); // a's own withdrawal, relayed by c
    expect(hop.pointers.get(objectId, ma.ref.id)).toBeUndefined();

    // Handed over by c: c's retraction of that statement demotes it, but not a newer one, and a
    // newer statement lifts the demotion.
    hop.onMessage('c', statement(ma, objectId, ma, 30), 30);
    hop.onMessage('c', statement(ma, objectId, ma, 40), 40);
    hop.onMessage('c', statement(ma, objectId, ma, 30, 'retract'), 41);
    expect(hop.pointers.get(objectId, ma.ref.id)).toMatchObject({ retracted: false });
    hop.onMessage('c', statement(ma, objectId, ma, 40, 'retract'), 42);
    expect(hop.pointers.get(objectId, ma.ref.id)).toMatchObject({ retracted: true });
    hop.onMessage('a', statement(ma, objectId, ma, 50), 50);
    expect(hop.pointers.get(objectId, ma.ref.id)).toMatchObject({ givenBy: 'a', retracted: false });
  });

  it('a locate passes a retracted pointer by while another holder is known; the root still answers with it when it is the only one', () => {
    const hop = nodeOf(mb); // alone: the root of every object
    hop.onMessage('c', statement(ma, objectId, ma, 10), 10);
    hop.onMessage('c', statement(mc, objectId, mc, 10), 10);
    hop.onMessage('c', statement(ma, objectId, ma, 10, 'retract'), 11);
    const holderOf = (nowMs: number) => outputs(hop.locate(objectId, nowMs).effects)[0];
    expect(holderOf(12)).toMatchObject({ kind: 'locateResult', server: mc.ref });
    hop.onMessage('c', statement(mc, objectId, mc, 10, 'retract'), 13);
    expect(holderOf(14)).toMatchObject({ kind: 'locateResult', server: { name: expect.stringMatching(/^[ac]$/) } });
    hop.onMessage('c', statement(mc, objectId, mc, 15), 15); // c published again: it is back
    expect(holderOf(16)).toMatchObject({ kind: 'locateResult', server: mc.ref });
  });

  it('a replayed older statement neither rolls a pointer back nor extends it, nor plants it again after its server withdrew it', () => {
    const hop = nodeOf(mb);
    hop.onMessage('a', statement(ma, objectId, ma, 50), 50);
    hop.onMessage('c', statement(ma, objectId, ma, 10), 51);
    expect(hop.pointers.get(objectId, ma.ref.id)?.proof.issuedAtMs).toBe(50);
    expect(hop.pointers.get(objectId, ma.ref.id)?.givenBy).toBe('a');
    hop.onMessage('a', statement(ma, objectId, ma, 60, 'unpublish'), 60);
    hop.onMessage('c', statement(ma, objectId, ma, 50), 61); // a's last publish, replayed
    expect(hop.pointers.get(objectId, ma.ref.id)).toBeUndefined();
    hop.onTick(60 + hop.config.pointerTtlMs); // the withdrawal is kept as long as that publish could live
    hop.onMessage('a', statement(ma, objectId, ma, 70), 71); // a publishes again
    expect(hop.pointers.get(objectId, ma.ref.id)?.proof.issuedAtMs).toBe(70);
  });

  it('a node that unpublishes and publishes again at the same clock reading issues them in order', () => {
    const na = nodeOf(ma); // alone: it is the root and keeps its own pointer as every hop would
    na.publish(objectId, 5);
    na.unpublish(objectId, 5);
    expect(na.pointers.get(objectId, ma.ref.id)).toBeUndefined();
    na.publish(objectId, 5);
    expect(na.publishedObjects()).toEqual([objectId]);
    expect(na.pointers.get(objectId, ma.ref.id)?.proof.issuedAtMs).toBeGreaterThan(5);
  });

  it('a locate answer naming a holder counts only with the holder\'s statement; a node answers with its own', () => {
    const na = nodeOf(ma);
    const nb = nodeOf(mb);
    pair(na, nb, 0, mb.ref);
    const rootedAtB = mb.ref.id.slice(0, 39) + (mb.ref.id[39] === '0' ? '1' : '0');
    const { requestId, effects } = na.locate(rootedAtB, 100);
    expect(sends(effects).map((s) => [s.to, s.message.kind])).toEqual([['b', 'locate']]);
    const reply = (holder: Publish): Extract<TapestryMessage, { kind: 'locateReply' }> =>
      ({ kind: 'locateReply', requestId, objectId: rootedAtB, server: holder.server, issuedAtMs: holder.issuedAtMs, signature: holder.signature, answeredBy: mb.ref, hops: 1 });
    // b names c as holder, with no statement from c, with b's own signature, with an expired one
    // and with one stamped beyond the clock skew allowed.
    expect(na.onMessage('b', { ...reply(statement(mc, rootedAtB, mc, 90)), signature: new Uint8Array(0) }, 110)).toEqual([]);
    expect(na.onMessage('b', reply(statement(mb, rootedAtB, mc, 90)), 110)).toEqual([]);
    expect(na.onMessage('b', reply(statement(mc, rootedAtB, mc, 110 - na.config.pointerTtlMs)), 110)).toEqual([]);
    expect(na.onMessage('b', reply(statement(mc, rootedAtB, mc, 111 + na.config.clockSkewMaxMs)), 110)).toEqual([]);
    expect(na.stats.dropped).toBe(4);
    const settled = na.onMessage('b', reply(statement(mc, rootedAtB, mc, 90)), 110);
    expect(settled).toEqual([{ kind: 'output', event: expect.objectContaining({ kind: 'locateResult', requestId, server: mc.ref, issuedAtMs: 90, answered: true }) }]);

    // A node holding the object answers with its own signed statement, which the origin checks.
    nb.publish(rootedAtB, 200);
    const again = na.locate(rootedAtB, 210);
    const located = sends(nb.onMessage('a', sends(again.effects)[0]!.message, 211));
    expect(located.map((s) => s.message.kind)).toEqual(['locateReply']);
    const answer = na.onMessage('b', located[0]!.message, 212);
    expect(answer).toEqual([{ kind: 'output', event: expect.objectContaining({ kind: 'locateResult', server: mb.ref, issuedAtMs: 200 }) }]);

    // On the way to the root, a hop holding only a retracted pointer passes the locate on.
    na.onMessage('c', statement(mc, rootedAtB, mc, 300), 300);
    expect(outputs(na.locate(rootedAtB, 301).effects)).toEqual([expect.objectContaining({ server: mc.ref })]);
    na.onMessage('c', statement(mc, rootedAtB, mc, 300, 'retract'), 302);
    expect(sends(na.locate(rootedAtB, 303).effects).map((x) => [x.to, x.message.kind])).toEqual([['b', 'locate']]);
  });
});
