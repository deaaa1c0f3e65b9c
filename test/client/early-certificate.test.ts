/**
 * ring/client.ts accepts a certificate that beats the f+1-th reply ("certified" before
 * "completed"); the session must keep it until "completed" makes the WriteResult, so that
 * `certified` resolves instead of timing out after 60 s. A real RingClient behind a stub host;
 * no processes.
 */
import { expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import type { Effect } from '../../core/machine.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { batchLeafHash } from '../../core/threshold/batch-merkle.ts';
import { RingClient } from '../../ring/client.ts';
import type { ClientRequest, RingMessage } from '../../ring/messages.ts';
import { requestDigest } from '../../ring/signing.ts';
import { Session } from '../../client/session.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

const crypto = nodeCrypto;

it('a certificate that beats the f+1-th reply resolves WriteResult.certified', async () => {
  const signer = signerOf(crypto, new Uint8Array(32).fill(7));
  const members = [0, 1, 2, 3].map((i) => ({ id: `ring-${i}`, publicKey: new Uint8Array(32) }));
  const ringClient = new RingClient(
    { nodeId: 'client', store: new MemoryKvStore(), random: { int: () => 0, float: () => 0, bytes: (n: number) => new Uint8Array(n) }, nowMs: 0 },
    { members, f: 1, crypto, signer, ringId: new Uint8Array(32), certificateVerifier: { verify: () => true }, retransmitMs: 500, channelIntegrity: true },
  );
  const sent: RingMessage[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let session: any;
  const run = (effects: Effect<RingMessage, unknown>[]): void => {
    for (const e of effects) {
      if (e.kind === 'send') sent.push(e.message);
      else if (e.kind === 'output') session.onEvent(e.event);
    }
  };
  const host = { execute: (_channel: number, step: (nowMs: number) => Effect<RingMessage, unknown>[]) => run(step(Date.now())) };
  const view = { f: 1, ring: members, secondaries: [], members: new Map() };
  // The constructor is private (Session.open dials a cluster); the stub host stands in for it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  session = new (Session as any)(view, crypto, { name: 'client' }, host, ringClient, signer.publicKey);

  const submitted: Promise<{ seq: number; certified: Promise<Uint8Array> }> = session.submit(new Uint8Array([1, 2, 3]), { timeoutMs: 5_000 });
  const request = sent.find((m): m is ClientRequest => m.kind === 'request')!;
  const nowMs = Date.now();
  // The certifier's certificate arrives first (a one-leaf batch: root = leaf hash, empty path).
  const statement = new Uint8Array([9, 9, 9]);
  const leaf = batchLeafHash(crypto, statement);
  const certificate = { kind: 'certificate', seq: 1, epoch: 0, clientKey: signer.publicKey, nonce: request.nonce, statement, leafIndex: 0, leafCount: 1, path: [], root: leaf, signature: new Uint8Array(48) };
  run(ringClient.onMessage('ring-1', certificate as RingMessage, nowMs));
  expect(ringClient.counters.certified).toBe(1);
  // Then f+1 = 2 matching replies.
  for (const replica of [0, 1]) {
    const reply = { kind: 'reply', view: 0, seq: 1, clientKey: signer.publicKey, nonce: request.nonce, requestDigest: requestDigest(crypto, request), result: new Uint8Array([5]), replica, signature: new Uint8Array(64) };
    run(ringClient.onMessage(`ring-${replica}`, reply as RingMessage, nowMs));
  }
  const done = await submitted;
  expect(done.seq).toBe(1);
  const outcome = await Promise.race([
    done.certified.then(
      (s) => `certified ${[...s].join(',')}`,
      (e: Error) => `rejected: ${e.message}`,
    ),
    new Promise((resolve) => setTimeout(() => resolve('still pending after 1 s'), 1_000)),
  ]);
  expect(outcome).toBe('certified 9,9,9');
});
