/**
 * client/reader.ts without processes: a stub session hands each read to an in-process secondary
 * that follows a test ring's history. Checks that a pinned metadata read of a version the handle
 * has already verified asks no member again (a certified version never changes), and that
 * anything else still goes to the members and is verified.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
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

/** A session whose only member is the in-process secondary; counts the reads sent. */
function stubSession(): { session: Session; reads: () => number } {
  let count = 0;
  const view = { f: 0, ring: [], secondaries: ['replica-0'] };
  const session = {
    view,
    read: async (to: string, request: Omit<ReadRequest, 'type' | 'requestId'>): Promise<ReadReply> => {
      count++;
      const effects = member.onMessage('client', { type: 'read', requestId: count, ...request }, 3);
      const reply = effects.find((e) => e.kind === 'send' && e.to === 'client');
      if (!reply || reply.kind !== 'send' || reply.message.type !== 'read-reply') throw new Error(`no reply from ${to}`);
      return reply.message;
    },
  };
  return { session: session as unknown as Session, reads: () => count };
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
});
