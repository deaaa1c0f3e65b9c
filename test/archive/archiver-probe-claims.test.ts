/**
 * A fallback (or restarted) archiver and probe replies (second archive review, finding 6): a
 * server's claims count for at most its share of the placement, so one server claiming every
 * index cannot have a block reported archived with no receipt.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { Archiver } from '../../archive/archiver.ts';
import type { ArchiverOutput } from '../../archive/archiver-types.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import type { ArchiveMessage } from '../../archive/messages.ts';
import { placementOf, serverRingOf } from '../../archive/placement.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { fakeCrypto as crypto } from '../../sim/fake-crypto.ts';
import { Prng } from '../../sim/prng.ts';

const k = 4;
const m = 4;
const archiveServers = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
const secrets = new Map(archiveServers.map((s, i) => [s, new Prng(100 + i).bytes(32)]));
const keys = new Map(archiveServers.map((s) => [s, crypto.ed25519PublicKey(secrets.get(s)!)]));

describe('archiver fallback and probe claims', () => {
  it('does not report a block archived on one server claiming every index', () => {
    const servers = new Map(archiveServers.map((id) => [id, new ArchiveServer({ nodeId: id, store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 }, {
      crypto, signer: signerOf(crypto, secrets.get(id)!), archiveServers, ringServers: ['ring-0', 'ring-1'], coding: { k, m }, ...defaultArchiveTiming, repair: defaultRepairOptions,
    })]));
    const archiver = new Archiver({ nodeId: 'ring-1', store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 }, {
      crypto, ringServers: ['ring-0', 'ring-1'], archiveServers, archiveServerKeys: keys, k, m, fallbackTimeoutMs: 1000, fallbackRanksMax: 1, storeTimeoutMs: 1000, attemptsMax: 3,
    });
    // A block for which ring-1 is rank 1 (a fallback).
    let seed = 0;
    const blockOf = () => new Prng(seed).bytes(4096);
    while (archiver.rankOf(crypto.sha256([blockOf()])) !== 1) seed++;
    const block = blockOf();
    const bguid = crypto.sha256([block]);
    // Rank 0 (ring-0) crashed after storing only fragment 0 on its home server, which then claims every index.
    const set = makeFragments(crypto, k, m, bguid, block);
    const home0 = placementOf(serverRingOf(archiveServers), bguid, k + m)[0]!;
    const liar = servers.get(home0)!;
    liar.onMessage('ring-0', { type: 'store', requestId: 1, items: [{ fragment: encodeFragment(set.fragments[0]!), fragmentRoot: set.fragmentRoot, certificate: null }] }, 0);
    const real = liar.onMessage.bind(liar);
    liar.onMessage = (from, message, nowMs) =>
      real(from, message, nowMs).map((e) =>
        e.kind === 'send' && e.message.type === 'probeReply'
          ? { ...e, message: { ...e.message, held: e.message.held.flatMap((h) => Array.from({ length: k + m }, (_, index) => ({ ...h, index }))) } as ArchiveMessage }
          : e,
      );
    const outputs: ArchiverOutput[] = [];
    const queue: { from: string; to: string; message: ArchiveMessage }[] = [];
    const push = (from: string, effects: Effect<ArchiveMessage, unknown>[]) => {
      for (const e of effects) {
        if (e.kind === 'send') queue.push({ from, to: e.to, message: e.message });
        else if (e.kind === 'output' && from === 'ring-1') outputs.push(e.event as ArchiverOutput);
      }
    };
    push('ring-1', archiver.archive([{ bguid, bytes: block }], null, null, 0));
    for (let now = 0; now < 20_000 && archiver.pendingCount() > 0; now += 100) {
      push('ring-1', archiver.onTick(now));
      while (queue.length > 0) {
        const q = queue.shift()!;
        if (q.to === 'ring-1') push('ring-1', archiver.onMessage(q.from, q.message, now));
        else push(q.to, servers.get(q.to)!.onMessage(q.from, q.message, now));
      }
    }
    expect(outputs.map((o) => o.kind)).toEqual(['archived']);
    expect(outputs[0]).toMatchObject({ sentCount: k + m - 1 });
    const held = archiveServers.reduce((n, id) => n + servers.get(id)!.fragments.heldOf(bguid).length, 0);
    expect(held).toBe(k + m);
  });
});
