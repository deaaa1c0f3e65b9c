/**
 * What an archive server reads to answer a fetch: each fragment it serves is read out of the store
 * once (each read is a copy on lmdb). It was read three times: to see that the key still existed,
 * to check the reply's byte bound, and again to verify it. Existence now asks the store's `has`.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { bguidOf } from '../../core/version/block.ts';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { nodeCrypto as crypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';

class CountingStore extends MemoryKvStore {
  /** Reads of fragment records (f/...); certificate lookups are small and not counted. */
  gets = 0;
  override get(key: string): Uint8Array | undefined {
    if (key.startsWith('f/')) this.gets++;
    return super.get(key);
  }
}

describe('archive server fetch', () => {
  it('reads each fragment it serves once', () => {
    const random = new Prng(5);
    const store = new CountingStore();
    const names = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
    const server = new ArchiveServer({ nodeId: 'archive-0', store, random, nowMs: 0 }, {
      crypto, signer: signerOf(crypto, random.bytes(32)), archiveServers: names, ringServers: ['ring-0'], coding: { k: 4, m: 4 }, ...defaultArchiveTiming, repair: defaultRepairOptions,
    });
    const bguids: Uint8Array[] = [];
    for (let b = 0; b < 3; b++) {
      const block = random.bytes(10_000);
      const bguid = bguidOf(crypto, 'data', block);
      bguids.push(bguid);
      const set = makeFragments(crypto, 4, 4, bguid, block);
      const items = set.fragments.slice(0, 2).map((f) => ({ fragment: encodeFragment(f), fragmentRoot: set.fragmentRoot, certificate: null }));
      server.onMessage('ring-0', { type: 'store', requestId: b + 1, items }, 0);
    }
    store.gets = 0;
    const effects = server.onMessage('restore', { type: 'fetch', requestId: 9, bguids }, 0);
    const reply = effects.find((e) => e.kind === 'send')!;
    expect(reply.kind === 'send' && reply.message.type === 'fetchReply' && reply.message.blocks.map((b) => b.fragments.length)).toEqual([2, 2, 2]);
    expect(store.gets).toBe(6);
  });
});
