/**
 * The archiver works in bounded steps (so a ring server's event loop is never held for long while
 * a large version is archived) without changing what ends up in the archive, and a restarted
 * archiver resumes the blocks it had not finished. One archiver and eight archive server cores,
 * messages delivered in order in this process; the archiver's `continue` to itself is delivered
 * like any other message, as the runtime host does on a later event-loop turn.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { signerOf } from '../../core/crypto.ts';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { Archiver } from '../../archive/archiver.ts';
import type { ArchiverOptions, BlockToArchive } from '../../archive/archiver-types.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { SlicedArchiver, type ArchiveGathering, type ArchiverWireMessage } from '../../archive/shell/archive-binding.ts';
import { Prng } from '../../sim/prng.ts';
import { crypto, k, m } from './sim-helpers.ts';

const archiveServers = Array.from({ length: 8 }, (_, i) => `archive-${i}`);
const secrets = new Map(archiveServers.map((s, i) => [s, new Prng(100 + i).bytes(32)]));
const serverKeys = new Map(archiveServers.map((s) => [s, crypto.ed25519PublicKey(secrets.get(s)!)]));
const blockBytes = 64 * 1024;

function blocksOf(count: number, seed: number): BlockToArchive[] {
  const prng = new Prng(seed);
  return Array.from({ length: count }, () => {
    const bytes = prng.bytes(blockBytes);
    return { bguid: crypto.sha256([bytes]), bytes };
  });
}

class Harness {
  readonly servers = new Map<string, ArchiveServer>();
  readonly stores = new Map<string, MemoryKvStore>();
  queue: { from: string; to: string; message: ArchiverWireMessage }[] = [];
  /** Block bytes coded by each archiver step. */
  readonly stepBytes: number[] = [];
  inFlightBytesMax = 0;
  archiver!: Archiver;
  sliced!: SlicedArchiver;
  nowMs = 0;

  constructor(
    readonly options: Partial<ArchiverOptions>,
    readonly ringStore = new MemoryKvStore(),
    readonly gathering?: ArchiveGathering,
  ) {
    for (const id of archiveServers) {
      const store = new MemoryKvStore();
      this.stores.set(id, store);
      this.servers.set(
        id,
        new ArchiveServer({ nodeId: id, store, random: new Prng(1), nowMs: 0 }, {
          crypto, signer: signerOf(crypto, secrets.get(id)!), archiveServers, ringServers: ['ring-0'], coding: { k, m }, ...defaultArchiveTiming, repair: defaultRepairOptions,
        }),
      );
    }
    this.boot();
  }

  /** (Re)builds the archiver from its store, as a restarted ring server does. */
  boot(): void {
    this.queue = this.queue.filter((q) => q.from !== 'ring-0' && q.to !== 'ring-0');
    this.archiver = new Archiver({ nodeId: 'ring-0', store: this.ringStore, random: new Prng(2), nowMs: this.nowMs }, {
      crypto, ringServers: ['ring-0'], archiveServers, archiveServerKeys: serverKeys, k, m,
      fallbackTimeoutMs: 1_000, fallbackRanksMax: 0, storeTimeoutMs: 5_000, attemptsMax: 5, ...this.options,
    });
    this.sliced = new SlicedArchiver(this.archiver, 'ring-0', this.gathering);
  }

  /** One step of the archiver, recording how many bytes it coded. */
  step(run: () => Effect<ArchiverWireMessage, unknown>[]): void {
    const before = this.archiver.counters.encodedBytes;
    const effects = run();
    this.stepBytes.push(this.archiver.counters.encodedBytes - before);
    this.inFlightBytesMax = Math.max(this.inFlightBytesMax, this.archiver.inFlightByteCount());
    this.push('ring-0', effects);
  }

  push(from: string, effects: Effect<ArchiverWireMessage, unknown>[]): void {
    for (const e of effects) if (e.kind === 'send') this.queue.push({ from, to: e.to, message: e.message });
  }

  /** Delivers messages in order (at most `deliveriesMax`); ticks when the queue runs dry. */
  run(deliveriesMax: number, until: () => boolean = () => this.archiver.pendingCount() === 0): void {
    for (let i = 0; i < deliveriesMax && !until(); i++) {
      const next = this.queue.shift();
      if (!next) {
        this.nowMs += 100;
        this.step(() => this.sliced.onTick(this.nowMs));
        continue;
      }
      if (next.to === 'ring-0') this.step(() => this.sliced.onMessage(next.from, next.message, this.nowMs));
      else if (next.message.type !== 'continue') this.push(next.to, this.servers.get(next.to)!.onMessage(next.from, next.message, this.nowMs));
    }
  }

  /** Every fragment key on every archive server (bguid, fragment root, index), sorted. */
  fragmentKeys(): string[] {
    return archiveServers.flatMap((id) => this.stores.get(id)!.keys('f/').map((key) => `${id}:${key}`)).sort();
  }
}

