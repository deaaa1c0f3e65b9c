/**
 * Reads from a secondary replica (issue 8 "Reads"; Pond, FAST 2003: clients read from nearby
 * secondary replicas and check what they get). The member serves the certificate, the newest
 * heartbeat and the blocks from the VGUID down to the range; the reader verifies all of it and
 * honours maxAgeMs; anything the member alters fails verification.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes } from '../../core/bytes.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { ReplicaEffect } from '../../replica/events.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import { SecondaryReplica } from '../../replica/secondary.ts';
import { heartbeatIsNewer } from '../../replica/types.ts';
import { verifyReadReply } from '../../replica/verify-read.ts';
import { readVersionParts, readVersionRange, rootBlockOf } from '../../replica/version-walk.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, makeHeartbeat, testObject, type HistoryVersion, type TestObject } from './test-ring.ts';

const crypto = nodeCrypto;
let signer: TestRingSigner;
let object: TestObject;
let history: HistoryVersion[];
let ringBlocks: MemoryBlockStore;

type ReadRequest = Extract<TreeMessage, { type: 'read' }>;
type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

beforeAll(() => {
  signer = new TestRingSigner(crypto, 'fake', 7);
  object = testObject(crypto, 'core', 7);
  ringBlocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
  history = buildHistory(crypto, signer, object, { versionCount: 12, appendBytes: 3000, referenceEvery: 3, seed: 7, blocks: ringBlocks });
});

/** A member that followed the ring up to `upTo` and holds a heartbeat taken at `heartbeatMs`. */
function followingMember(upTo: number, heartbeatMs: number, cacheBytesMax = 16 * 1024 * 1024): SecondaryReplica {
  const member = new SecondaryReplica(
    { nodeId: 'replica-a', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax, subscriptions: [object.aguid] },
  );
  const sent = member.onTick(0);
  expect(sent.some((e) => e.kind === 'send' && e.to === 'ring-0' && e.message.type === 'attach')).toBe(true);
  member.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: history.length }, 1);
  member.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.slice(0, upTo + 1).map((h) => h.entry) }, 2);
  const heartbeat = makeHeartbeat(crypto, signer, object.aguid, history[upTo]!, heartbeatMs, 5000);
  member.onMessage('ring-0', { type: 'heartbeat', aguid: object.aguid, heartbeat }, 3);
  expect(member.copyOf(object.aguid)!.head!.version).toBe(upTo);
  return member;
}

function read(member: SecondaryReplica, request: Omit<ReadRequest, 'type' | 'aguid'> & { aguid?: Uint8Array }, nowMs: number): ReadReply {
  const full: ReadRequest = { type: 'read', aguid: object.aguid, ...request };
  const effects: ReplicaEffect[] = member.onMessage('client', full, nowMs);
  const reply = effects.find((e) => e.kind === 'send' && e.to === 'client');
  expect(reply?.kind === 'send' && reply.message.type === 'read-reply').toBe(true);
  return (reply as { message: ReadReply }).message;
}

const verifier = (): Parameters<typeof verifyReadReply>[0] => ({ crypto, trust: signer.trust(), executor: object.executor });

