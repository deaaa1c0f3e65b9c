/**
 * How a secondary replica checks one pushed certified update (Pond, FAST 2003: secondaries apply
 * the ring's certified updates and check the result against the certificate): each rule, each
 * forgery, and that a rejected entry changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { BlockCache } from '../../replica/block-cache.ts';
import type { LogEntry } from '../../replica/messages.ts';
import { ObjectCopy, type OfferResult } from '../../replica/object-copy.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, certify, testObject, type HistoryVersion, type TestObject } from './test-ring.ts';

const crypto = nodeCrypto;
let signer: TestRingSigner;
let object: TestObject;
let history: HistoryVersion[];
let other: HistoryVersion[]; // same ring and writer, another object

beforeAll(() => {
  signer = new TestRingSigner(crypto, 'fake', 5);
  object = testObject(crypto, 'core', 5);
  history = buildHistory(crypto, signer, object, { versionCount: 8, referenceEvery: 3, seed: 5 });
  other = buildHistory(crypto, signer, testObject(crypto, 'core', 6), { versionCount: 3, seed: 6 });
});

function freshCopy(cacheBytesMax = 16 * 1024 * 1024): { copy: ObjectCopy; accepted: number[] } {
  const accepted: number[] = [];
  const copy = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, cacheBytesMax), { pendingEntriesMax: 16, pendingBytesMax: 1 << 30, logEntriesMax: 1000, logBytesMax: 1 << 30 }, (a) => accepted.push(a.version));
  return { copy, accepted };
}

function expectBad(result: OfferResult, reason: string): void {
  expect(result.kind).toBe('bad');
  if (result.kind === 'bad') expect(result.reason).toBe(reason);
}

describe('ObjectCopy.offer', () => {
  it('accepts the certified history in order and ends at the ring head', () => {
    const { copy, accepted } = freshCopy();
    for (const h of history) expect(copy.offer(h.entry, 'p').kind).toBe('accepted');
    expect(accepted).toEqual(history.map((h) => h.version));
    expect(bytesEqual(copy.head!.vguid, history[7]!.vguid)).toBe(true);
  });

  it('buffers early versions and applies them, in order, once the gap is filled (reordering costs no gap)', () => {
    const { copy, accepted } = freshCopy();
    expect(copy.offer(history[2]!.entry, 'p').kind).toBe('future');
    expect(copy.offer(history[1]!.entry, 'p').kind).toBe('future');
    expect(copy.knownVersion).toBe(2);
    const result = copy.offer(history[0]!.entry, 'p');
    expect(result.kind === 'accepted' && result.entries.length).toBe(3);
    expect(accepted).toEqual([0, 1, 2]);
  });

  it('bounds early versions by count and bytes; what was not kept is simply fetched again later', () => {
    const entryBytes = history[2]!.entry.update.length + history[2]!.entry.certificate.length;
    const copy = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 1 << 24), { pendingEntriesMax: 10, pendingBytesMax: 2 * entryBytes + 10, logEntriesMax: 100, logBytesMax: 1 << 30 }, () => {});
    for (const h of history.slice(2)) expect(copy.offer(h.entry, 'p').kind).toBe('future');
    expect(copy.pendingCount).toBe(2);
    copy.offer(history[0]!.entry, 'p');
    const result = copy.offer(history[1]!.entry, 'p');
    expect(result.kind === 'accepted' && result.entries.length).toBe(3);
    expect(copy.head!.version).toBe(3);
  });

  it('ignores a version it already holds', () => {
    const { copy } = freshCopy();
    copy.offer(history[0]!.entry, 'p');
    expect(copy.offer(history[0]!.entry, 'p').kind).toBe('duplicate');
    expect(copy.log.length).toBe(1);
  });

  describe('rejects every forgery and stays unchanged', () => {
    const atVersion2 = (): ObjectCopy => {
      const { copy } = freshCopy();
      copy.offer(history[0]!.entry, 'p');
      copy.offer(history[1]!.entry, 'p');
      return copy;
    };
    const check = (forged: LogEntry, reason: string): void => {
      const copy = atVersion2();
      const before = copy.head!;
      expectBad(copy.offer(forged, 'liar'), reason);
      expect(copy.head).toBe(before);
      expect(copy.log.length).toBe(2);
    };
    const next = (): LogEntry => history[2]!.entry;

    it('a corrupted certificate', () => {
      const certificate = next().certificate.slice();
      certificate[certificate.length - 5]! ^= 1;
      check({ ...next(), certificate }, 'certificate');
    });
    it('another update under the real certificate (digest mismatch)', () => check({ ...next(), update: history[3]!.entry.update }, 'update-digest'));
    it("another object's certificate", () => check({ ...other[2]!.entry }, 'wrong-object'));
    it('an abort certificate presented as a commit', () => {
      const [certificate] = certify(crypto, signer, 900, [
        { aguid: object.aguid, version: 2, vguid: history[2]!.vguid, updateDigest: object.executor.digest(next().update)!, timestampMs: 2, outcome: 'abort' },
      ]);
      check({ ...next(), certificate: certificate! }, 'certificate');
    });
    it('a withheld referenced block: the copy asks for it, ignores wrong bytes, and gives up on the sender when it says it has none', () => {
      // Version 4 references an uploaded block; bring the copy to version 3 first.
      const { copy } = freshCopy();
      for (const h of history.slice(0, 4)) copy.offer(h.entry, 'p');
      expect(history[4]!.entry.blocks.length).toBe(1);
      const wanted = object.executor.references(history[4]!.entry.update);
      expect(copy.offer({ ...history[4]!.entry, blocks: [] }, 'liar').kind).toBe('awaiting-blocks');
      expect(copy.blocksToFetch(10)).toEqual({ from: 'liar', bguids: wanted });
      expect(copy.offerBlocks([new Prng(1).bytes(4096)], [], 'liar')?.kind).toBe('awaiting-blocks');
      expect(copy.offerBlocks([history[4]!.entry.blocks[0]!], [], 'someone-else')).toBeNull();
      expectBad(copy.offerBlocks([], wanted, 'liar')!, 'blocks-absent');
      expect(copy.head!.version).toBe(3);
      expect(copy.blocksToFetch(10)).toBeNull();
    });
    it('a certificate whose VGUID re-execution does not reproduce', () => {
      // Only the ring can sign, so this is the check that catches a ring/replica divergence.
      const [certificate] = certify(crypto, signer, 901, [
        { aguid: object.aguid, version: 2, vguid: history[3]!.vguid, updateDigest: object.executor.digest(next().update)!, timestampMs: history[2]!.timestampMs },
      ]);
      check({ ...next(), certificate: certificate! }, 'vguid-mismatch');
    });
    it('a second certificate for a version already held (equivocation)', () => {
      const copy = atVersion2();
      const [certificate] = certify(crypto, signer, 902, [
        { aguid: object.aguid, version: 1, vguid: history[3]!.vguid, updateDigest: object.executor.digest(history[1]!.entry.update)!, timestampMs: 1 },
      ]);
      expectBad(copy.offer({ ...history[1]!.entry, certificate: certificate! }, 'liar'), 'conflicting-certificate');
    });
  });

  it('an entry that came as block references is applied once its blocks arrive, and forwarded whole', () => {
    const { copy, accepted } = freshCopy();
    for (const h of history.slice(0, 4)) copy.offer(h.entry, 'p');
    const thin = { ...history[4]!.entry, blocks: [] };
    expect(copy.offer(thin, 'p').kind).toBe('awaiting-blocks');
    expect(copy.knownVersion).toBe(4);
    // A later version waits behind it; both go through once the block arrives.
    expect(copy.offer(history[5]!.entry, 'p').kind).toBe('future');
    const result = copy.offerBlocks(history[4]!.entry.blocks, [], 'p');
    expect(result?.kind).toBe('accepted');
    if (result?.kind === 'accepted') {
      expect(result.entries.map((e) => e.blocks.length)).toEqual([1, history[5]!.entry.blocks.length]);
      expect(bytesEqual(result.entries[0]!.blocks[0]!, history[4]!.entry.blocks[0]!)).toBe(true);
    }
    expect(accepted).toEqual([0, 1, 2, 3, 4, 5]);
    expect(bytesEqual(copy.head!.vguid, history[5]!.vguid)).toBe(true);
  });

  it('blocks fetched before a parent change are kept: the next parent is asked only for the rest', () => {
    // A large snapshot has many leaves: fetch some, change parent, offer it again.
    const source = freshCopy().copy;
    for (const h of history) source.offer(h.entry, 'p');
    const good = source.snapshot()!;
    const leaves = good.blocks.filter((b) => b.kind === 'data').map((b) => b.bytes);
    const { copy } = freshCopy();
    expect(copy.installSnapshot({ ...good, blocks: good.blocks.filter((b) => b.kind !== 'data') }, 'p').kind).toBe('awaiting-blocks');
    const before = copy.missingBlockCount;
    expect(copy.offerBlocks(leaves.slice(0, 2), [], 'p')?.kind).toBe('awaiting-blocks');
    copy.clearPending(); // the member re-parents
    expect(copy.installSnapshot({ ...good, blocks: good.blocks.filter((b) => b.kind !== 'data') }, 'q').kind).toBe('awaiting-blocks');
    expect(copy.missingBlockCount).toBe(before - new Set(leaves.slice(0, 2).map((b) => Buffer.from(b).toString('hex'))).size);
    expect(copy.offerBlocks(leaves, [], 'q')?.kind).toBe('accepted');
    expect(copy.head!.version).toBe(7);
  });

  it('keeps only referenced blocks that are part of the version: padding from a liar is not stored in the log', () => {
    const { copy } = freshCopy();
    const padded = { ...history[0]!.entry, blocks: [new Prng(2).bytes(100)] };
    expect(copy.offer(padded, 'p').kind).toBe('accepted');
    expect(copy.log.get(0)!.references).toEqual([]);
    for (const h of history.slice(1, 5)) copy.offer(h.entry, 'p');
    expect(copy.log.get(4)!.references.length).toBe(1);
  });

  describe('snapshots (catch-up when the parent can no longer replay)', () => {
    const source = (): ObjectCopy => {
      const { copy } = freshCopy();
      for (const h of history) copy.offer(h.entry, 'p');
      return copy;
    };

    it('installs a parent snapshot of the head: certified, complete, and then follows by replay', () => {
      const snapshot = (() => {
        const { copy } = freshCopy();
        for (const h of history.slice(0, 6)) copy.offer(h.entry, 'p');
        return copy.snapshot()!;
      })();
      const { copy, accepted } = freshCopy();
      expect(copy.installSnapshot(snapshot, 'p').kind).toBe('accepted');
      expect(copy.head!.version).toBe(5);
      expect(bytesEqual(copy.head!.vguid, history[5]!.vguid)).toBe(true);
      expect(copy.log.firstVersion).toBe(5);
      expect(accepted).toEqual([5]);
      // It cannot replay version 5 to a child (it never had the update), so it would snapshot too.
      expect(copy.entriesFrom(5, 10, 1 << 20)).toBeNull();
      expect(copy.offer(history[6]!.entry, 'p').kind).toBe('accepted');
      expect(copy.entriesFrom(6, 10, 1 << 20)).toHaveLength(1);
    });

    it('a member with a bounded log replays recent versions and snapshots older ones', () => {
      const accepted: number[] = [];
      const copy = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 1 << 24), { pendingEntriesMax: 4, pendingBytesMax: 1 << 30, logEntriesMax: 3, logBytesMax: 1 << 30 }, (a) =>
        accepted.push(a.version),
      );
      for (const h of history) copy.offer(h.entry, 'p');
      expect(copy.log.firstVersion).toBe(5);
      expect(copy.entriesFrom(4, 10, 1 << 20)).toBeNull();
      expect(copy.entriesFrom(5, 10, 1 << 20)).toHaveLength(3);
      // Same bytes (the copy keeps its own copy: msgpackr tags an array it decoded with a dataView, so toEqual would differ).
      expect(bytesEqual(copy.snapshot()!.certificate, history[7]!.entry.certificate)).toBe(true);
    });

    it('keeps the log within logBytesMax (oldest first), always keeping the head', () => {
      const copy = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 1 << 24), { pendingEntriesMax: 4, pendingBytesMax: 1 << 30, logEntriesMax: 100, logBytesMax: 4000 }, () => {});
      for (const h of history) copy.offer(h.entry, 'p');
      expect(copy.logBytes).toBeLessThanOrEqual(4000);
      expect(copy.log.length).toBeGreaterThanOrEqual(1);
      expect(copy.log.length).toBeLessThan(history.length);
      const tiny = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 1 << 24), { pendingEntriesMax: 4, pendingBytesMax: 1 << 30, logEntriesMax: 100, logBytesMax: 1 }, () => {});
      for (const h of history) tiny.offer(h.entry, 'p');
      expect(tiny.log.length).toBe(1);
      expect(tiny.log.firstVersion).toBe(7);
    });

    it('a large snapshot without its data blocks: the copy fetches the leaves it lacks by BGUID, then installs it', () => {
      const good = source().snapshot()!;
      const withoutData = { ...good, blocks: good.blocks.filter((b) => b.kind !== 'data') };
      const { copy, accepted } = freshCopy();
      expect(copy.installSnapshot(withoutData, 'p').kind).toBe('awaiting-blocks');
      const wanted = copy.blocksToFetch(1000)!;
      const dataBlocks = good.blocks.filter((b) => b.kind === 'data').map((b) => b.bytes);
      expect(wanted.bguids.length).toBe(new Set(dataBlocks.map((b) => Buffer.from(crypto.sha256([b])).toString('hex'))).size);
      // An early entry waits behind the snapshot; wrong bytes are ignored; then the real leaves.
      expect(copy.offerBlocks([new Prng(3).bytes(100)], [], 'p')?.kind).toBe('awaiting-blocks');
      const result = copy.offerBlocks(dataBlocks, [], 'p');
      expect(result?.kind).toBe('accepted');
      expect(copy.head!.version).toBe(7);
      expect(bytesEqual(copy.head!.vguid, history[7]!.vguid)).toBe(true);
      expect(accepted).toEqual([7]);
    });

    it('a snapshot whose sender says it lacks a leaf is given up; the copy stays empty', () => {
      const good = source().snapshot()!;
      const { copy } = freshCopy();
      expect(copy.installSnapshot({ ...good, blocks: good.blocks.filter((b) => b.kind !== 'data') }, 'liar').kind).toBe('awaiting-blocks');
      expectBad(copy.offerBlocks([], copy.blocksToFetch(1000)!.bguids, 'liar')!, 'blocks-absent');
      expect(copy.head).toBeNull();
    });

    it('rejects a snapshot with a forged certificate, a missing root block or a corrupted root or interior block', () => {
      const good = source().snapshot()!;
      const certificate = good.certificate.slice();
      certificate[certificate.length - 3]! ^= 1;
      expectBad(freshCopy().copy.installSnapshot({ ...good, certificate }, 'liar'), 'certificate');
      expectBad(freshCopy().copy.installSnapshot({ ...good, blocks: good.blocks.slice(1) }, 'liar'), 'incomplete-snapshot');
      // A corrupted root or interior block hashes to nothing the certificate names: the tree cannot
      // even be walked. (A corrupted leaf is simply missing: fetched by BGUID, as above.)
      for (const kind of ['root', 'interior'] as const) {
        const at = good.blocks.findIndex((b) => b.kind === kind);
        expect(at, kind).toBeGreaterThanOrEqual(0);
        const corrupted = good.blocks.map((b, i) => (i === at ? { ...b, bytes: b.bytes.map((x, j) => (j === 0 ? x ^ 1 : x)) } : b));
        const copy = freshCopy().copy;
        expectBad(copy.installSnapshot({ ...good, blocks: corrupted }, 'liar'), 'incomplete-snapshot');
        expect(copy.head).toBeNull();
      }
    });
  });
});
