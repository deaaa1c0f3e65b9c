import { describe, expect, it } from 'vitest';
import { Prng } from '../../../sim/prng.ts';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { dealRingKey, verifyKeyShare, RingKeyVerifier, SignedBatchBuilder, verifyCertificate, encodeCertificate, decodeCertificate, type Certificate } from '../../../core/threshold/index.ts';

describe('smoke', () => {
  it('deals, signs a batch, combines, and the certificate verifies', () => {
    const key = dealRingKey(new Prng(1), 4, 2);
    expect(key.shares.every((s) => verifyKeyShare(s, key.commitments))).toBe(true);
    const ringId = new Uint8Array(32).fill(7);
    const stmt = { ringId, aguid: new Uint8Array(32).fill(1), version: 3, vguid: new Uint8Array(32).fill(2), rootFragmentRoot: new Uint8Array(0), updateDigest: new Uint8Array(32).fill(3), outcome: 'commit' as const, timestampMs: 1000 };
    const batch = new SignedBatchBuilder(nodeCrypto, { ringId, epoch: 0, sequence: 5 }, [{ kind: 'certificate', statement: stmt }, { kind: 'certificate', statement: { ...stmt, version: 4 } }, { kind: 'certificate', statement: { ...stmt, version: 5 } }]);
    const verifier = new RingKeyVerifier(key, 4);
    const shares = key.shares.slice(1, 3).map((s) => batch.signShare(s));
    const result = verifier.combine(batch.hashed, shares);
    const cert = batch.certificateAt(2, result.signature);
    expect(verifyCertificate(nodeCrypto, key.publicKey, cert)).toEqual({ ok: true });
    const again = decodeCertificate(encodeCertificate(cert)) as Certificate;
    expect(verifyCertificate(nodeCrypto, key.publicKey, again)).toEqual({ ok: true });
  });
});
