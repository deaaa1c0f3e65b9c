// Certificates and heartbeats (DESIGN.md "Certificates and heartbeats", issue 4): one threshold
// signature per batch root, a Merkle path per entry; any change to statement, header, path,
// signature or key is rejected with a named reason.
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../core/bytes.ts';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { Prng } from '../../../sim/prng.ts';
import {
  CertificateVerifier,
  RingKeyVerifier,
  SignedBatchBuilder,
  decodeCertificate,
  decodeHeartbeat,
  encodeCertificate,
  encodeHeartbeat,
  verifyCertificate,
  verifyHeartbeat,
  type BatchEntry,
  type Certificate,
  type Heartbeat,
} from './imports.ts';
import { filled, heartbeatStatement, ringId, ringKey, statement } from './fixtures.ts';

const key = ringKey(21, 4, 2);
const entries: BatchEntry[] = [
  ...Array.from({ length: 5 }, (_, i) => ({ kind: 'certificate' as const, statement: statement(10 + i) })),
  { kind: 'certificate', statement: statement(15, { outcome: 'abort', vguid: new Uint8Array(0), rootFragmentRoot: new Uint8Array(0) }) },
  { kind: 'heartbeat', statement: heartbeatStatement(14, 1_700_000_000_500) },
];
const batch = new SignedBatchBuilder(nodeCrypto, { ringId, epoch: 0, sequence: 77 }, entries);
const ringVerifier = new RingKeyVerifier(key, 4);
const signature = ringVerifier.combine(batch.hashed, key.shares.slice(0, 2).map((s) => batch.signShare(s))).signature;
const proofs = batch.proofs(signature);
const cert = proofs[3] as Certificate;
const heartbeat = proofs[6] as Heartbeat;
const verifier = new CertificateVerifier(nodeCrypto, key.publicKey);

describe('certificates', () => {
  it('every certificate of a signed batch verifies under the ring public key, commit and abort alike', () => {
    for (let i = 0; i < 6; i++) expect(verifier.verifyCertificate(proofs[i] as Certificate)).toEqual({ ok: true });
    expect(verifyCertificate(nodeCrypto, key.publicKey, proofs[5] as Certificate)).toEqual({ ok: true });
  });

  it.each([
    ['version', { version: 999 }],
    ['vguid', { vguid: filled(9) }],
    ['outcome', { outcome: 'abort' as const }],
    ['update digest', { updateDigest: filled(8) }],
    ['root fragment root', { rootFragmentRoot: new Uint8Array(0) }],
    ['timestamp', { timestampMs: 1 }],
    ['aguid', { aguid: filled(4) }],
  ])('an altered statement (%s) is rejected: its leaf is not in the signed batch', (_what, change) => {
    const forged: Certificate = { ...cert, statement: { ...cert.statement, ...change } };
    expect(verifier.verifyCertificate(forged)).toMatchObject({ ok: false, reason: 'bad-merkle-path' });
  });

  it('a statement for another ring is rejected as a ring mismatch', () => {
    const forged: Certificate = { ...cert, statement: { ...cert.statement, ringId: filled(0xb2) } };
    expect(verifier.verifyCertificate(forged)).toMatchObject({ ok: false, reason: 'ring-mismatch' });
  });

  it('an altered path or leaf index is rejected', () => {
    const path = cert.path.map((p) => p.slice());
    path[0]![5]! ^= 0x80;
    expect(verifier.verifyCertificate({ ...cert, path })).toMatchObject({ ok: false, reason: 'bad-merkle-path' });
    expect(verifier.verifyCertificate({ ...cert, leafIndex: 2 })).toMatchObject({ ok: false, reason: 'bad-merkle-path' });
    expect(verifier.verifyCertificate({ ...cert, path: cert.path.slice(1) })).toMatchObject({ ok: false, reason: 'bad-merkle-path' });
  });

  it('an altered header (sequence, epoch) or signature is rejected by the pairing check', () => {
    expect(verifier.verifyCertificate({ ...cert, header: { ...cert.header, sequence: 78 } })).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifier.verifyCertificate({ ...cert, header: { ...cert.header, epoch: 1 } })).toMatchObject({ ok: false, reason: 'bad-signature' });
    const sig = signature.slice();
    sig[47]! ^= 1;
    expect(verifier.verifyCertificate({ ...cert, signature: sig })).toMatchObject({ ok: false });
    expect(verifier.verifyCertificate({ ...cert, signature: new Uint8Array(48) })).toMatchObject({ ok: false });
  });

  it('a certificate signed by another ring key is rejected, and a malformed key is a named failure', () => {
    const otherKey = ringKey(22, 4, 2);
    expect(verifyCertificate(nodeCrypto, otherKey.publicKey, cert)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(verifyCertificate(nodeCrypto, new Uint8Array(96), cert)).toMatchObject({ ok: false, reason: 'malformed' });
  });

  it('a heartbeat cannot pass as a certificate, nor a certificate as a heartbeat (distinct record tags)', () => {
    expect(verifier.verifyHeartbeat(heartbeat)).toEqual({ ok: true });
    expect(verifyHeartbeat(nodeCrypto, key.publicKey, { ...heartbeat, timestampMs: 0 } as Heartbeat)).toEqual({ ok: true }); // extra field ignored
    expect(verifier.verifyHeartbeat({ ...heartbeat, statement: { ...heartbeat.statement, timestampMs: 1_800_000_000_000 } })).toMatchObject({ ok: false, reason: 'bad-merkle-path' });
    const asCert = { ...heartbeat, statement: { ...statement(14), timestampMs: heartbeat.statement.timestampMs } } as Certificate;
    expect(verifier.verifyCertificate(asCert)).toMatchObject({ ok: false });
  });

  it('a statement object with bad field types is reported malformed, not thrown', () => {
    const broken = { ...cert, statement: { ...cert.statement, version: -1 } };
    expect(verifier.verifyCertificate(broken)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifier.verifyCertificate({ ...cert, header: { ...cert.header, leafCount: 0 } })).toMatchObject({ ok: false, reason: 'malformed' });
  });
});

