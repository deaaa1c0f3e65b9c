/**
 * Repair tries the root it once decoded the block from first, junk roots after it (second review,
 * finding 4). When the remembered root's fetch came up short because holders were slow (the phase
 * ended on its deadline) and the junk root tried last failed to decode, nextRoot failed the block
 * at once with "cannot decode": the retry for a phase someone did not answer was skipped whenever
 * the last root tried carried a failure. Without the memo (junk first, genuine last) the same
 * slowness gave a retry and the block was repaired.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { archiveAll, crypto, makeCluster, makeHistory, runUntilChecked } from './sim-helpers.ts';

async function run(withMemo: boolean) {
  const cluster = makeCluster(61);
  const history = makeHistory(10, 1, 1);
  archiveAll(cluster, history);
  const block = history.versions[0]!.newBlocks[0]!;
  const genuine = makeFragments(crypto, 4, 4, block.bguid, block.bytes!);
  // archive-7 (faulty) stores one (4,4) junk encoding of the block on every other server.
  const junk = makeFragments(crypto, 4, 4, block.bguid, new Uint8Array([1, 2, 3]));
  const items = junk.fragments.map((f) => ({ fragment: encodeFragment(f), fragmentRoot: junk.fragmentRoot, certificate: null }));
  for (const id of cluster.archiveServers) if (id !== 'archive-7') cluster.server(id)!.onMessage('archive-7', { type: 'store', requestId: 1, items }, cluster.sim.nowMs);
  const me = cluster.server('archive-0')!;
  for (const id of cluster.archiveServers) if (id !== 'archive-0') (cluster.server(id)!.repairer as { onTick: unknown }).onTick = () => [];
  // archive-0 decodes the block once (a corruption report, say): it remembers the genuine root.
  me.repairer.enqueue(block.bguid, 'manual');
  runUntilChecked(cluster, () => me.repairer.queuedCount() === 0, 10_000);
  expect(toHex(me.repairer.verifiedRootOf(block.bguid)!)).toBe(toHex(genuine.fragmentRoot));
  if (!withMemo) cluster.sim.store('archive-0').delete(`r/v/${toHex(block.bguid)}`);
  // A genuine holder is lost, and for the next second four other holders are slow to answer fetches.
  const holders = cluster.archiveServers.filter((id) => id !== 'archive-0' && cluster.server(id)!.fragments.heldOf(block.bguid).some((h) => toHex(h.fragmentRoot) === toHex(genuine.fragmentRoot)));
  cluster.sim.crash(holders[0]!);
  const slowUntil = cluster.sim.nowMs + 1_000;
  for (const id of holders.slice(1, 5)) {
    const peer = cluster.server(id)!;
    const real = peer.onMessage.bind(peer);
    peer.onMessage = (from, message, nowMs) => (from === 'archive-0' && message.type === 'fetch' && nowMs < slowUntil ? [] : real(from, message, nowMs));
  }
  const before = cluster.outputs.length;
  me.repairer.enqueue(block.bguid, 'manual');
  runUntilChecked(cluster, () => me.repairer.queuedCount() === 0, 20_000);
  const events = cluster.outputs.slice(before).filter((o) => o.node === 'archive-0' && (o.event.kind === 'repaired' || o.event.kind === 'unrepairable'));
  return events.map((o) => (o.event.kind === 'unrepairable' ? `unrepairable: ${o.event.reason.slice(0, 60)}` : 'repaired'));
}

describe('verified root first, junk last', () => {
  it('a slow fetch under the remembered root is retried, not failed on the junk root\'s decode error', async () => {
    // The first report decides (a later pass may report the block repaired again); none may be a failure.
    for (const withMemo of [false, true]) {
      const reports = await run(withMemo);
      expect(reports[0]).toBe('repaired');
      expect(reports.filter((r) => r !== 'repaired')).toEqual([]);
    }
  });
});
