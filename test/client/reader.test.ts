/**
 * client/reader.ts without processes: a stub session hands each read to an in-process secondary
 * that follows a test ring's history. Checks that a pinned metadata read of a version the handle
 * has already verified asks no member again (a certified version never changes), and that
 * anything else still goes to the members and is verified.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import { NotFoundError, UnavailableError } from '../../core/errors.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { VersionReader } from '../../client/reader.ts';
import type { ReadReply, ReadRequest, Session } from '../../client/session.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { SecondaryReplica } from '../../replica/secondary.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, testObject, type HistoryVersion, type TestObject } from '../replica/test-ring.ts';

const crypto = nodeCrypto;
let signer: TestRingSigner;
let object: TestObject;
let history: HistoryVersion[];
let member: SecondaryReplica;

beforeAll(() => {
  signer = new TestRingSigner(crypto, 'fake', 11);
  object = testObject(crypto, 'core', 11);
  history = buildHistory(crypto, signer, object, { versionCount: 6, appendBytes: 2000, referenceEvery: 0, seed: 11, blocks: new MemoryBlockStore(crypto) });
  member = new SecondaryReplica(
    { nodeId: 'replica-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax: 1 << 24, subscriptions: [object.aguid] },
  );
  member.onTick(0);
  member.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: history.length }, 1);
  member.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.map((h) => h.entry) }, 2);
  expect(member.copyOf(object.aguid)!.head!.version).toBe(history.length - 1);
});

/**
 * A session whose members all answer from the in-process secondary (data reads after each member's delay in ms);
 * counts the reads sent, and the data reads per member.
 */
function stubSession(delaysMs: Record<string, number> = { 'replica-0': 0 }): { session: Session; reads: () => number; dataReads: Map<string, number> } {
  let count = 0;
  const dataReads = new Map<string, number>();
  const view = { f: 0, ring: [], secondaries: Object.keys(delaysMs) };
  const session = {
    view,
    read: async (to: string, request: Omit<ReadRequest, 'type' | 'requestId'>): Promise<ReadReply> => {
      count++;
      if (request.length > 0) dataReads.set(to, (dataReads.get(to) ?? 0) + 1);
      if (delaysMs[to] && request.length > 0) await new Promise((resolve) => setTimeout(resolve, delaysMs[to]));
      const effects = member.onMessage('client', { type: 'read', requestId: count, ...request }, 3);
      const reply = effects.find((e) => e.kind === 'send' && e.to === 'client');
      if (!reply || reply.kind !== 'send' || reply.message.type !== 'read-reply') throw new Error(`no reply from ${to}`);
      return reply.message;
    },
  };
  return { session: session as unknown as Session, reads: () => count, dataReads };
}

describe('VersionReader', () => {
  it('a pinned metadata read of a version already verified asks no member; other reads still do, and are verified', async () => {
    const { session, reads } = stubSession();
    const reader = new VersionReader(object.aguid, session, crypto, signer.trust());
    const target = history[3]!;
    const first = await reader.fetch(3, 0, 0, { timeoutMs: 5_000 });
    expect(bytesEqual(first.vguid, target.vguid)).toBe(true);
    const asked = reads();
    expect(asked).toBeGreaterThan(0);
    const again = await reader.fetch(3, 0, 0, { timeoutMs: 5_000 });
    expect(bytesEqual(again.vguid, target.vguid)).toBe(true);
    expect(reads()).toBe(asked);
    const other = await reader.fetch(4, 0, 0, { timeoutMs: 5_000 });
    expect(bytesEqual(other.vguid, history[4]!.vguid)).toBe(true);
    expect(reads()).toBeGreaterThan(asked);
    const data = await reader.fetch(3, 0, 100, { timeoutMs: 5_000 });
    expect(data.bytes.length).toBe(100);
    expect(data.parts.reduce((n, p) => n + p.length, 0)).toBe(100);
  });

  it('a stream sends fewer chunks to a holder that answers slowly (expected finish time, not round-robin)', async () => {
    const { session, dataReads } = stubSession({ fast: 0, slow: 40 });
    const reader = new VersionReader(object.aguid, session, crypto, signer.trust());
    await reader.fetch(3, 0, 0, { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 10)); // the other probe's answer lands too: both are holders
    // The stream's loop (client/object.ts readStream): 4 chunks in flight, consumed in order.
    const chunkCount = 16;
    const inFlight: Promise<unknown>[] = [];
    let next = 0;
    const launch = () => inFlight.push(reader.fetchChunk(next, 3, next++ % 8, 64, { timeoutMs: 5_000 }));
    while (next < 4) launch();
    while (inFlight.length > 0) {
      await inFlight.shift();
      if (next < chunkCount) launch();
    }
    const slow = dataReads.get('slow') ?? 0;
    const fast = dataReads.get('fast') ?? 0;
    expect(slow + fast).toBe(chunkCount);
    expect(slow).toBeLessThan(fast / 2); // round-robin gave each 8
  });
});

