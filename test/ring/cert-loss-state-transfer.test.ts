/**
 * Acknowledged updates the ring never certified (runtime parameters, 2-5% message loss, whole-ring
 * crashes; wedge-sweep seeds). Every one is executed by 3-4 replicas, then each holder in turn takes
 * a state transfer (a lagging replica does, under loss every second or two), and a transfer
 * forgot every statement through its checkpoint (replica-checkpoints.ts onStateReply ->
 * resetBelow), the ones the replica executed itself below the skipped batches too; the last
 * holder's round is refused and skips them. Fixed by keeping them above a hole (skippedByTransfer,
 * ring/holes record), spans never crossing one (spanOf), and prefix shares (tryPrefix).
 *   97: one update; the rank-0 certifier itself transferred over it, backups transferred before
 *       their takeover, and later spans crossed every holder's hole (needs the prefix shares).
 *   67: the first round's share and the widened request were lost; the round waited a takeover
 *       period (3 s) while all three other holders transferred.
 *   21: the holders' kept statements must survive a second whole-ring crash (the holes record).
 */
import { expect, it } from 'vitest';
import { runWedge } from './wedge-harness.ts';
import { sweepOptions } from './wedge-options.ts';

for (const seed of [97, 67, 21]) {
  it(`seed ${seed}: statements executed before a state transfer are still certified`, () => {
    const res = runWedge({ ...sweepOptions(seed), log: () => {} });
    if (!res.ok) console.log(res.detail.split('\n')[0]);
    expect(res.ok).toBe(true);
  }, 60_000);
}
