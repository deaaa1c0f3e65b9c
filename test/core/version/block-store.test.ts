// The in-memory block store runs the shared compliance suite, plus what only memory can show:
// verify-on-get catches bytes changed after put.
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../../core/errors.ts';
import { MemoryBlockStore } from '../../../core/version/block-store.ts';
import { StagingBlockStore } from '../../../core/version/staging-block-store.ts';
import { bytesOf, crypto } from '../update/fixtures.ts';
import { blockStoreCompliance } from './block-store-compliance.ts';

blockStoreCompliance('MemoryBlockStore', async () => ({ store: new MemoryBlockStore(crypto), barrier: async () => {} }));

describe('MemoryBlockStore', () => {
  it('get re-hashes: bytes mutated after put surface as IntegrityError (unless verifyOnGet is off)', () => {
    const bytes = bytesOf(100, 1);
    const checked = new MemoryBlockStore(crypto);
    const trusting = new MemoryBlockStore(crypto, { verifyOnGet: false });
    const a = checked.put('data', bytes);
    trusting.put('data', bytes);
    bytes[5] = bytes[5]! ^ 1; // the store keeps the caller's array by reference, as documented
    expect(() => checked.get(a, 'data')).toThrow(IntegrityError);
    expect(trusting.get(a, 'data')).toBe(bytes);
  });

  it('counts blocks and bytes, and put is idempotent', () => {
    const store = new MemoryBlockStore(crypto);
    store.put('data', bytesOf(10, 1));
    store.put('data', bytesOf(10, 1));
    store.put('interior', bytesOf(7, 2));
    expect(store.size).toBe(2);
    expect(store.bytes).toBe(17);
  });
});

describe('StagingBlockStore', () => {
  it('reads through to the base, keeps its own writes out of the base until taken', () => {
    const base = new MemoryBlockStore(crypto);
    const old = base.put('data', bytesOf(10, 1));
    const staging = new StagingBlockStore(crypto, base);
    const fresh = staging.put('data', bytesOf(10, 2));
    expect(staging.get(old, 'data')).toEqual(bytesOf(10, 1));
    expect(staging.get(fresh, 'data')).toEqual(bytesOf(10, 2));
    expect(base.has(fresh)).toBe(false);
    expect(staging.isStaged(fresh)).toBe(true);
    expect(staging.isStaged(old)).toBe(false);
    expect(() => staging.putVerified(old, 'data', bytesOf(10, 3))).toThrow(IntegrityError);
  });
});
