/**
 * The ring wire codec (ring/codec.ts): every message kind round-trips, and hostile bytes —
 * random, truncated, mutated or oversized — only ever produce DecodeError (a core never sees them).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { DecodeError } from '../../core/errors.ts';
import { signerOf } from '../../core/crypto.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../../ring/codec.ts';
import type { Batch, ClientRequest, RingMessage } from '../../ring/messages.ts';
import { batchDigest, signMessage, verifyMessage } from '../../ring/signing.ts';

const signer = signerOf(fakeCrypto, new Uint8Array(32).fill(5));
const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
const sig = fc.uint8Array({ minLength: 64, maxLength: 64 });
const u = fc.nat({ max: 2 ** 40 });
const idx = fc.nat({ max: 6 });

const request = fc.record({ nonce: u, replyTo: fc.string({ maxLength: 20 }), operation: fc.uint8Array({ maxLength: 300 }) }).map(
  ({ nonce, replyTo, operation }) =>
    signMessage<ClientRequest>(fakeCrypto, signer, { kind: 'request', clientKey: signer.publicKey, nonce, replyTo, operation }),
);
const batch: fc.Arbitrary<Batch> = fc.record({ timestampMs: u, heartbeat: fc.boolean(), requests: fc.array(request, { maxLength: 3 }) });
const agreement = <K extends 'prepare' | 'commit'>(kind: K) =>
  fc.record({ view: u, seq: u, digest: hash, replica: idx, signature: sig }).map((m) => ({ kind, ...m }));
const prePrepare = fc.record({ view: u, seq: u, digest: hash, replica: idx, signature: sig, batch: fc.option(batch, { nil: null }) }).map((m) => ({ kind: 'pre-prepare' as const, ...m }));
const checkpoint = fc.record({ seq: u, stateDigest: hash, replica: idx, signature: sig }).map((m) => ({ kind: 'checkpoint' as const, ...m }));
const viewChange = fc
  .record({
    newView: u,
    stableSeq: u,
    checkpointProof: fc.array(checkpoint, { maxLength: 3 }),
    prepared: fc.array(fc.record({ prePrepare, prepares: fc.array(agreement('prepare'), { maxLength: 2 }) }), { maxLength: 2 }),
    replica: idx,
    signature: sig,
  })
  .map((m) => ({ kind: 'view-change' as const, ...m }));

const message: fc.Arbitrary<RingMessage> = fc.oneof(
  request,
  prePrepare,
  agreement('prepare'),
  agreement('commit'),
  checkpoint,
  viewChange,
  fc.record({ view: u, viewChanges: fc.array(viewChange, { maxLength: 2 }), prePrepares: fc.array(prePrepare, { maxLength: 2 }), replica: idx, signature: sig }).map((m) => ({ kind: 'new-view' as const, ...m })),
  fc.record({ view: u, viewActive: fc.boolean(), lastExecuted: u, stableSeq: u }).map((m) => ({ kind: 'status' as const, ...m })),
  fc.record({ prePrepare, commits: fc.array(agreement('commit'), { maxLength: 3 }) }).map((m) => ({ kind: 'commit-proof' as const, ...m })),
  fc.record({ checkpoints: fc.array(checkpoint, { maxLength: 3 }) }).map((m) => ({ kind: 'checkpoint-proof' as const, ...m })),
  fc.record({ seq: u }).map((m) => ({ kind: 'state-request' as const, ...m })),
  fc.record({ seq: u, snapshot: fc.uint8Array({ maxLength: 100 }), checkpoints: fc.array(checkpoint, { maxLength: 2 }) }).map((m) => ({ kind: 'state-reply' as const, ...m })),
  fc.record({ seq: u, root: hash, replica: idx, share: fc.uint8Array({ maxLength: 96 }) }).map((m) => ({ kind: 'share' as const, ...m })),
  fc.record({ view: u, seq: u, clientKey: hash, nonce: u, requestDigest: hash, result: fc.uint8Array({ maxLength: 50 }), replica: idx, signature: sig }).map((m) => ({ kind: 'reply' as const, ...m })),
  fc.record({ seq: u, clientKey: hash, nonce: u, statement: fc.uint8Array({ maxLength: 100 }), leafIndex: fc.nat({ max: 10 }), leafCount: fc.nat({ max: 10 }), path: fc.array(hash, { maxLength: 4 }), root: hash, signature: fc.uint8Array({ maxLength: 48 }) }).map((m) => ({ kind: 'certificate' as const, ...m })),
  fc.record({ block: fc.uint8Array({ maxLength: 200 }) }).map((m) => ({ kind: 'put-block' as const, ...m })),
  fc.record({ bguid: hash, replica: idx }).map((m) => ({ kind: 'block-stored' as const, ...m })),
  fc.record({ bguids: fc.array(hash, { maxLength: 3 }) }).map((m) => ({ kind: 'fetch-blocks' as const, ...m })),
  fc.record({ blockKind: fc.constantFrom('data' as const, 'interior' as const, 'root' as const), bytes: fc.uint8Array({ maxLength: 100 }) }).map((m) => ({ kind: 'block-data' as const, ...m })),
);

function decodesOrRejects(bytes: Uint8Array): void {
  try {
    decodeRingMessage(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
  }
}

describe('ring codec', () => {
  it('round-trips every message kind (decode(encode(m)) re-encodes to the same bytes)', () => {
    fc.assert(
      fc.property(message, (m) => {
        const bytes = encodeRingMessage(m);
        const back = decodeRingMessage(bytes);
        expect(back.kind).toBe(m.kind);
        expect(toHex(encodeRingMessage(back))).toBe(toHex(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it('rejects random bytes, truncations and single-byte mutations with DecodeError only', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), decodesOrRejects), { numRuns: 500 });
    fc.assert(
      fc.property(message, fc.nat(), fc.nat({ max: 255 }), (m, at, value) => {
        const bytes = encodeRingMessage(m);
        decodesOrRejects(bytes.subarray(0, at % (bytes.length + 1)));
        const mutated = bytes.slice();
        mutated[at % mutated.length] = value;
        decodesOrRejects(mutated);
      }),
      { numRuns: 400 },
    );
  });

  it('refuses a frame over the size limit before parsing it', () => {
    const big = new Uint8Array(ringFrameBytesMax + 1);
    expect(() => decodeRingMessage(big)).toThrow(DecodeError);
  });

  it('signatures cover the signed fields: a pre-prepare re-signed over another digest fails, its batch digest binds the requests', () => {
    fc.assert(
      fc.property(batch, hash, (b, other) => {
        const digest = batchDigest(fakeCrypto, b);
        const pp = signMessage(fakeCrypto, signer, { kind: 'pre-prepare', view: 1, seq: 2, digest, replica: 0, batch: b } as never) as RingMessage & { kind: 'pre-prepare' };
        expect(verifyMessage(fakeCrypto, signer.publicKey, pp)).toBe(true);
        // The batch is outside the signature (the digest stands for it), so swapping it keeps the signature...
        expect(verifyMessage(fakeCrypto, signer.publicKey, { ...pp, batch: null })).toBe(true);
        // ...but not the digest.
        expect(verifyMessage(fakeCrypto, signer.publicKey, { ...pp, digest: other })).toBe(other.every((x, i) => x === digest[i]));
      }),
      { numRuns: 100 },
    );
  });
});
