/**
 * Dissemination-tree members through Tapestry (runtime/tapestry-tree-locator.ts): a secondary that
 * attaches to an object's tree publishes the object (JSAC 2004 §3.3 publish), another secondary's
 * locator locates it (§3.3 locate) and offers the member found before its configured fallback.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { toHex } from '../../core/bytes.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { TapestryTreeLocator } from '../../runtime/tapestry-tree-locator.ts';
import { overlay } from './service-harness.ts';

const aguid = new Uint8Array(32).map((_, i) => (i * 37 + 11) & 0xff);
const other = new Uint8Array(32).fill(0x42);

function setup() {
  const o = overlay();
  // As the runtime builds it (runtime/roles.ts): the other secondaries, then the ring servers.
  const fallback = new ConfigLocator(['ring-0'], ['n3', 'n1']);
  const locators = new Map([...o.services].map(([name, s]) => [name, new TapestryTreeLocator(s, fallback, { selfName: name })]));
  // The host feeds every locateResult of a node to its locator (runtime/roles.ts does the same).
  const feed = (): void => {
    for (const event of o.outputs.splice(0)) {
      if (event.kind !== 'locateResult') continue;
      for (const locator of locators.values()) locator.onLocateResult(event);
    }
  };
  return { ...o, locators, feed };
}

describe('tapestry tree locator: secondaries find tree members through the overlay', () => {
  it('an attached secondary publishes the object; another one learns it and offers it first', () => {
    const { services, locators, pump, now, feed } = setup();
    locators.get('n1')!.onReplicaEvent({ kind: 'attached', aguid: toHex(aguid), parent: 'ring-0', depth: 1 });
    pump('n1', services.get('n1')!.onTick(now()));
    expect(services.get('n1')!.node.publishedObjects()).toEqual([toHex(aguid).slice(0, 40)]);

    const n0 = locators.get('n0')!;
    // First call: nothing learned yet, the configured fallback; the locate starts at the next tick.
    expect(n0.candidates(aguid)).toEqual(['n3', 'n1', 'ring-0']);
    pump('n0', services.get('n0')!.onTick(now()));
    feed();
    expect(n0.learnedFor(aguid)).toEqual(['n1']);
    expect(n0.candidates(aguid)).toEqual(['n1', 'n3', 'ring-0']);
    // The publisher's own locator never offers itself; unrelated objects keep the fallback.
    expect(locators.get('n1')!.learnedFor(aguid)).toEqual([]);
    expect(n0.candidates(other)).toEqual(['n3', 'n1', 'ring-0']);
  });

  it('a detached secondary withdraws the object: locates stop finding it', () => {
    const { services, locators, pump, now, feed } = setup();
    const n1 = locators.get('n1')!;
    n1.onReplicaEvent({ kind: 'attached', aguid: toHex(aguid), parent: 'ring-0', depth: 1 });
    pump('n1', services.get('n1')!.onTick(now()));
    n1.onReplicaEvent({ kind: 'detached', aguid: toHex(aguid), parent: 'ring-0', reason: 'parent gone' });
    pump('n1', services.get('n1')!.onTick(now()));
    expect(services.get('n1')!.node.publishedObjects()).toEqual([]);
    expect(n1.counters).toMatchObject({ announced: 1, withdrawn: 1 });
    const n2 = locators.get('n2')!;
    n2.candidates(aguid);
    pump('n2', services.get('n2')!.onTick(now()));
    feed();
    expect(n2.learnedFor(aguid)).toEqual([]);
  });

  it('a member that could not be a tree member (not a configured secondary or ring server) is never offered, even if it publishes the object (twentieth session review, finding 4)', () => {
    const { services, locators, pump, now, feed } = setup();
    // n2 (an archive server, say) announces the object as if it were in the tree, and is nearest.
    pump('n2', services.get('n2')!.node.publish(toHex(aguid).slice(0, 40), now()));
    const n0 = locators.get('n0')!;
    n0.candidates(aguid);
    pump('n0', services.get('n0')!.onTick(now()));
    feed();
    expect(n0.learnedFor(aguid)).toEqual([]);
    expect(n0.candidates(aguid)).toEqual(['n3', 'n1', 'ring-0']);
    expect(n0.counters.membersRefused).toBe(1);
  });

  it('ignores answers to locates it never asked for, and checks its arguments', () => {
    const { services, locators } = setup();
    const n0 = locators.get('n0')!;
    n0.onLocateResult({ kind: 'locateResult', requestId: 1, objectId: toHex(aguid).slice(0, 40), server: { id: 'e'.repeat(40), name: 'n9' }, issuedAtMs: 1, signature: new Uint8Array(0), answeredBy: null, hops: 1, answered: true });
    expect(n0.learnedFor(aguid)).toEqual([]);
    expect(() => new TapestryTreeLocator(services.get('n0')!, new ConfigLocator(['ring-0']), { selfName: '' })).toThrow(InvalidArgumentError);
  });
});
