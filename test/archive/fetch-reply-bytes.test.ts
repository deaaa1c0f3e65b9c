/**
 * Fetch replies are bounded in bytes and the fetcher asks again for what a reply left out
 * (session-20 archive review, finding 3). A reply used to carry every fragment held for up to 256
 * blocks: with m of 2m servers down every live server is asked for all 64 blocks of a restore
 * batch, and 64 fragments of 4 MiB blocks (1 MiB each at k = 4) outgrew the 64 MiB message bound
 * the client enforces, so the restore failed. Here the same shape is scaled down: the client's
 * bound and the servers' reply budget are set small, blocks are 64 KiB.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../core/errors.ts';
import { archiveLimits, decodeArchiveMessage, encodeArchiveMessage, type ArchiveMessage } from '../../archive/messages.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../../archive/shell/block-fetcher.ts';
import { discoverVersions, restoreVersions } from '../../archive/shell/restore.ts';
import type { ArchiveSource } from '../../archive/shell/archive-source.ts';
import { SimArchive } from '../../archive/sim/sim-archive.ts';
import { bytesEqual, toHex } from '../../core/bytes.ts';
import { archiveAll, crypto, expectedContent, k, m, makeHistory } from './sim-helpers.ts';

const clientBytesMax = 256 * 1024;

/** The sim source with every reply through the wire codec under the client's bound, as WsArchiveSource does; counts refusals and fetches. */
function boundedSource(cluster: SimArchive): { source: ArchiveSource; refused: number[]; fetches: { count: number } } {
  const inner = cluster.source();
  const refused: number[] = [];
  const fetches = { count: 0 };
  return {
    refused,
    fetches,
    source: {
      servers: inner.servers,
      request: async (server: string, message: ArchiveMessage) => {
        if (message.type === 'fetch') fetches.count++;
        const reply = await inner.request(server, message);
        if (!reply) return null;
        const bytes = encodeArchiveMessage(reply);
        try {
          return decodeArchiveMessage(bytes, clientBytesMax);
        } catch (error) {
          if (!(error instanceof DecodeError)) throw error;
          refused.push(bytes.length);
          return null;
        }
      },
    },
  };
}

describe('fetch replies bounded in bytes', () => {
  it('restores a version whose batches outgrow one reply, with m of 2m servers down', async () => {
    const cluster = new SimArchive({ seed: 43, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, server: { fetchReplyBytesMax: 192 * 1024 } });
    const history = makeHistory(43, 1, 1, 64 * 64 * 1024, 64 * 1024); // 64 leaves of 64 KiB: 16 KiB fragments
    archiveAll(cluster, history);
    for (const id of ['archive-1', 'archive-2', 'archive-4', 'archive-7']) cluster.sim.crash(id);
    const { source, refused, fetches } = boundedSource(cluster);
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey);
    expect(discovery.versions).toHaveLength(1);
    const fetcher = new BlockFetcher(crypto, source, { k, m, ...defaultBlockFetcherOptions });
    const restored = new Map<string, Uint8Array>();
    const report = await restoreVersions(fetcher, discovery.versions, (r) => void restored.set(`${toHex(r.ref.aguid)}@${r.ref.version}`, r.bytes));
    expect(refused).toEqual([]);
    expect(report.failed).toEqual([]);
    // (bytesEqual: toEqual on 4 MiB of bytes takes vitest ~15 s)
    const expected = expectedContent(history);
    expect([...restored.keys()]).toEqual([...expected.keys()]);
    for (const [key, bytes] of restored) expect(bytesEqual(bytes, expected.get(key)!)).toBe(true);
    // The leaves' batch took several replies per server (64 x 16 KiB does not fit in 192 KiB).
    expect(fetches.count).toBeGreaterThan(4 * 3);
  });

  it('a server stops a reply at its budget, leaves out the rest and reads nothing past it; the first block is always in', () => {
    const cluster = new SimArchive({ seed: 44, crypto, archiveServerCount: 8, ringServerCount: 4, k, m, server: { fetchReplyBytesMax: 40 * 1024 } });
    const history = makeHistory(44, 1, 1, 16 * 64 * 1024, 64 * 1024);
    archiveAll(cluster, history);
    const server = cluster.server('archive-0')!;
    const held = history.versions[0]!.newBlocks.filter((b) => server.fragments.heldOf(b.bguid).length > 0).map((b) => b.bguid);
    expect(held.length).toBeGreaterThan(3);
    const reply = server.onMessage('restore-client', { type: 'fetch', requestId: 1, bguids: held }, cluster.sim.nowMs).find((e) => e.kind === 'send');
    expect(reply?.kind === 'send' && reply.message.type).toBe('fetchReply');
    const blocks = reply?.kind === 'send' && reply.message.type === 'fetchReply' ? reply.message.blocks : [];
    expect(blocks.length).toBeGreaterThan(0);
    expect(blocks.length).toBeLessThan(held.length);
    expect(blocks.map((b) => toHex(b.bguid))).toEqual(held.slice(0, blocks.length).map(toHex));
    expect(blocks.flatMap((b) => b.fragments).reduce((a, f) => a + f.length, 0)).toBeLessThanOrEqual(40 * 1024);
  });

  it('the default budget leaves room under the message bound for 256 blocks\' certificates and framing', () => {
    const L = archiveLimits;
    const framing = L.fetchBguidsMax * (L.certificateBytesMax + 2 * 32 + 16) + L.fetchBguidsMax * L.fragmentsPerReplyMax * 5 + 64;
    expect(L.fetchReplyBytesMax + framing).toBeLessThan(L.messageBytesMax);
    expect(L.fragmentBytesMax).toBeLessThan(L.fetchReplyBytesMax); // the first block always gets a fragment in
  });
});
