/**
 * Who may store fragments on an archive server: the ring's members and the other archive servers.
 * After `cluster replace-node` the ring's list changes (runtime/descriptor-gossip.ts hands the node
 * the re-signed descriptor): the new member's archiver may store from then on, the old one may not;
 * and archivers rank blocks over the new list, so the new member takes its share.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { Archiver } from '../../archive/archiver.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';

const ring = ['ring-0', 'ring-1', 'ring-2', 'ring-3'];
const archiveServers = ['archive-0', 'archive-1'];

function server(): ArchiveServer {
  return new ArchiveServer(
    { nodeId: 'archive-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto: nodeCrypto, signer: signerOf(nodeCrypto, new Uint8Array(32).fill(3)), archiveServers, ringServers: ring, coding: { k: 1, m: 1 }, ...defaultArchiveTiming, repair: defaultRepairOptions },
  );
}

const store = { type: 'store' as const, requestId: 1, items: [{ fragment: new Uint8Array(64), fragmentRoot: new Uint8Array(32), certificate: null }] };
const refusedAsWriter = (effects: ReturnType<ArchiveServer['onMessage']>) =>
  effects.some((e) => e.kind === 'output' && e.event.kind === 'dropped' && /not a configured writer/.test(e.event.reason));

describe('archive writers follow the ring', () => {
  it('takes stores from a member that joined and refuses the one that left', () => {
    const s = server();
    expect(refusedAsWriter(s.onMessage('spare-0', store, 1))).toBe(true);
    expect(refusedAsWriter(s.onMessage('ring-3', store, 2))).toBe(false); // (a junk fragment, refused for that)
    s.setRingServers(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
    expect(refusedAsWriter(s.onMessage('spare-0', store, 3))).toBe(false);
    expect(refusedAsWriter(s.onMessage('ring-3', store, 4))).toBe(true);
    expect(refusedAsWriter(s.onMessage('archive-1', store, 5))).toBe(false);
    expect(s.counters.storesRefused).toBe(2);
  });

  it('an archiver ranks blocks over the new list: a member that joined takes its share of the blocks that come next', () => {
    const archiver = new Archiver(
      { nodeId: 'spare-0', store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 },
      { crypto: nodeCrypto, ringServers: ring, archiveServers, archiveServerKeys: new Map(), k: 1, m: 1, fallbackTimeoutMs: 1000, fallbackRanksMax: 1, storeTimeoutMs: 1000, attemptsMax: 3 },
    );
    const blocks = Array.from({ length: 20 }, (_, i) => {
      const bytes = new Prng(100 + i).bytes(100);
      return { bguid: nodeCrypto.sha256([bytes]), bytes };
    });
    archiver.archive(blocks.slice(0, 10), null, null, 0);
    expect(archiver.counters).toMatchObject({ started: 0, skipped: 10 });
    archiver.setRingServers(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
    archiver.archive(blocks.slice(10), null, null, 0);
    // Ranks 0 and 1 of 4 (fallbackRanksMax 1): about half of the ten.
    expect(archiver.counters.started).toBeGreaterThan(1);
    expect(archiver.counters.started).toBeLessThan(10);
  });
});
