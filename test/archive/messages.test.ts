import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../../core/codec.ts';
import { DecodeError } from '../../core/errors.ts';
import { decodeArchiveMessage, encodeArchiveFrame, encodeArchiveMessage, type ArchiveMessage } from '../../archive/messages.ts';
import { signReceipt, verifyReceipt } from '../../archive/receipt.ts';
import { signerOf } from '../../core/crypto.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';

const r = new Prng(51);
const h = (): Uint8Array => r.bytes(32);
const samples: ArchiveMessage[] = [
  { type: 'store', requestId: 1, items: [{ fragment: r.bytes(300), fragmentRoot: h(), certificate: r.bytes(90) }] },
  { type: 'store', requestId: 2, items: [{ fragment: r.bytes(10), fragmentRoot: h(), certificate: null }, { fragment: r.bytes(20), fragmentRoot: h(), certificate: null }] },
  { type: 'receipt', requestId: 3, items: [{ bguid: h(), fragmentRoot: h(), index: 7 }, { bguid: h(), fragmentRoot: h(), index: 0 }], signature: r.bytes(64) },
  { type: 'refused', requestId: 4, reason: 'root-mismatch' },
  { type: 'probe', requestId: 5, bguids: [h(), h()] },
  { type: 'probeReply', requestId: 6, held: [{ bguid: h(), fragmentRoot: h(), index: 3 }] },
  { type: 'fetch', requestId: 7, bguids: [h(), h()] },
  { type: 'fetchReply', requestId: 8, blocks: [{ bguid: h(), fragments: [r.bytes(40), r.bytes(41)], certificate: null }, { bguid: h(), fragments: [], certificate: r.bytes(70) }] },
  { type: 'listCertificates', requestId: 9, after: 'c/ab', limit: 100 },
  { type: 'listCertificates', requestId: 9, after: '', limit: 7, aguid: h() },
  { type: 'certificates', requestId: 10, certificates: [r.bytes(500)], next: 'c/ff' },
  { type: 'status', requestId: 11 },
  {
    type: 'statusReply',
    requestId: 12,
    status: { fragmentCount: 5, certificateCount: 1, scrubbedCount: 9, corruptFoundCount: 2, repairQueuedCount: 0, repairedFragmentCount: 3, repairFailedCount: 0, lostPeers: ['archive-3'] },
  },
  { type: 'ping' },
  { type: 'ping', coding: { k: 4, m: 4 } },
];

describe('archive message codec', () => {
  it('round-trips every message type exactly', () => {
    for (const message of samples) expect(decodeArchiveMessage(encodeArchiveMessage(message))).toEqual(message);
  });

  it('frames (a reserved byte in front, fragments packed once) hold exactly the message encoding', () => {
    const big: ArchiveMessage[] = [
      // Lengths across msgpack's bin8 / bin16 / bin32 and fixarray / array16 boundaries.
      { type: 'fetchReply', requestId: 2 ** 40, blocks: Array.from({ length: 17 }, (_, i) => ({ bguid: h(), fragments: [r.bytes(255 + i), r.bytes(65_535 + i), r.bytes(70_000)], certificate: i % 2 ? r.bytes(300) : null })) },
      { type: 'store', requestId: 0, items: Array.from({ length: 16 }, (_, i) => ({ fragment: r.bytes(i * 4099), fragmentRoot: h(), certificate: i === 3 ? r.bytes(256) : null })) },
      { type: 'fetchReply', requestId: 3, blocks: [] },
    ];
    for (const message of [...samples, ...big]) {
      for (const reserved of [0, 1, 3]) {
        const frame = encodeArchiveFrame(message, reserved);
        expect(frame.subarray(0, reserved)).toEqual(new Uint8Array(reserved));
        expect(Buffer.from(frame.subarray(reserved)).equals(Buffer.from(encodeArchiveMessage(message))), message.type).toBe(true);
      }
      expect(decodeArchiveMessage(encodeArchiveMessage(message))).toEqual(message);
    }
    // The fragment-carrying messages are packed by fast-msgpack: byte for byte what msgpackr
    // (core/codec.ts) writes for the same tuples, so any peer decodes them as before.
    for (const message of big) {
      const tuple =
        message.type === 'store' ? ['store', message.requestId, message.items.map((i) => [i.fragment, i.fragmentRoot, i.certificate])]
        : message.type === 'fetchReply' ? ['fetchReply', message.requestId, message.blocks.map((b) => [b.bguid, b.fragments, b.certificate])]
        : null;
      expect(Buffer.from(encodeArchiveMessage(message)).equals(Buffer.from(encode(tuple)))).toBe(true);
    }
  });

  it('throws only DecodeError on random and mutated frames (never crashes or accepts a wrong shape silently)', () => {
    const frames = samples.map(encodeArchiveMessage);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: frames.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 6 }), fc.uint8Array({ maxLength: 64 }), (which, flips, random) => {
        const mutated = frames[which]!.slice();
        for (const [at, value] of flips) mutated[at % mutated.length] = value;
        for (const frame of [mutated, random]) {
          try {
            const decoded = decodeArchiveMessage(frame);
            expect(decodeArchiveMessage(encodeArchiveMessage(decoded))).toEqual(decoded);
          } catch (error) {
            expect(error).toBeInstanceOf(DecodeError);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('bounds what a peer can make us allocate (oversized fields are refused)', () => {
    expect(() => decodeArchiveMessage(encodeArchiveMessage({ type: 'probe', requestId: 1, bguids: Array.from({ length: 1025 }, h) }))).toThrow(DecodeError);
    expect(() => decodeArchiveMessage(encodeArchiveMessage({ type: 'refused', requestId: 1, reason: 'x'.repeat(300) }))).toThrow(DecodeError);
    expect(() => decodeArchiveMessage(encodeArchiveMessage({ type: 'fetch', requestId: 1, bguids: [r.bytes(31)] }))).toThrow(DecodeError);
  });
});

describe('storage receipts', () => {
  it('verify for the signer and the exact list of items only', () => {
    const signer = signerOf(nodeCrypto, r.bytes(32));
    const other = signerOf(nodeCrypto, r.bytes(32));
    const items = [{ bguid: h(), fragmentRoot: h(), index: 2 }, { bguid: h(), fragmentRoot: h(), index: 5 }];
    const signature = signReceipt(nodeCrypto, signer, items);
    expect(verifyReceipt(nodeCrypto, signer.publicKey, items, signature)).toBe(true);
    expect(verifyReceipt(nodeCrypto, other.publicKey, items, signature)).toBe(false);
    expect(verifyReceipt(nodeCrypto, signer.publicKey, [{ ...items[0]!, index: 3 }, items[1]!], signature)).toBe(false);
    expect(verifyReceipt(nodeCrypto, signer.publicKey, [items[0]!, { ...items[1]!, fragmentRoot: h() }], signature)).toBe(false);
    expect(verifyReceipt(nodeCrypto, signer.publicKey, [items[0]!], signature)).toBe(false);
    expect(verifyReceipt(nodeCrypto, signer.publicKey, [items[1]!, items[0]!], signature)).toBe(false);
  });
});
