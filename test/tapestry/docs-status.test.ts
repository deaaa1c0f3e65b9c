/**
 * docs/tapestry.md's /status paragraph names every counter the status object carries (second
 * review, finding 4: the tree locator's `membersRefused` was missing): the counter objects are
 * taken from the code, so a new counter without a line in the docs fails here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { TapestryTreeLocator } from '../../runtime/tapestry-tree-locator.ts';
import { overlay } from './service-harness.ts';

const docs = readFileSync(new URL('../../docs/tapestry.md', import.meta.url), 'utf8');

describe('docs/tapestry.md keeps up with /status and the client API', () => {
  it('the /status paragraph names every core and tree-locator counter', () => {
    const start = docs.indexOf('Each node\'s admin `/status` carries');
    const paragraph = docs.slice(start, docs.indexOf('\n\n', start));
    const service = overlay().services.values().next().value!;
    const locator = new TapestryTreeLocator(service, new ConfigLocator(['ring-0'], []), { selfName: 'n0' });
    const missing = [...Object.keys(service.node.stats), ...Object.keys(locator.counters)].filter((k) => !paragraph.includes(`\`${k}\``));
    expect(missing).toEqual([]);
  });

  it('the runtime table gives TapestryClient.lookup with its HolderRule argument', () => {
    expect(docs).toContain('lookup(via, objectId, timeoutMs = 15000, holder?: HolderRule)');
  });
});
