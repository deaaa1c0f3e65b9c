/**
 * An update whose caller gave up (deadline or abort) is given up by the session too: before, the
 * ring client kept it in flight for good, so one update the ring never executed held every later
 * write of the session behind it (each timed out in turn), and writes whose callers had been told
 * "timeout" went out whenever the ring answered again. A real RingClient behind a stub host.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { TimeoutError } from '../../core/errors.ts';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { RingClient } from '../../ring/client.ts';
import type { ClientRequest, RingMessage } from '../../ring/messages.ts';
import { requestDigest } from '../../ring/signing.ts';
import { Session } from '../../client/session.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

const crypto = nodeCrypto;
const signer = signerOf(crypto, new Uint8Array(32).fill(7));
const members = [0, 1, 2, 3].map((i) => ({ id: `ring-${i}`, publicKey: new Uint8Array(32) }));

function setup() {
  const ringClient = new RingClient(
    { nodeId: 'client', store: new MemoryKvStore(), random: { int: () => 0, float: () => 0, bytes: (n: number) => new Uint8Array(n) }, nowMs: 0 },
    { members, f: 1, crypto, signer, ringId: new Uint8Array(32), certificateVerifier: { verify: () => true }, retransmitMs: 500, channelIntegrity: true },
  );
  const sent: ClientRequest[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let session: any;
  const run = (effects: Effect<RingMessage, unknown>[]): void => {
    for (const e of effects) {
      if (e.kind === 'send' && e.message.kind === 'request' && !sent.includes(e.message)) sent.push(e.message);
      else if (e.kind === 'output') session.onEvent(e.event);
    }
  };
  const host = { execute: (_channel: number, step: (nowMs: number) => Effect<RingMessage, unknown>[]) => run(step(Date.now())) };
  const view = { f: 1, ring: members, secondaries: [], members: new Map() };
  // The constructor is private (Session.open dials a cluster); the stub host stands in for it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  session = new (Session as any)(view, crypto, { name: 'client' }, host, ringClient, signer.publicKey);
  const answer = (request: ClientRequest, seq: number): void => {
    for (const replica of [0, 1]) {
      const reply = { kind: 'reply', view: 0, seq, clientKey: signer.publicKey, nonce: request.nonce, requestDigest: requestDigest(crypto, request), result: Uint8Array.of(seq), replica, signature: new Uint8Array(64) };
      run(ringClient.onMessage(`ring-${replica}`, reply as RingMessage, Date.now()));
    }
  };
  const submit = (bytes: number[], timeoutMs: number, signal?: AbortSignal): Promise<{ seq: number; nonce: number }> =>
    session.submit(Uint8Array.from(bytes), { timeoutMs, ...(signal ? { signal } : {}) });
  return { ringClient, sent, answer, submit };
}

describe('session: an update whose caller gave up', () => {
  it('is given up in the ring client, so the next update goes out and completes', async () => {
    const { ringClient, sent, answer, submit } = setup();
    const lost = submit([1], 50);
    await expect(lost).rejects.toBeInstanceOf(TimeoutError);
    expect(ringClient.backlog).toBe(0);

    const next = submit([2], 5_000);
    expect(sent.map((r) => [...r.operation])).toEqual([[1], [2]]);
    const [first, second] = sent as [ClientRequest, ClientRequest];
    expect(second.nonce).toBe(first.nonce + 1);
    // A late answer for the abandoned one counts for nothing; the next one's answer completes it.
    answer(first, 7);
    answer(second, 8);
    expect(await next).toMatchObject({ seq: 8, nonce: second.nonce });
  });

  it('a queued update whose caller gave up never leaves, and the others keep their waiters', async () => {
    const { sent, answer, submit } = setup();
    const a = submit([1], 5_000);
    const b = submit([2], 50);
    const c = submit([3], 5_000);
    await expect(b).rejects.toBeInstanceOf(TimeoutError);
    expect(sent.map((r) => [...r.operation])).toEqual([[1]]);
    answer(sent[0]!, 1);
    expect(await a).toMatchObject({ seq: 1 });
    expect(sent.map((r) => [...r.operation])).toEqual([[1], [3]]);
    answer(sent[1]!, 2);
    expect(await c).toMatchObject({ seq: 2, nonce: sent[1]!.nonce });
  });

  it('an abort gives the update in flight up at once', async () => {
    const { ringClient, sent, answer, submit } = setup();
    const controller = new AbortController();
    const lost = submit([1], 5_000, controller.signal);
    const next = submit([2], 5_000);
    controller.abort(new Error('caller stopped'));
    await expect(lost).rejects.toThrow('caller stopped');
    expect(sent.map((r) => [...r.operation])).toEqual([[1], [2]]);
    expect(ringClient.backlog).toBe(1);
    answer(sent[1]!, 4);
    expect(await next).toMatchObject({ seq: 4 });
  });
});