describe('VersionReader: holders after a latest probe', () => {
  it('are the members that answered the version it settled on, not one that lagged and answered an older one first', async () => {
    // ring-0 lags (it follows the object up to version 3) and answers first; ring-1 holds all of it.
    const lagging = new SecondaryReplica(
      { nodeId: 'replica-1', store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 },
      { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax: 1 << 24, subscriptions: [object.aguid] },
    );
    lagging.onTick(0);
    lagging.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: 4 }, 1);
    lagging.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.slice(0, 4).map((h) => h.entry) }, 2);
    expect(lagging.copyOf(object.aguid)!.head!.version).toBe(3);
    let id = 0;
    const dataReads: string[] = [];
    const session = {
      view: { f: 0, ring: ['ring-0', 'ring-1'].map((m) => ({ id: m, publicKey: new Uint8Array(32) })), secondaries: [] },
      read: async (to: string, request: Omit<ReadRequest, 'type' | 'requestId'>): Promise<ReadReply> => {
        if (request.length > 0) dataReads.push(to);
        if (to === 'ring-1') await new Promise((resolve) => setTimeout(resolve, 5));
        const effects = (to === 'ring-0' ? lagging : member).onMessage('client', { type: 'read', requestId: ++id, ...request }, 3);
        const reply = effects.find((e) => e.kind === 'send' && e.to === 'client');
        if (!reply || reply.kind !== 'send' || reply.message.type !== 'read-reply') throw new Error(`no reply from ${to}`);
        return reply.message;
      },
    } as unknown as Session;
    const reader = new VersionReader(object.aguid, session, crypto, signer.trust());
    const latest = await reader.fetch(null, 0, 0, { timeoutMs: 5_000 });
    expect(latest.version).toBe(history.length - 1);
    expect(reader.candidates()[0]).toBe('ring-1');
    // A stream's chunks spread over the holders: the second went to ring-0 first, which answered not-cached.
    for (let chunk = 0; chunk < 2; chunk++) expect((await reader.fetchChunk(chunk, latest.version, chunk * 100, 100, { timeoutMs: 5_000 })).bytes.length).toBe(100);
    expect(dataReads).toEqual(['ring-1', 'ring-1']);
  });
});

describe('VersionReader: a version that does not exist', () => {
  /** A ring of four (f = 1) whose members answer each read with `status(member)`, and one secondary that has nothing. */
  function ringSession(status: (member: string) => string): Session {
    const ring = ['ring-0', 'ring-1', 'ring-2', 'ring-3'];
    let id = 0;
    const session = {
      view: { f: 1, ring: ring.map((m) => ({ id: m, publicKey: new Uint8Array(32) })), secondaries: ['replica-0'] },
      read: async (to: string): Promise<ReadReply> =>
        ({ type: 'read-reply', requestId: ++id, status: ring.includes(to) ? status(to) : 'not-cached', certificate: null, heartbeat: null, blocks: [] }) as unknown as ReadReply,
    };
    return session as unknown as Session;
  }

  it('ends at once with NotFoundError when 2f+1 ring servers answer no-such-version (it waited out the deadline, 120 s in the CLI)', async () => {
    const reader = new VersionReader(object.aguid, ringSession(() => 'no-such-version'), crypto, signer.trust());
    const startedMs = Date.now();
    await expect(reader.fetch(99, 0, 0, { timeoutMs: 20_000 })).rejects.toThrow(NotFoundError);
    await expect(reader.fetch(99, 0, 10, { timeoutMs: 20_000 })).rejects.toThrow(/version 99 does not exist/);
    expect(Date.now() - startedMs).toBeLessThan(5_000);
  });

  it('does not on fewer than 2f+1 such answers, nor for a version this handle wrote', async () => {
    const few = new VersionReader(object.aguid, ringSession((m) => (m === 'ring-0' || m === 'ring-1' ? 'no-such-version' : 'not-cached')), crypto, signer.trust());
    await expect(few.fetch(99, 0, 0, { timeoutMs: 300 })).rejects.toThrow(UnavailableError);
    const own = new VersionReader(object.aguid, ringSession(() => 'no-such-version'), crypto, signer.trust());
    own.noteWrite(99, new Promise<void>(() => undefined));
    await expect(own.fetch(99, 0, 0, { timeoutMs: 300 })).rejects.toThrow(UnavailableError);
  });
});

describe('VersionReader: the error a read ends with', () => {
  it('says what members answered when they had time, not only that the last attempt, cut short by the deadline, got no answer', async () => {
    // Every member answers 'not-cached' after 100 ms: the attempts that leave a member its full time
    // learn why, and the last one, with only the deadline's remainder, times out.
    const answerMs = 100;
    let id = 0;
    const session = {
      view: { f: 0, ring: [], secondaries: ['replica-0'] },
      read: async (to: string, _request: unknown, options: { timeoutMs: number }): Promise<ReadReply> => {
        if (options.timeoutMs < answerMs) {
          await new Promise((resolve) => setTimeout(resolve, options.timeoutMs));
          throw new UnavailableError(`read from ${to}: no answer within ${options.timeoutMs} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, answerMs));
        return { type: 'read-reply', requestId: ++id, status: 'not-cached', certificate: null, heartbeat: null, blocks: [] } as unknown as ReadReply;
      },
    } as unknown as Session;
    const reader = new VersionReader(object.aguid, session, crypto, signer.trust());
    const error = await reader.fetch(3, 0, 10, { timeoutMs: 3_300 }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    expect((error as Error).message).toMatch(/no answer within \d+ ms; before that, with time to answer: .*replica-0: .*not.cached/);
  });
});
