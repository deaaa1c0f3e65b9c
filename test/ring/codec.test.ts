/**
 * The ring wire codec (ring/codec.ts): every message kind round-trips, and hostile bytes —
 * random, truncated, mutated or oversized — only ever produce DecodeError (a core never sees them).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { DecodeError } from '../../core/errors.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../../ring/codec.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { batchDigest, signMessage, verifyMessage } from '../../ring/signing.ts';
import { batch, hash, message, signer } from './arbitraries.ts';

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

  it('a reply carries a 64-byte signature or none (sent on a channel with integrity); any other length is a DecodeError', () => {
    const reply = (signature: Uint8Array) => ({
      kind: 'reply' as const, view: 1, seq: 2, clientKey: new Uint8Array(32).fill(1), nonce: 3,
      requestDigest: new Uint8Array(32).fill(2), result: new Uint8Array([4]), replica: 1, signature,
    });
    for (const length of [0, 64]) expect(decodeRingMessage(encodeRingMessage(reply(new Uint8Array(length).fill(5))))).toEqual(reply(new Uint8Array(length).fill(5)));
    for (const length of [1, 32, 63, 65]) expect(() => decodeRingMessage(encodeRingMessage(reply(new Uint8Array(length))))).toThrow(DecodeError);
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
