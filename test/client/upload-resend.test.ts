/**
 * A block upload is sent again to the ring servers that have not acknowledged it (session-21
 * soak: a put-block lost with a connection cut mid-upload was never acknowledged, and the write
 * waited out its 300 s deadline while the cluster was up). Driven on the session's ring-channel
 * machine itself, with its real ring client.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import type { Effect } from '../../core/machine.ts';
import { RingChannelCore, uploadResendMsMin } from '../../client/session.ts';
import { RingClient } from '../../ring/client.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

const members = ['ring-0', 'ring-1', 'ring-2', 'ring-3'];

function core(): RingChannelCore {
  const signer = signerOf(nodeCrypto, new Uint8Array(32).fill(5));
  const client = new RingClient(
    { nodeId: 'c', store: new MemoryKvStore(), random: { int: () => 0, float: () => 0, bytes: (n) => new Uint8Array(n) }, nowMs: 0 },
    { members: members.map((id) => ({ id, publicKey: signer.publicKey })), f: 1, crypto: nodeCrypto, signer, certificateVerifier: { verify: () => true }, ringId: new Uint8Array(32), retransmitMs: 500 },
  );
  return new RingChannelCore(client);
}

const putBlocksTo = (effects: Effect<RingMessage, unknown>[]) =>
  effects.flatMap((e) => (e.kind === 'send' && e.message.kind === 'put-block' ? [e.to] : []));

describe('a block upload', () => {
  it('is sent again, with backoff, to the members that have not said they stored it, until forgotten', () => {
    const c = core();
    const bguid = new Uint8Array(32).fill(7);
    const hex = Buffer.from(bguid).toString('hex');
    expect(putBlocksTo(c.upload(hex, new Uint8Array([1, 2, 3]), members, 0))).toEqual(members);
    c.onMessage('ring-0', { kind: 'block-stored', bguid } as RingMessage, 10);
    c.onMessage('ring-2', { kind: 'block-stored', bguid } as RingMessage, 10);
    expect(putBlocksTo(c.onTick(uploadResendMsMin - 1))).toEqual([]);
    expect(putBlocksTo(c.onTick(uploadResendMsMin))).toEqual(['ring-1', 'ring-3']); // before: never sent again
    // The next resend waits twice as long.
    expect(putBlocksTo(c.onTick(uploadResendMsMin + 2 * uploadResendMsMin - 1))).toEqual([]);
    expect(putBlocksTo(c.onTick(uploadResendMsMin + 2 * uploadResendMsMin))).toEqual(['ring-1', 'ring-3']);
    c.forget(hex); // enough acknowledgements, or the caller gave up
    expect(putBlocksTo(c.onTick(10 * uploadResendMsMin))).toEqual([]);
  });
});
