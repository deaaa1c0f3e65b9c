/**
 * client/object.ts watch(): aborting its signal ends the iteration without an error (the CLI's
 * `watch` + Ctrl-C printed an AbortError stack trace; the README says Ctrl-C stops it), whether the
 * abort comes while it sleeps between polls or while a poll's read is in flight. In-process members
 * behind a stub session, as in test/client/stale-latest.test.ts; no processes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
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
let member: SecondaryReplica;

beforeAll(() => {
  signer = new TestRingSigner(crypto, 'fake', 11);
  object = testObject(crypto, 'core', 11);
  history = buildHistory(crypto, signer, object, { versionCount: 2, appendBytes: 100, referenceEvery: 0, seed: 11, blocks: new MemoryBlockStore(crypto) });
  member = new SecondaryReplica(
    { nodeId: 'm', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax: 1 << 24, subscriptions: [object.aguid] },
  );
  member.onTick(0);
  member.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: 2 }, 1);
  member.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.map((h) => h.entry) }, 2);
});

/** Ring servers answering at once for the first `answered` reads, then never (until the signal aborts, as Session.read does). */
function session(answered: number): Session {
  let id = 0;
  let reads = 0;
  const view = { f: 1, ring: [0, 1, 2, 3].map((i) => ({ id: `ring-${i}`, publicKey: new Uint8Array(32) })), secondaries: [] };
  return {
    view,
    read: async (_to: string, request: Omit<ReadRequest, 'type' | 'requestId'>, options: { signal?: AbortSignal } = {}): Promise<ReadReply> => {
      if (++reads > answered) {
        await new Promise((resolve) => options.signal?.addEventListener('abort', resolve, { once: true }));
        throw new DOMException('This operation was aborted', 'AbortError');
      }
      const effects = member.onMessage('client', { type: 'read', requestId: ++id, ...request }, 3);
      const reply = effects.find((e) => e.kind === 'send' && e.to === 'client');
      if (!reply || reply.kind !== 'send' || reply.message.type !== 'read-reply') throw new Error('no reply');
      return reply.message;
    },
  } as unknown as Session;
}

function handleOn(s: Session): ObjectHandle {
  return new ObjectHandle(object.aguid, s, { publicKey: new Uint8Array(32), secretKey: new Uint8Array(32) } as never, crypto, signer.trust(), () => 1);
}

async function drain(handle: ObjectHandle, signal: AbortSignal, intervalMs: number): Promise<number[]> {
  const seen: number[] = [];
  for await (const v of handle.watch({ signal, intervalMs, timeoutMs: 20_000 })) seen.push(v.version);
  return seen;
}

describe('watch ends when its signal aborts', () => {
  it('while sleeping between polls: at once, no error', async () => {
    const controller = new AbortController();
    const watching = drain(handleOn(session(1_000)), controller.signal, 60_000);
    await new Promise((r) => setTimeout(r, 300));
    const startedMs = Date.now();
    controller.abort();
    await expect(watching).resolves.toEqual([]);
    expect(Date.now() - startedMs).toBeLessThan(1_000);
  });

  it('while a poll is waiting for ring servers: no AbortError', async () => {
    const controller = new AbortController();
    // The first stat is answered (4 ring reads at most); every later read hangs until the abort.
    const watching = drain(handleOn(session(4)), controller.signal, 10);
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    await expect(watching).resolves.toEqual([]);
  });
});
