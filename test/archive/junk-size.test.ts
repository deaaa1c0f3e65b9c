/**
 * Junk encodings of the configured (k, m) were unbounded in size (second review, finding 3): an
 * archive server checked a record's shape and root but not its blockBytes against the 4 MiB block
 * bound, so one writer's junk root beside a 4 KiB block could carry fragments up to
 * fragmentBytesMax (16 MiB), and every restore pulled them (a 32 KiB version: 288 MiB received).
 */
import { describe, expect, it } from 'vitest';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { encodeArchiveMessage, type ArchiveMessage } from '../../archive/messages.ts';
import { blockBytesMax } from '../../core/version/block.ts';
import { archiveAll, crypto, expectedContent, k, m, makeCluster, makeHistory, restoreEverything } from './sim-helpers.ts';

describe('junk encodings over the block bound', () => {
  it('are refused, so a restore beside them receives about what it would without them', async () => {
    const cluster = makeCluster(121);
    const history = makeHistory(121, 1, 1, 8 * 4096, 4096);
    archiveAll(cluster, history);
    const junkBytes = new Uint8Array(blockBytesMax + 1);
    const reasons: string[] = [];
    for (const b of history.versions[0]!.newBlocks) {
      const junk = makeFragments(crypto, k, m, b.bguid, junkBytes);
      const items = junk.fragments.map((f) => ({ fragment: encodeFragment(f), fragmentRoot: junk.fragmentRoot, certificate: null }));
      for (const id of cluster.archiveServers) {
        for (const e of cluster.server(id)!.onMessage('ring-3', { type: 'store', requestId: 1, items }, cluster.sim.nowMs)) {
          if (e.kind === 'send') {
            expect(e.message.type).toBe('refused');
            if (e.message.type === 'refused') reasons.push(e.message.reason);
          }
        }
      }
    }
    expect(new Set(reasons)).toEqual(new Set([`size: a block is at most ${blockBytesMax} bytes, not ${blockBytesMax + 1}`]));

    const inner = cluster.source();
    let received = 0;
    const source = {
      servers: inner.servers,
      request: async (server: string, message: ArchiveMessage) => {
        const reply = await inner.request(server, message);
        if (reply) received += encodeArchiveMessage(reply).length;
        return reply;
      },
    };
    const { report, restored } = await restoreEverything(cluster, history, source);
    expect(report.failed).toEqual([]);
    expect(restored).toEqual(expectedContent(history));
    // Genuine fragments of a 32 KiB version plus framing, from every live server (measured ~0.2 MiB); with the junk accepted: 288 MiB.
    expect(received).toBeLessThan(2 ** 20);
  });
});
