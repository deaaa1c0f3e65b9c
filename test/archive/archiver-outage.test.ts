/**
 * The archiver and an archive outage (second archive review, finding 4): a block whose stores were
 * lost while every archive server was unreachable is retried until receipts cover all k + m
 * fragments; its queue entry (q/) stays until then.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { Archiver } from '../../archive/archiver.ts';
import type { ArchiverOutput } from '../../archive/archiver-types.ts';
import type { ArchiveMessage } from '../../archive/messages.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { fakeCrypto as crypto } from '../../sim/fake-crypto.ts';
import { Prng } from '../../sim/prng.ts';

const k = 4;
const m = 4;
const archiveServers = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
const secrets = new Map(archiveServers.map((s, i) => [s, new Prng(100 + i).bytes(32)]));
const keys = new Map(archiveServers.map((s) => [s, crypto.ed25519PublicKey(secrets.get(s)!)]));

/** Archives one block with every message lost until `outageMs`; runs until the job ends or `timeMsMax`. */
function archiveThroughOutage(outageMs: number, timeMsMax: number) {
  const servers = new Map(archiveServers.map((id) => [id, new ArchiveServer({ nodeId: id, store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 }, {
    crypto, signer: signerOf(crypto, secrets.get(id)!), archiveServers, ringServers: ['ring-0'], coding: { k, m }, ...defaultArchiveTiming, repair: defaultRepairOptions,
  })]));
  const ringStore = new MemoryKvStore();
  const block = new Prng(5).bytes(4096);
  const bguid = crypto.sha256([block]);
  // The ring server's settings (runtime/object-roles.ts), one ring server.
  const archiver = new Archiver({ nodeId: 'ring-0', store: ringStore, random: new Prng(2), nowMs: 0 }, {
    crypto, ringServers: ['ring-0'], archiveServers, archiveServerKeys: keys, k, m, fallbackTimeoutMs: 2_000, fallbackRanksMax: 0,
    storeTimeoutMs: 5_000, attemptsMax: 10, blockBytesOf: () => block, stepBytesMax: 2 ** 20, inFlightBytesMax: 32 * 2 ** 20,
  });
  const outputs: ArchiverOutput[] = [];
  const queue: { from: string; to: string; message: ArchiveMessage }[] = [];
  const trace: { atMs: number; queued: number; stalled: number }[] = [];
  let now = 0;
  const push = (from: string, effects: Effect<ArchiveMessage, unknown>[]) => {
    for (const e of effects) {
      if (e.kind === 'send' && now >= outageMs) queue.push({ from, to: e.to, message: e.message });
      else if (e.kind === 'output' && from === 'ring-0') outputs.push(e.event as ArchiverOutput);
    }
  };
  push('ring-0', archiver.archive([{ bguid, byteLength: block.length }], null, null, 0));
  for (; now < timeMsMax && archiver.pendingCount() > 0; now += 100) {
    push('ring-0', archiver.onTick(now));
    while (queue.length > 0) {
      const q = queue.shift()!;
      if (q.to === 'ring-0') push('ring-0', archiver.onMessage(q.from, q.message, now));
      else push(q.to, servers.get(q.to)!.onMessage(q.from, q.message, now));
    }
    if (now % 10_000 === 0) trace.push({ atMs: now, queued: ringStore.keys('q/').length, stalled: archiver.stalledCount() });
  }
  const held = archiveServers.reduce((sum, id) => sum + servers.get(id)!.fragments.heldOf(bguid).length, 0);
  return { outputs, held, trace, queuedAfter: ringStore.keys('q/').length };
}

describe('archiver and an archive outage', () => {
  it('still archives a block whose first stores were lost during a 6 s outage', () => {
    const run = archiveThroughOutage(6_000, 120_000);
    expect(run.outputs.map((o) => o.kind)).toEqual(['archived']);
    expect(run.held).toBe(k + m);
    expect(run.queuedAfter).toBe(0);
  });

  it('keeps a block queued through an outage longer than its attempts, reports it stalled once, and archives it afterwards', () => {
    // 10 attempts at 5 s doubling to 80 s end after ~9 minutes; the archive is back at 15 minutes.
    const run = archiveThroughOutage(15 * 60_000, 30 * 60_000);
    expect(run.outputs.map((o) => o.kind)).toEqual(['incomplete', 'archived']);
    expect(run.held).toBe(k + m);
    expect(run.trace.filter((t) => t.atMs >= 60_000 && t.atMs < 15 * 60_000).every((t) => t.queued === 1)).toBe(true);
    expect(run.trace.some((t) => t.stalled === 1)).toBe(true);
    expect(run.queuedAfter).toBe(0);
  });
});
