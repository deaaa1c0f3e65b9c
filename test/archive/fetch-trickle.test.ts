/**
 * A faulty archive server answering every fetch with only one of the blocks asked (the rest "left
 * out", as if its reply budget were spent) kept the fetcher's ask-again loop going one round trip
 * per block (second review, finding 2): 256 leaves took 164 fetches to it (7 when it answers all),
 * each a round trip in series. Now a server is asked again only while its replies carry at least
 * half the fragment bytes of the fullest reply seen, and one that does not is asked last after.
 * Counted in fetches, not timed.
 */
import { describe, expect, it } from 'vitest';
import type { ArchiveMessage } from '../../archive/messages.ts';
import type { ArchiveSource } from '../../archive/shell/archive-source.ts';
import { archiveAll, expectedContent, makeCluster, makeHistory, restoreEverything } from './sim-helpers.ts';

const delayMs = 20; // its replies come after the honest servers' (stands for "just under the request timeout")

function source(cluster: ReturnType<typeof makeCluster>, faulty: string | null, trickle: boolean) {
  const inner = cluster.source();
  const counts = { faultyFetches: 0, allFetches: 0 };
  const s: ArchiveSource = {
    servers: inner.servers,
    request: async (server: string, message: ArchiveMessage) => {
      const reply = await inner.request(server, message);
      if (message.type !== 'fetch') return reply;
      counts.allFetches++;
      if (server !== faulty || !reply || reply.type !== 'fetchReply') return reply;
      counts.faultyFetches++;
      await new Promise((r) => setTimeout(r, delayMs));
      return trickle ? { ...reply, blocks: reply.blocks.slice(0, 1) } : reply;
    },
  };
  return { s, counts };
}

async function restoreWith(faulty: string | null, trickle: boolean) {
  const cluster = makeCluster(71);
  const history = makeHistory(71, 1, 1, 256 * 4096, 4096); // one version, 256 leaves
  archiveAll(cluster, history);
  const { s, counts } = source(cluster, faulty, trickle);
  const { report, restored } = await restoreEverything(cluster, history, s);
  expect(report.failed).toEqual([]);
  expect(restored).toEqual(expectedContent(history));
  return counts;
}

describe('fetch ask-again loop and a trickling server', () => {
  it('one server answering one block per reply is asked again a bounded number of times, and the version restores', async () => {
    const answering = await restoreWith('archive-5', false);
    const trickle = await restoreWith('archive-5', true);
    expect(trickle.faultyFetches).toBeLessThanOrEqual(2 * answering.faultyFetches + 3);
    expect(trickle.allFetches).toBeLessThanOrEqual(2 * answering.allFetches + 3);
  });
});
