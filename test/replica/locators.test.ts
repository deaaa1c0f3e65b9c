/** Tree locators: configured members, and members learned from a directory (Tapestry locate) ahead of the ring. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { LearnedLocator } from '../../replica/learned-locator.ts';

const a = new Uint8Array(32).fill(1);
const b = new Uint8Array(32).fill(2);

describe('locators', () => {
  it('ConfigLocator lists nearby members before the ring servers, without duplicates, and needs a root', () => {
    expect(new ConfigLocator(['ring-0', 'ring-1'], ['replica-3', 'ring-1']).candidates()).toEqual(['replica-3', 'ring-1', 'ring-0']);
    expect(() => new ConfigLocator([])).toThrow(InvalidArgumentError);
  });

  it('LearnedLocator offers learned members first, per object, and forgets the oldest object past its bound', () => {
    const locator = new LearnedLocator(new ConfigLocator(['ring-0']), 1);
    expect(locator.candidates(a)).toEqual(['ring-0']);
    locator.learn(a, ['replica-7', 'replica-2', 'replica-7']);
    expect(locator.candidates(a)).toEqual(['replica-7', 'replica-2', 'ring-0']);
    expect(locator.candidates(b)).toEqual(['ring-0']);
    locator.learn(b, ['replica-9']);
    expect(locator.candidates(a)).toEqual(['ring-0']);
    expect(locator.candidates(b)).toEqual(['replica-9', 'ring-0']);
  });
});