const seed = (blocks: BlockToArchive[]): number => blocks[0]!.bytes[0]!;

describe('archiver steps', () => {
  it('codes at most stepBytesMax per step, keeps in-flight bytes bounded, and stores exactly what an unbounded archiver stores', () => {
    const blocks = blocksOf(24, 1);
    const sliced = new Harness({ stepBytesMax: 2 * blockBytes, inFlightBytesMax: 4 * blockBytes });
    sliced.step(() => sliced.archiver.archive(blocks, blocks[0]!.bguid, Uint8Array.of(1, 2, 3), sliced.nowMs));
    expect(sliced.archiver.ready()).toBe(true);
    sliced.run(10_000);
    expect(sliced.archiver.pendingCount()).toBe(0);
    expect(sliced.archiver.counters.archived).toBe(blocks.length);
    expect(Math.max(...sliced.stepBytes)).toBeLessThanOrEqual(2 * blockBytes);
    expect(sliced.stepBytes.filter((b) => b > 0).length).toBeGreaterThanOrEqual(blocks.length / 2);
    // A step starts coding only below the bound, so it can overshoot by at most one step.
    expect(sliced.inFlightBytesMax).toBeLessThanOrEqual(4 * blockBytes + 2 * blockBytes);

    const whole = new Harness({});
    whole.step(() => whole.archiver.archive(blocks, blocks[0]!.bguid, Uint8Array.of(1, 2, 3), whole.nowMs));
    expect(Math.max(...whole.stepBytes)).toBe(blocks.length * blockBytes); // the old behaviour: one step codes everything
    whole.run(10_000);
    expect(sliced.fragmentKeys()).toEqual(whole.fragmentKeys());
    expect(sliced.fragmentKeys()).toHaveLength(blocks.length * (k + m));
    // The certificate rides with the root block's fragments in both.
    const rootHex = toHex(blocks[0]!.bguid);
    for (const h of [sliced, whole]) expect(archiveServers.filter((id) => h.stores.get(id)!.get(`c/${rootHex}`)).length).toBe(k + m);
  });

  it('stores the versions committed between two ticks with one store message, so one receipt, per archive server', () => {
    // Pond §3.4 archives as a side effect of commit; at one small version per batch a store (and a
    // receipt signature to check) per version per server cost more than the coding itself.
    const h = new Harness({ stepBytesMax: 2 ** 20, inFlightBytesMax: 32 * 2 ** 20 });
    const versions = [3, 4, 5, 6].map((seed) => blocksOf(2, seed));
    for (const blocks of versions) h.sliced.enqueue(blocks, blocks[0]!.bguid, Uint8Array.of(seed(blocks)));
    const effects = h.sliced.onTick(100);
    const stores = effects.filter((e) => e.kind === 'send' && e.message.type === 'store');
    expect(stores).toHaveLength(archiveServers.length);
    expect(new Set(stores.map((e) => (e.kind === 'send' ? e.to : '')))).toEqual(new Set(archiveServers));
    h.push('ring-0', effects);
    h.run(10_000);
    expect(h.archiver.counters.archived).toBe(versions.length * 2);
    expect(h.archiver.counters.badReceipts).toBe(0);
    expect(h.fragmentKeys()).toHaveLength(versions.length * 2 * (k + m));
  });

  it('with a gather window, small versions from several ticks share one hand-over once the oldest has waited gatherMs; gatherBytes queued go at the next tick', () => {
    const h = new Harness({ stepBytesMax: 2 ** 20, inFlightBytesMax: 32 * 2 ** 20 }, new MemoryKvStore(), { gatherMs: 500, gatherBytes: 4 * blockBytes });
    const storesIn = (effects: Effect<ArchiverWireMessage, unknown>[]) => effects.filter((e) => e.kind === 'send' && e.message.type === 'store').length;
    const small = [7, 8, 9].map((s) => blocksOf(1, s));
    // Ticks every 100 ms; a small version arrives before each of the first three.
    const handedOver: number[] = [];
    for (let tick = 1; tick <= 7; tick++) {
      if (tick <= small.length) h.sliced.enqueue(small[tick - 1]!, small[tick - 1]![0]!.bguid, Uint8Array.of(tick));
      const effects = h.sliced.onTick(tick * 100);
      handedOver.push(storesIn(effects));
      h.push('ring-0', effects);
    }
    // First seen at 100 ms, handed over at 600 ms (the sixth tick): one store message per server for all three.
    expect(handedOver).toEqual([0, 0, 0, 0, 0, archiveServers.length, 0]);
    expect(h.sliced.queuedCount()).toBe(0);
    h.run(10_000);
    expect(h.archiver.counters.archived).toBe(3);
    expect(h.fragmentKeys()).toHaveLength(3 * (k + m));

    // A large version does not wait: the next tick hands it over.
    const large = blocksOf(4, 10);
    h.sliced.enqueue(large, large[0]!.bguid, Uint8Array.of(10));
    expect(storesIn(h.sliced.onTick(h.nowMs + 100))).toBe(archiveServers.length);
  });

  it('ranks the ring servers handed a version ahead of the others, so a block\'s rank 0 is one that has it', () => {
    // Only the f+1 certifiers learn a certificate and archive its version. Ranked over all n ring
    // servers, a block's rank 0 was often a server that never got it (n = 4, f = 1: half the
    // blocks), and each such block waited for a fallback rank's probe and store.
    const ringServers = ['ring-0', 'ring-1', 'ring-2', 'ring-3'];
    const archiverOf = (id: string) =>
      new Archiver({ nodeId: id, store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 }, {
        crypto, ringServers, archiveServers, archiveServerKeys: serverKeys, k, m,
        fallbackTimeoutMs: 1_000, fallbackRanksMax: 3, storeTimeoutMs: 5_000, attemptsMax: 5,
      });
    const archivers = new Map(ringServers.map((id) => [id, archiverOf(id)]));
    const handed = ['ring-3', 'ring-1'];
    let plainRankZeroElsewhere = 0;
    for (const { bguid } of blocksOf(64, 11)) {
      const ranks = ringServers.map((id) => archivers.get(id)!.rankOf(bguid, handed));
      expect([...ranks].sort()).toEqual([0, 1, 2, 3]);
      expect(new Set(handed.map((id) => ranks[ringServers.indexOf(id)]))).toEqual(new Set([0, 1]));
      // Among the two, the order is the block's rendezvous order (plain ranks), so the load spreads.
      const plain = ringServers.map((id) => archivers.get(id)!.rankOf(bguid));
      const [a, b] = handed.map((id) => plain[ringServers.indexOf(id)]!) as [number, number];
      expect(ranks[ringServers.indexOf('ring-3')]! < ranks[ringServers.indexOf('ring-1')]!).toBe(a < b);
      if (!handed.some((id) => plain[ringServers.indexOf(id)] === 0)) plainRankZeroElsewhere++;
    }
    expect(plainRankZeroElsewhere).toBeGreaterThan(10);
  });

  it('starts fallback ranks on a step boundary, so blocks handed over ticks apart share one probe per archive server', () => {
    const h = new Harness({ ringServers: ['ring-1', 'ring-0'], fallbackRanksMax: 1, fallbackTimeoutMs: 1_000, fallbackStartStepMs: 1_000 });
    const first = blocksOf(2, 12);
    const second = blocksOf(2, 13);
    const probeTicks: { at: number; probes: number }[] = [];
    for (let at = 100; at <= 3_000; at += 100) {
      // Handed to ring-1 (named first), ring-1 ranks first for every block: ring-0 is the fallback for all.
      if (at === 100) h.sliced.enqueue(first, first[0]!.bguid, Uint8Array.of(1), ['ring-1']);
      if (at === 400) h.sliced.enqueue(second, second[0]!.bguid, Uint8Array.of(2), ['ring-1']);
      const effects = h.sliced.onTick(at);
      const probes = effects.filter((e) => e.kind === 'send' && e.message.type === 'probe').length;
      if (probes > 0) probeTicks.push({ at, probes });
      expect(effects.filter((e) => e.kind === 'send' && e.message.type === 'store')).toHaveLength(0);
      h.nowMs = at;
    }
    // Due at 1,100 and 1,400 ms; both start at 2,000 ms with one probe per archive server.
    expect(probeTicks).toEqual([{ at: 2_000, probes: archiveServers.length }]);
  });

  it('a version waiting in the gather window survives a crash before its hand-over', () => {
    // Only the f+1 certifiers get a version; if they all restart inside the window, a version
    // held only in memory would never reach the archive.
    const versions = [14, 15].map((seed) => blocksOf(2, seed));
    const byHex = new Map(versions.flat().map((b) => [toHex(b.bguid), b.bytes]));
    const h = new Harness({ blockBytesOf: (bguid) => byHex.get(toHex(bguid)) }, new MemoryKvStore(), { gatherMs: 500, gatherBytes: 2 ** 20 });
    for (const blocks of versions) h.sliced.enqueue(blocks, blocks[0]!.bguid, Uint8Array.of(seed(blocks)));
    expect(h.sliced.onTick(100).filter((e) => e.kind === 'send')).toHaveLength(0);
    expect(h.ringStore.keys('q/')).toHaveLength(4);
    h.nowMs = 200;
    h.boot(); // crash inside the window: the queue was in memory only
    expect(h.archiver.counters.resumed).toBe(4);
    h.run(10_000);
    expect(h.archiver.pendingCount()).toBe(0);
    expect(h.ringStore.keys('q/')).toHaveLength(0);
    expect(h.fragmentKeys()).toHaveLength(4 * (k + m));
    // The root blocks' certificates were kept with them and stored beside their fragments.
    for (const blocks of versions) {
      const holders = archiveServers.filter((id) => h.stores.get(id)!.get(`c/${toHex(blocks[0]!.bguid)}`));
      expect(holders.length).toBe(k + m);
    }
    // Without a crash the hand-over takes them up and nothing stays kept once they are archived.
    const later = blocksOf(2, 16);
    for (const b of later) byHex.set(toHex(b.bguid), b.bytes);
    h.sliced.enqueue(later, later[0]!.bguid, Uint8Array.of(16));
    expect(h.ringStore.keys('q/')).toHaveLength(2);
    h.run(10_000, () => h.sliced.queuedCount() === 0 && h.archiver.pendingCount() === 0);
    expect(h.archiver.pendingCount()).toBe(0);
    expect(h.ringStore.keys('q/')).toHaveLength(0);
    expect(h.fragmentKeys()).toHaveLength(6 * (k + m));
  });

  it('sends itself continue only while coding is queued, and ignores a continue from anyone else', () => {
    const h = new Harness({ stepBytesMax: blockBytes, inFlightBytesMax: 64 * blockBytes });
    const effects = h.archiver.archive(blocksOf(3, 2), null, null, 0);
    expect(effects.filter((e) => e.kind === 'send').length).toBeGreaterThan(0);
    const tick = h.sliced.onTick(0);
    expect(tick.filter((e) => e.kind === 'send' && e.to === 'ring-0')).toHaveLength(1);
    expect(h.sliced.onMessage('archive-1', { type: 'continue' }, 0)).toEqual([]);
    const before = h.archiver.counters.encodedBytes;
    h.sliced.onMessage('ring-0', { type: 'continue' }, 0);
    expect(h.archiver.counters.encodedBytes - before).toBe(blockBytes);
  });

  it('a restarted archiver keeps the blocks it had not finished even when the ring changed and ranks it out of them', () => {
    const blocks = blocksOf(16, 4);
    const byHex = new Map(blocks.map((b) => [toHex(b.bguid), b.bytes]));
    const h = new Harness({ stepBytesMax: blockBytes, inFlightBytesMax: 2 * blockBytes, blockBytesOf: (bguid) => byHex.get(toHex(bguid)) });
    h.step(() => h.archiver.archive(blocks.map((b) => ({ bguid: b.bguid, byteLength: b.bytes.length })), null, null, 0));
    h.run(10_000, () => h.archiver.counters.archived >= 5);
    const left = h.archiver.pendingCount();
    expect(left).toBeGreaterThan(0);
    // The ring's list changed while it was down (a replaced member): with rank 0 only, it now ranks
    // first for about a quarter of the blocks. The others were its to archive and may have no one else.
    (h.options as { ringServers?: string[] }).ringServers = ['ring-0', 'spare-0', 'ring-1', 'ring-2'];
    h.nowMs += 1_000;
    h.boot();
    expect(h.archiver.counters.resumed).toBe(left);
    h.run(20_000);
    expect(h.archiver.pendingCount()).toBe(0);
    for (const b of blocks) {
      const indexes = archiveServers.flatMap((id) => h.stores.get(id)!.keys(`f/${toHex(b.bguid)}/`).map((key) => Number(key.slice(-3))));
      expect(new Set(indexes).size).toBe(k + m);
    }
  });

  it('a restarted archiver resumes the blocks it had not finished, re-reading them from the block store', () => {
    const blocks = blocksOf(16, 3);
    const byHex = new Map(blocks.map((b) => [toHex(b.bguid), b.bytes]));
    let storeOpen = true;
    const h = new Harness({ stepBytesMax: blockBytes, inFlightBytesMax: 2 * blockBytes, blockBytesOf: (bguid) => (storeOpen ? byHex.get(toHex(bguid)) : undefined) });
    // Only references: the archiver must not need the bytes up front.
    h.step(() => h.archiver.archive(blocks.map((b) => ({ bguid: b.bguid, byteLength: b.bytes.length })), null, null, 0));
    expect(h.ringStore.keys('q/')).toHaveLength(blocks.length);
    h.run(10_000, () => h.archiver.counters.archived >= 5);
    const left = h.archiver.pendingCount();
    expect(left).toBeGreaterThan(0);
    expect(h.ringStore.keys('q/')).toHaveLength(left);

    h.nowMs += 1_000;
    h.boot(); // crash: volatile state and messages in flight are gone
    expect(h.archiver.counters.resumed).toBe(left);
    // Right after the restart the block store is not open yet: the jobs wait for it, none is dropped.
    storeOpen = false;
    h.run(30, () => false);
    expect(h.archiver.counters.bytesMissing).toBeGreaterThan(0);
    expect(h.archiver.pendingCount()).toBe(left);
    storeOpen = true;
    h.run(20_000);
    expect(h.archiver.pendingCount()).toBe(0);
    expect(h.ringStore.keys('q/')).toHaveLength(0);
    for (const b of blocks) {
      const indexes = archiveServers.flatMap((id) => h.stores.get(id)!.keys(`f/${toHex(b.bguid)}/`).map((key) => Number(key.slice(-3))));
      expect(new Set(indexes).size).toBe(k + m);
    }
  });
});
