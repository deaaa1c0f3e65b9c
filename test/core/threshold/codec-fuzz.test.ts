// Certificates and heartbeats arrive from anyone (STYLE.md "Errors": decode, bound, check shape
// at the boundary): random and mutated bytes must give a DecodeError or a decoded value that
// then fails verification — never another exception, never a hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../../core/codec.ts';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { DecodeError, SignedBatchBuilder, certificateBytesMax, decodeCertificate, decodeHeartbeat, encodeCertificate, encodeHeartbeat, type Certificate, type Heartbeat } from './imports.ts';
import { heartbeatStatement, ringId, statement } from './fixtures.ts';

// The fuzz targets decoding, so a fixed fake signature is enough (no pairing per run).
const batch = new SignedBatchBuilder(nodeCrypto, { ringId, epoch: 2, sequence: 9 }, [
  { kind: 'certificate', statement: statement(1) },
  { kind: 'certificate', statement: statement(2, { outcome: 'abort', vguid: new Uint8Array(0) }) },
  { kind: 'heartbeat', statement: heartbeatStatement(2, 5) },
]);
const proofs = batch.proofs(new Uint8Array(48).fill(0xaa));
const certBytes = encodeCertificate(proofs[1] as Certificate);
const heartbeatBytes = encodeHeartbeat(proofs[2] as Heartbeat);

function decodesOrDecodeError(decodeFn: (b: Uint8Array) => unknown, bytes: Uint8Array): 'ok' | 'decode-error' {
  try {
    decodeFn(bytes);
    return 'ok';
  } catch (error) {
    if (error instanceof DecodeError) return 'decode-error';
    throw error;
  }
}

describe('certificate and heartbeat decoders under fuzz', () => {
  it('random bytes never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 700 }), (bytes) => {
        decodesOrDecodeError(decodeCertificate, bytes);
        decodesOrDecodeError(decodeHeartbeat, bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('single-byte mutations of valid encodings decode cleanly or fail with DecodeError', () => {
    let rejected = 0;
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (at, value, heartbeat) => {
        const original = heartbeat ? heartbeatBytes : certBytes;
        const bytes = original.slice();
        bytes[at % bytes.length] = value;
        if (decodesOrDecodeError(heartbeat ? decodeHeartbeat : decodeCertificate, bytes) === 'decode-error') rejected++;
      }),
      { numRuns: 2000 },
    );
    expect(rejected).toBeGreaterThan(100); // the mutations do reach the shape checks
  });

  it('truncations and extensions are rejected', () => {
    for (let cut = 0; cut < certBytes.length; cut += 7) {
      expect(decodesOrDecodeError(decodeCertificate, certBytes.subarray(0, cut))).toBe('decode-error');
    }
    const extended = new Uint8Array([...certBytes, 0]);
    expect(decodesOrDecodeError(decodeCertificate, extended)).toBe('decode-error');
  });

  it('structured fakes: wrong tags, versions, lengths and oversized inputs are DecodeErrors', () => {
    const good = decode(certBytes, 4096) as unknown[]; // the raw tuple, to build structured variants
    const variants: unknown[][] = [
      ['os.heartbeat', ...good.slice(1)],
      [good[0], 2, ...good.slice(2)],
      [...good.slice(0, 6), new Uint8Array(47)],
      [...good.slice(0, 4), 99, ...good.slice(5)], // leaf index beyond the leaf count
      [...good.slice(0, 5), Array.from({ length: 17 }, () => new Uint8Array(32)), good[6]], // path too long
      [...good.slice(0, 5), [new Uint8Array(31)], good[6]], // short sibling hash
      good.slice(0, 6),
    ];
    for (const v of variants) expect(decodesOrDecodeError(decodeCertificate, encode(v))).toBe('decode-error');
    expect(decodesOrDecodeError(decodeCertificate, new Uint8Array(certificateBytesMax + 1))).toBe('decode-error');
    expect(decodesOrDecodeError(decodeCertificate, certBytes)).toBe('ok');
  });
});
