/**
 * A handle that knows its object's block size (it created the object, or read a head of it) cuts
 * a streamed write into blocks without reading the latest head first (client/object.ts
 * blockBytes). The read was there only for the block size, and the reader counts a head below
 * the version this handle wrote as behind: when the previous write's certificate never came, the
 * next streamed write waited on that read until its deadline (30 minutes in the CLI).
 */
import { describe, expect, it } from 'vitest';
import { newIdentity } from '../../client/identity.ts';
import { ObjectHandle } from '../../client/object.ts';
import type { Session, Submitted } from '../../client/session.ts';
import { encodeObjectResult } from '../../ring/object-result.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { TestRingSigner } from '../replica/test-ring.ts';

/** A session whose updates commit and are never certified, whose blocks store at once, and whose members answer every read 'not-cached'. */
function stubSession(): { session: Session; reads: () => number; blocks: () => number } {
  let reads = 0;
  let blocks = 0;
  let version = 0;
  let id = 0;
  const session = {
    view: { f: 1, ring: ['ring-0', 'ring-1', 'ring-2', 'ring-3'].map((m) => ({ id: m, publicKey: new Uint8Array(32) })), secondaries: [] },
    read: async () => {
      reads++;
      return { type: 'read-reply', requestId: ++id, status: 'not-cached', certificate: null, heartbeat: null, blocks: [] };
    },
    putBlock: async () => {
      blocks++;
      return new Uint8Array(32).fill(blocks);
    },
    submit: async (): Promise<Submitted> => ({
      seq: ++version, nonce: version, result: encodeObjectResult({ outcome: 'commit', version, vguid: new Uint8Array(32).fill(version) }), certified: new Promise<Uint8Array>(() => undefined),
    }),
  };
  return { session: session as unknown as Session, reads: () => reads, blocks: () => blocks };
}

async function* stream(bytes: number, chunk = 16 * 1024): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes; at += chunk) yield new Uint8Array(Math.min(chunk, bytes - at)).fill(at & 0xff);
}

describe('a streamed write on a handle that knows the block size', () => {
  it('reads no head, though its previous write was never certified', async () => {
    const { session, reads, blocks } = stubSession();
    let nonce = 0;
    const handle = new ObjectHandle(new Uint8Array(32).fill(7), session, newIdentity(), nodeCrypto, new TestRingSigner(nodeCrypto, 'fake', 1).trust(), () => ++nonce);
    handle.noteCreated(64 * 1024);
    const first = await handle.write(stream(200 * 1024), { timeoutMs: 2_000 });
    const second = await handle.append(stream(100 * 1024), { timeoutMs: 2_000 });
    expect([first.version, second.version]).toEqual([1, 2]);
    expect(blocks()).toBe(4 + 2);
    expect(reads()).toBe(0);
  });

  it('reads the head once when it does not know the block size yet', async () => {
    const { session, reads } = stubSession();
    const handle = new ObjectHandle(new Uint8Array(32).fill(8), session, newIdentity(), nodeCrypto, new TestRingSigner(nodeCrypto, 'fake', 1).trust(), () => 1);
    await expect(handle.write(stream(200 * 1024), { timeoutMs: 300 })).rejects.toThrow();
    expect(reads()).toBeGreaterThan(0);
  });
});
