/**
 * The server-side wrapper (tapestry/service.ts): client lookups answered by a locate on the
 * client's behalf (JSAC 2004 §3.3 locate, run from the node the client asked), overlay messages
 * only from members, and locates wanted by other local cores started at the next tick.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { Prng } from '../../sim/prng.ts';
import { nodeObjectIdOf, roleObjectIdOf } from '../../tapestry/named-objects.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { TapestryService } from '../../tapestry/service.ts';
import { overlay, refs } from './service-harness.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

describe('tapestry service: lookups for clients (locate on the client\'s behalf, §3.3)', () => {
  it('answers a client lookup with the publishing server, and a miss with server null', () => {
    const { services, toClients, pump, now } = overlay();
    const objectId = nodeObjectIdOf(nodeCrypto, 'n2');
    pump('n2', services.get('n2')!.node.publish(objectId, now()));
    pump('n0', services.get('n0')!.onMessage('client-x', { kind: 'lookup', requestId: 41, objectId }, now()));
    pump('n3', services.get('n3')!.onMessage('client-x', { kind: 'lookup', requestId: 42, objectId: roleObjectIdOf(nodeCrypto, 'none') }, now()));
    const replies = toClients.filter((c) => c.to === 'client-x').map((c) => c.message);
    expect(replies).toContainEqual({ kind: 'lookupReply', requestId: 41, objectId, server: refs[2], issuedAtMs: expect.any(Number), signature: expect.any(Uint8Array), hops: expect.any(Number), answered: true });
    expect(replies).toContainEqual(expect.objectContaining({ kind: 'lookupReply', requestId: 42, server: null, answered: true }));
    expect(services.get('n0')!.clientLookupsPending).toBe(0);
  });

  it('reports an unanswered lookup to the client as answered: false after the request timeout', () => {
    const { services, toClients, pump } = overlay();
    const s = services.get('n0')!;
    // A lookup whose locate is sent toward a node that never answers (its messages are lost here).
    const effects = s.onMessage('client-y', { kind: 'lookup', requestId: 5, objectId: 'd'.repeat(40) }, 100);
    expect(effects.some((e) => e.kind === 'send' && e.message.kind === 'locate')).toBe(true);
    pump('n0', s.onTick(100 + s.node.config.requestTimeoutMs + 1).filter((e) => e.kind === 'output' || e.to === 'client-y'));
    expect(toClients).toContainEqual({ to: 'client-y', message: { kind: 'lookupReply', requestId: 5, objectId: 'd'.repeat(40), server: null, issuedAtMs: 0, signature: new Uint8Array(0), hops: 0, answered: false } });
  });

  it('after its node left, queued announcements are dropped at the tick (the node refuses publishes then) and client lookups are refused', () => {
    const { services, now } = overlay();
    const s = services.get('n0')!;
    s.announce('c'.repeat(40), true);
    s.node.leave(now());
    expect(() => s.onTick(now())).not.toThrow();
    expect(s.node.publishedObjects()).toEqual([]);
    expect(s.onMessage('client-x', { kind: 'lookup', requestId: 9, objectId: 'c'.repeat(40) }, now())).toMatchObject([{ kind: 'send', to: 'client-x', message: { answered: false } }]);
  });

  it('refuses lookups past clientLookupsMax at once instead of queueing them', () => {
    const { services } = overlay();
    const s = services.get('n0')!;
    for (const requestId of [1, 2]) s.onMessage('client-z', { kind: 'lookup', requestId, objectId: 'd'.repeat(40) }, 10);
    const refused = s.onMessage('client-z', { kind: 'lookup', requestId: 3, objectId: 'd'.repeat(40) }, 10);
    expect(refused).toEqual([{ kind: 'send', to: 'client-z', message: { kind: 'lookupReply', requestId: 3, objectId: 'd'.repeat(40), server: null, issuedAtMs: 0, signature: new Uint8Array(0), hops: 0, answered: false } }]);
    expect(s.stats.clientLookupsRefused).toBe(1);
  });
});

describe('tapestry service: boundary (Byzantine clients)', () => {
  it('drops overlay messages from non-members: a client cannot plant pointers or join', () => {
    const { services } = overlay();
    const s = services.get('n0')!;
    const pointersBefore = s.node.pointers.size;
    const forged = { kind: 'publish', objectId: 'e'.repeat(40), server: { id: 'e'.repeat(40), name: 'client-x' }, level: 0, hops: 0, op: 'publish', issuedAtMs: 0, signature: new Uint8Array(0), sideCopy: false } as const;
    expect(s.onMessage('client-x', forged, 1)).toEqual([]);
    expect(s.onMessage('client-x', { kind: 'joinRequest', joiner: { id: 'e'.repeat(40), name: 'client-x' }, level: 0, hops: 0 }, 1)).toEqual([]);
    expect(s.onMessage('n1', { kind: 'lookupReply', requestId: 1, objectId: 'e'.repeat(40), server: null, issuedAtMs: 0, signature: new Uint8Array(0), hops: 0, answered: true }, 1)).toEqual([]);
    expect(s.node.pointers.size).toBe(pointersBefore);
    expect(s.stats.dropped).toBe(3);
  });

  it('a bare node (no service) drops client messages and counts them', () => {
    const node = new TapestryNode({ self: refs[0]!, random: new Prng(1), nowMs: 0 });
    expect(node.onMessage('client-x', { kind: 'lookup', requestId: 1, objectId: 'e'.repeat(40) }, 1)).toEqual([]);
    expect(node.stats.dropped).toBe(1);
  });

  it('checks its arguments', () => {
    const node = new TapestryNode({ self: refs[0]!, random: new Prng(1), nowMs: 0 });
    expect(() => new TapestryService(node, {} as never)).toThrow(InvalidArgumentError);
    expect(() => new TapestryService(node, { isMember: () => true, clientLookupsMax: 0 })).toThrow(/clientLookupsMax/);
    expect(() => new TapestryService(node, { isMember: () => true }).want('xyz')).toThrow(/objectId/);
  });
});

describe('tapestry service: locates wanted by other local cores', () => {
  it('starts a wanted locate at the next tick, once per object, and reports its result', () => {
    const { services, outputs, pump, now } = overlay();
    const objectId = roleObjectIdOf(nodeCrypto, 'archive');
    pump('n3', services.get('n3')!.node.publish(objectId, now()));
    const s = services.get('n0')!;
    expect(s.want(objectId)).toBe(true);
    expect(s.want(objectId)).toBe(true);
    pump('n0', s.onTick(now()));
    expect(s.stats.localLocates).toBe(1);
    expect(outputs.filter((o) => o.kind === 'locateResult')).toEqual([expect.objectContaining({ objectId, server: refs[3], answered: true })]);
  });

  it('named object ids are distinct per kind and name and never a node id', () => {
    const ids = new Set([nodeObjectIdOf(nodeCrypto, 'ring-0'), nodeObjectIdOf(nodeCrypto, 'ring-1'), roleObjectIdOf(nodeCrypto, 'ring-0'), roleObjectIdOf(nodeCrypto, 'ring')]);
    expect(ids.size).toBe(4);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{40}$/);
    expect(() => nodeObjectIdOf(nodeCrypto, '')).toThrow(InvalidArgumentError);
  });
});
