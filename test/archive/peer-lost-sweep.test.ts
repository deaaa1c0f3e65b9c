/**
 * A peer loss queues the blocks to re-protect in a pass over the store spread over ticks, one pass
 * for all peers lost together, with no hashing (session-20 archive review, finding 4): the tick
 * that found 7 peers lost used to walk every key and decode and hash one record per block, once
 * per peer (~3 s per GiB held per peer).
 */
import { describe, expect, it } from 'vitest';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { Prng } from '../../sim/prng.ts';
import { crypto, k, m } from './sim-helpers.ts';

const servers = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
const blockCount = 100;
const sweepPerTickMax = 16;

/** archive-0 holding one fragment of each of `blockCount` blocks; it starts no repair job (concurrencyMax 0), so only the pass is measured. */
function serverWithBlocks(): ArchiveServer {
  const server = new ArchiveServer({ nodeId: 'archive-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 }, {
    crypto, signer: signerOf(crypto, new Uint8Array(32).fill(3)), archiveServers: servers, ringServers: ['ring-0'], coding: { k, m },
    ...defaultArchiveTiming, repair: { ...defaultRepairOptions, concurrencyMax: 0, sweepPerTickMax },
  });
  const random = new Prng(5);
  for (let b = 0; b < blockCount; b++) {
    const block = random.bytes(256);
    const set = makeFragments(crypto, k, m, crypto.sha256([block]), block);
    server.onMessage('ring-0', { type: 'store', requestId: b, items: [{ fragment: encodeFragment(set.fragments[0]!), fragmentRoot: set.fragmentRoot, certificate: null }] }, 0);
  }
  return server;
}

describe('queuing blocks after a peer loss', () => {
  it('the tick that finds every peer lost hashes nothing and scans no keys; the blocks are queued over later ticks, in one pass', () => {
    const server = serverWithBlocks();
    const calls = { verifyKey: 0, keysAfter: 0, blockHexes: 0 };
    for (const name of ['verifyKey', 'keysAfter', 'blockHexes'] as const) {
      const store = server.fragments as unknown as Record<string, (...args: unknown[]) => unknown>;
      const real = store[name]?.bind(server.fragments);
      if (!real) continue;
      store[name] = (...args: unknown[]) => {
        calls[name]++;
        return real(...args);
      };
    }
    server.onTick(1_000);
    const effects = server.onTick(defaultArchiveTiming.lostAfterMs + 1);
    expect(effects.filter((e) => e.kind === 'output' && e.event.kind === 'peer-lost')).toHaveLength(7);
    expect(calls.verifyKey).toBe(0);
    expect(calls.keysAfter).toBe(0);
    expect(server.repairer.queuedCount()).toBeLessThanOrEqual(sweepPerTickMax);
    // With 8 servers every block's window holds every peer: all are queued, a tick's share at a time.
    let ticks = 0;
    for (let now = defaultArchiveTiming.lostAfterMs + 2; server.repairer.sweeping() && ticks < 100; now++, ticks++) server.onTick(now);
    expect(server.repairer.queuedCount()).toBe(blockCount);
    expect(ticks).toBeGreaterThanOrEqual(Math.ceil(blockCount / sweepPerTickMax) - 1);
    expect(calls.blockHexes).toBe(1);
    expect(calls.verifyKey).toBe(0);
  });
});
