/**
 * A "latest" read without maxAgeMs (read(), stat(), versions(), every poll of watch()) must not be
 * pinned to an old version by one fast member replaying an old certificate: it settles only once
 * f+1 ring servers (one of them correct) have answered, on the newest verified version among the
 * answers; with fewer ring answers it retries, and fails rather than guess. In-process members
 * (SecondaryReplica copies of a test ring's history) behind a stub session; no processes.
 */
import { beforeAll, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { ObjectHandle } from '../../client/object.ts';
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

beforeAll(() => {
  signer = new TestRingSigner(crypto, 'fake', 11);
  object = testObject(crypto, 'core', 11);
  history = buildHistory(crypto, signer, object, { versionCount: 6, appendBytes: 2000, referenceEvery: 0, seed: 11, blocks: new MemoryBlockStore(crypto) });
});

/** A member that holds versions 0..upTo of the test object. */
function memberWith(upTo: number, name: string): SecondaryReplica {
  const m = new SecondaryReplica(
    { nodeId: name, store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax: 1 << 24, subscriptions: [object.aguid] },
  );
  m.onTick(0);
  m.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: upTo + 1 }, 1);
  m.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.slice(0, upTo + 1).map((h) => h.entry) }, 2);
  return m;
}

/**
 * 4 ring servers (f = 1) answering from `ring(to, request)` after `ringDelayMs` (null: never), and one
 * secondary, `replica-0`, answering at once from `replayer`. Like Session.read, a read rejects on
 * its timeout or abort.
 */
function stubSession(ring: (to: string, request: Omit<ReadRequest, 'type' | 'requestId'>) => SecondaryReplica, replayer: SecondaryReplica, ringDelayMs: number | null): Session {
  let id = 0;
  const view = { f: 1, ring: [0, 1, 2, 3].map((i) => ({ id: `ring-${i}`, publicKey: new Uint8Array(32) })), secondaries: ['replica-0'] };
  const session = {
    view,
    read: async (to: string, request: Omit<ReadRequest, 'type' | 'requestId'>, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ReadReply> => {
      const from = to === 'replica-0' ? replayer : ring(to, request);
      if (to !== 'replica-0') {
        const timeoutMs = options.timeoutMs ?? 10_000;
        if (ringDelayMs === null || ringDelayMs > timeoutMs) {
          await new Promise((resolve) => setTimeout(resolve, timeoutMs));
          throw new Error('timeout');
        }
        await new Promise((resolve) => setTimeout(resolve, ringDelayMs));
      }
      if (options.signal?.aborted) throw new Error('aborted');
      const effects = from.onMessage('client', { type: 'read', requestId: ++id, ...request }, 3);
      const reply = effects.find((e) => e.kind === 'send' && e.to === 'client');
      if (!reply || reply.kind !== 'send' || reply.message.type !== 'read-reply') throw new Error('no reply');
      return reply.message;
    },
  };
  return session as unknown as Session;
}

function handleOn(session: Session): ObjectHandle {
  return new ObjectHandle(object.aguid, session, { publicKey: new Uint8Array(32), secretKey: new Uint8Array(32) } as never, crypto, signer.trust(), () => 1);
}

it('one fast member replaying the last-seen certificate does not freeze read(), stat() or watch() of a long-lived handle', async () => {
  const atTwo = memberWith(2, 'honest');
  const atFive = memberWith(5, 'honest');
  // Every ring server serves version 2 for the first two "latest" probes (the stat below, then
  // watch's own first stat); then another writer has committed versions 3..5.
  let latestProbes = 0;
  const ring = (to: string, request: Omit<ReadRequest, 'type' | 'requestId'>): SecondaryReplica => {
    if (to === 'ring-0' && request.version === null) latestProbes++;
    return latestProbes <= 2 ? atTwo : atFive;
  };
  const replayer = memberWith(2, 'replayer'); // stays at version 2 forever, and answers first
  const handle = handleOn(stubSession(ring, replayer, 20));
  expect((await handle.stat()).version).toBe(2);

  const controller = new AbortController();
  const seen: number[] = [];
  const timer = setTimeout(() => controller.abort(), 5_000); // bound: without the fix it never yields
  for await (const v of handle.watch({ signal: controller.signal, intervalMs: 50 })) {
    seen.push(v.version);
    if (v.version === 5) break;
  }
  clearTimeout(timer);
  expect(seen).toEqual([3, 4, 5]);
  const stat = await handle.stat();
  expect(stat.version).toBe(5);
  expect((await handle.versions()).map((v) => v.version)).toEqual([0, 1, 2, 3, 4, 5]);
  expect((await handle.read()).length).toBe(stat.sizeBytes);
});

it('a fresh handle whose ring servers are silent fails rather than take a replayed version 0 for the latest', async () => {
  const handle = handleOn(stubSession(() => memberWith(5, 'honest'), memberWith(0, 'replayer'), null));
  await expect(handle.stat({ timeoutMs: 1_000 })).rejects.toThrow(/ring servers/);
});

it('a fresh handle whose ring servers answer later than one member timeout waits for them (the next attempt)', async () => {
  const handle = handleOn(stubSession(() => memberWith(5, 'honest'), memberWith(0, 'replayer'), 3_200));
  expect((await handle.stat({ timeoutMs: 15_000 })).version).toBe(5);
}, 30_000);