describe('secondary replica reads', () => {
  it('serves a 4 KiB range of the latest version that the reader verifies to the ring bytes', () => {
    const member = followingMember(11, 1000);
    const request: ReadRequest = { type: 'read', requestId: 1, aguid: object.aguid, version: null, offset: 5000, length: 4096, maxAgeMs: 0 };
    const reply = read(member, request, 1010);
    const check = verifyReadReply(verifier(), request, reply, 1010);
    expect(check.ok).toBe(true);
    const expected = readVersionRange(ringBlocks, history[11]!.vguid, 5000, 4096)!;
    if (check.ok) {
      expect(check.read.version).toBe(11);
      expect(bytesEqual(check.read.bytes, expected)).toBe(true);
    }
  });

  it('honours maxAgeMs: fresh enough is served and verified; too old is refused, and the reader also refuses it', () => {
    const member = followingMember(11, 1000);
    const fresh: ReadRequest = { type: 'read', requestId: 2, aguid: object.aguid, version: null, offset: 0, length: 100, maxAgeMs: 500 };
    const ok = read(member, fresh, 1400);
    expect(ok.status).toBe('ok');
    expect(verifyReadReply(verifier(), fresh, ok, 1400).ok).toBe(true);
    // The reader's clock says the heartbeat is too old even though the member thought otherwise.
    expect(verifyReadReply(verifier(), fresh, ok, 1600)).toEqual({ ok: false, reason: 'heartbeat too old', stale: true });
    expect(read(member, { ...fresh, requestId: 3 }, 1600).status).toBe('too-stale');
  });

  it('a member behind the newest heartbeat answers too-stale for fresh reads (the reader goes to the ring)', () => {
    const member = followingMember(5, 1000);
    const newer = makeHeartbeat(crypto, signer, object.aguid, history[9]!, 1200, 5001);
    member.onMessage('ring-0', { type: 'heartbeat', aguid: object.aguid, heartbeat: newer }, 1200);
    const request: ReadRequest = { type: 'read', requestId: 4, aguid: object.aguid, version: null, offset: 0, length: 10, maxAgeMs: 10_000 };
    expect(read(member, request, 1210).status).toBe('too-stale');
  });

  it('a heartbeat with the time of the one held and a newer version replaces it: fresh reads of the head are served', () => {
    const member = followingMember(5, 1000);
    member.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.slice(6, 10).map((h) => h.entry) }, 4);
    expect(member.copyOf(object.aguid)!.head!.version).toBe(9);
    // Execution held the clock back: the heartbeat naming version 9 carries the same timestamp.
    member.onMessage('ring-0', { type: 'heartbeat', aguid: object.aguid, heartbeat: makeHeartbeat(crypto, signer, object.aguid, history[9]!, 1000, 5001) }, 5);
    const request: ReadRequest = { type: 'read', requestId: 7, aguid: object.aguid, version: null, offset: 0, length: 10, maxAgeMs: 1000 };
    const reply = read(member, request, 1100);
    expect(reply.status).toBe('ok');
    const check = verifyReadReply(verifier(), request, reply, 1100);
    expect(check.ok && check.read.version).toBe(9); // before: the version-5 heartbeat was kept, and the reader refused the reply
    // The rule ring servers keep their newest heartbeat by, too (replica/ring-server-member.ts).
    expect(heartbeatIsNewer({ version: 5, timestampMs: 1000 }, { version: 9, timestampMs: 1000 })).toBe(true);
    expect(heartbeatIsNewer({ version: 9, timestampMs: 1000 }, { version: 9, timestampMs: 1000 })).toBe(false);
    expect(heartbeatIsNewer({ version: 9, timestampMs: 1000 }, { version: 5, timestampMs: 2000 })).toBe(false);
    expect(heartbeatIsNewer({ version: 9, timestampMs: 1000 }, { version: 9, timestampMs: 1001 })).toBe(true);
  });

  it('a metadata read (length 0) hashes only the reply\'s first root block: junk a member attaches costs the reader nothing', () => {
    const member = followingMember(11, 1000);
    const request: ReadRequest = { type: 'read', requestId: 6, aguid: object.aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 };
    const reply = read(member, request, 1001);
    let hashedBytes = 0;
    const counting = Object.create(crypto) as typeof crypto;
    counting.sha256 = (chunks) => {
      hashedBytes += chunks.reduce((n, c) => n + c.length, 0);
      return crypto.sha256(chunks);
    };
    const junk = Array.from({ length: 8 }, (_, i) => ({ kind: i % 2 === 0 ? ('data' as const) : ('root' as const), bytes: new Uint8Array(1 << 20).fill(i) }));
    const check = verifyReadReply({ ...verifier(), crypto: counting }, request, { ...reply, blocks: [...reply.blocks, ...junk] }, 1001);
    expect(check.ok).toBe(true);
    expect(hashedBytes).toBeLessThan(64 * 1024); // the root block (and the certificate's checks), not 8 MiB of junk
    // Junk in front of the root block fails the reply (an honest member sends the root first).
    expect(verifyReadReply(verifier(), request, { ...reply, blocks: [junk[1]!, ...reply.blocks] }, 1001).ok).toBe(false);
  });

  it('rejects replies a lying member altered: a data byte, an older certificate, a dropped block', () => {
    const member = followingMember(11, 1000);
    const request: ReadRequest = { type: 'read', requestId: 5, aguid: object.aguid, version: null, offset: 9000, length: 4096, maxAgeMs: 0 };
    const reply = read(member, request, 1001);
    expect(verifyReadReply(verifier(), request, reply, 1001).ok).toBe(true);
    const tampered = reply.blocks.map((b) => (b.kind === 'data' ? { ...b, bytes: b.bytes.map((x, i) => (i === 0 ? x ^ 1 : x)) } : b));
    expect(verifyReadReply(verifier(), request, { ...reply, blocks: tampered }, 1001).ok).toBe(false);
    expect(verifyReadReply(verifier(), request, { ...reply, blocks: reply.blocks.slice(0, -1) }, 1001).ok).toBe(false);
    // An older version's certificate does not name the blocks served (and with maxAgeMs the heartbeat would not match).
    const old = { ...reply, certificate: history[10]!.entry.certificate };
    expect(verifyReadReply(verifier(), request, old, 1001).ok).toBe(false);
    const fresh = { ...request, maxAgeMs: 1000 };
    const olderProof = read(member, { ...fresh, version: 10 }, 1001);
    expect(verifyReadReply(verifier(), fresh, olderProof, 1001)).toEqual({ ok: false, reason: 'not the latest version' });
  });

  it('serves an older version while its blocks are cached, and says not-cached once they are evicted', () => {
    const roomy = followingMember(11, 1000);
    const request: ReadRequest = { type: 'read', requestId: 6, aguid: object.aguid, version: 2, offset: 0, length: 2000, maxAgeMs: 0 };
    const reply = read(roomy, request, 1001);
    const check = verifyReadReply(verifier(), request, reply, 1001);
    expect(check.ok && bytesEqual(check.read.bytes, readVersionRange(ringBlocks, history[2]!.vguid, 0, 2000)!)).toBe(true);
    // A small cache keeps the head pinned but evicts the old version's replaced blocks.
    const tight = followingMember(11, 1000, 16 * 1024);
    expect(tight.cache.stats.evictedBlocks).toBeGreaterThan(0);
    expect(read(tight, { ...request, requestId: 7, offset: 0, length: 1 }, 1001).status).toBe('not-cached');
    expect(read(tight, { ...request, requestId: 8, version: null }, 1001).status).toBe('ok');
  });

  it('an unknown object answers unknown-object and the member subscribes (joins the tree at its next tick), durably once a first version arrives (and after a restart)', () => {
    const store = new MemoryKvStore();
    const config = { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax: 1 << 20 };
    const member = new SecondaryReplica({ nodeId: 'replica-b', store, random: new Prng(2), nowMs: 0 }, config);
    const aguid = object.aguid;
    expect(read(member, { requestId: 9, aguid, version: null, offset: 0, length: 1, maxAgeMs: 0 }, 1001).status).toBe('unknown-object');
    const joins = (m: SecondaryReplica, nowMs: number): boolean =>
      m.onTick(nowMs).some((e) => e.kind === 'send' && e.message.type === 'attach' && bytesEqual(e.message.aguid, aguid));
    expect(joins(member, 1100)).toBe(true);
    // Not written down yet: a read of a made-up AGUID must not be followed after a restart.
    expect([...store.keys('replica/sub/')]).toEqual([]);
    member.onMessage('ring-0', { type: 'attach-ok', aguid, path: ['ring-0'], nextVersion: history.length }, 1101);
    member.onMessage('ring-0', { type: 'push', aguid, entries: [history[0]!.entry] }, 1102);
    expect(member.copyOf(aguid)!.head?.version).toBe(0);
    const restarted = new SecondaryReplica({ nodeId: 'replica-b', store, random: new Prng(3), nowMs: 2000 }, config);
    expect(restarted.copyOf(aguid)).toBeDefined();
    expect(joins(restarted, 2000)).toBe(true);
  });

  it('readVersionParts gives exactly readVersionRange\'s bytes, in non-empty pieces, and refuses a range past the end (property)', () => {
    fc.assert(
      fc.property(fc.nat(history.length - 1), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (index, a, b) => {
        const { vguid } = history[index]!;
        const size = rootBlockOf(ringBlocks, vguid)!.sizeBytes;
        const offset = Math.floor(a * size);
        const length = Math.floor(b * (size - offset));
        const parts = readVersionParts(ringBlocks, vguid, offset, length)!;
        expect(bytesEqual(concatBytes(parts), readVersionRange(ringBlocks, vguid, offset, length)!)).toBe(true);
        expect(parts.every((p) => p.length > 0)).toBe(true);
        expect(readVersionParts(ringBlocks, vguid, offset, size - offset + 1)).toBeNull();
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});