describe('certificate and heartbeat codecs', () => {
  it('round-trip byte for byte and still verify', () => {
    const bytes = encodeCertificate(cert);
    const back = decodeCertificate(bytes);
    expect(back).toEqual(cert);
    expect(toHex(encodeCertificate(back))).toBe(toHex(bytes));
    expect(verifyCertificate(nodeCrypto, key.publicKey, back)).toEqual({ ok: true });
    const hb = decodeHeartbeat(encodeHeartbeat(heartbeat));
    expect(hb).toEqual(heartbeat);
    expect(verifyHeartbeat(nodeCrypto, key.publicKey, hb)).toEqual({ ok: true });
  });

  it('a certificate stays small: under 600 bytes for a batch of 7', () => {
    expect(encodeCertificate(cert).length).toBeLessThan(600);
  });
});

describe('many certificates at once, and heartbeat freshness', () => {
  const batches = [1, 2, 3].map((seq) => new SignedBatchBuilder(nodeCrypto, { ringId, epoch: 0, sequence: 200 + seq }, [0, 1, 2].map((i) => ({ kind: 'certificate' as const, statement: statement(seq * 10 + i) }))));
  const certs = batches.flatMap((b) => b.proofs(ringVerifier.combine(b.hashed, key.shares.slice(2).map((s) => b.signShare(s))).signature) as Certificate[]);

  it('verifies a history of certificates from several batches together', () => {
    const v = new CertificateVerifier(nodeCrypto, key.publicKey);
    expect(v.verifyCertificates(new Prng(3), certs).every((r) => r.ok)).toBe(true);
  });

  it('pins each failure on the right certificate: a swapped batch signature and an altered statement', () => {
    const mixed = [...certs];
    mixed[4] = { ...certs[4]!, signature: certs[0]!.signature }; // batch 2's entry with batch 1's signature
    mixed[7] = { ...certs[7]!, statement: { ...certs[7]!.statement, version: 1 } };
    const results = new CertificateVerifier(nodeCrypto, key.publicKey).verifyCertificates(new Prng(4), mixed);
    expect(results.map((r) => (r.ok ? 'ok' : r.reason))).toEqual(['ok', 'ok', 'ok', 'ok', 'bad-signature', 'ok', 'ok', 'bad-merkle-path', 'ok']);
  });

  it('a reader demanding "no older than T" rejects an older heartbeat as stale, and accepts a fresh one', () => {
    expect(verifier.verifyHeartbeat(heartbeat, heartbeat.statement.timestampMs)).toEqual({ ok: true });
    expect(verifier.verifyHeartbeat(heartbeat, heartbeat.statement.timestampMs + 1)).toMatchObject({ ok: false, reason: 'stale' });
  });
});
