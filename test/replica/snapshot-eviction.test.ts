/**
 * A snapshot by reference counts the leaves already in the cache as present without holding them;
 * a small cache may evict some before the rest arrive. The honest parent that sent every leaf asked
 * for must not be called a liar (incomplete-snapshot): the evicted ones are asked for again.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { nodeCrypto as crypto } from '../../runtime/node-crypto.ts';
import { BlockCache } from '../../replica/block-cache.ts';
import { ObjectCopy, type OfferResult } from '../../replica/object-copy.ts';
import { TestRingSigner, buildHistory, testObject } from './test-ring.ts';

describe('a snapshot whose counted leaves were evicted while it fetched', () => {
  it('asks for them again and installs from the honest parent that sent everything asked', () => {
    const signer = new TestRingSigner(crypto, 'fake', 5);
    const object = testObject(crypto, 'core', 5);
    const history = buildHistory(crypto, signer, object, { versionCount: 8, referenceEvery: 3, seed: 5 });
    const limits = { pendingEntriesMax: 16, pendingBytesMax: 1 << 30, logEntriesMax: 1000, logBytesMax: 1 << 30 };
    const source = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 1 << 26), limits, () => {});
    for (const h of history) source.offer(h.entry, 'x');
    const snapshot = source.snapshot()!;
    const tree = snapshot.blocks.filter((b) => b.kind !== 'data');
    const hashing = new BlockCache(crypto, 1 << 20);
    const leaves = new Map(snapshot.blocks.filter((b) => b.kind === 'data').map((b) => [toHex(hashing.bguidOf('data', b.bytes)), b.bytes]));
    const leafOf = (bguid: Uint8Array): Uint8Array => leaves.get(toHex(bguid))!;
    // A cache just big enough for the tree and some leaves.
    const copy = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 9529), limits, () => {});
    copy.offer(history[0]!.entry, 'p');
    // Parent p sends half the leaves, then is left (what it sent stays in the cache, unpinned).
    copy.installSnapshot({ certificate: snapshot.certificate, blocks: tree }, 'p');
    const first = copy.blocksToFetch(1000)!;
    copy.offerBlocks(first.bguids.slice(0, Math.ceil(first.bguids.length / 2)).map(leafOf), [], 'p');
    copy.clearPending();
    // Honest q: the snapshot, then every leaf it is asked for, for as long as it is asked.
    const results: OfferResult[] = [copy.installSnapshot({ certificate: snapshot.certificate, blocks: tree }, 'q')];
    for (let round = 0; round < 5; round++) {
      const want = copy.blocksToFetch(1000);
      if (!want) break;
      results.push(copy.offerBlocks(want.bguids.map(leafOf), [], 'q')!);
    }
    expect(results.filter((r) => r.kind === 'bad')).toEqual([]);
    expect(copy.head?.version).toBe(history.length - 1);
  });
});
