// Byte-format vectors (STYLE.md "Tests": a vector for every byte format): the batch header that
// is the BLS message, a certificate, a heartbeat and a resharing record, from a fixed seed. A
// change to any encoding, tag, DST or tree rule changes these bytes and must be deliberate
// (bump formatVersion and say so in docs/threshold.md).
import { describe, expect, it } from 'vitest';
import { toHex } from '../../../core/bytes.ts';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { CertificateVerifier, SignedBatchBuilder, combineShares, encodeCertificate, encodeHeartbeat, encodeResharingMessage, type Certificate, type Heartbeat } from './imports.ts';
import { filled, ringKey } from './fixtures.ts';

const key = ringKey(1, 4, 2);
const ringId = filled(0xa1);
const batch = new SignedBatchBuilder(nodeCrypto, { ringId, epoch: 3, sequence: 1234 }, [
  { kind: 'certificate', statement: { ringId, aguid: filled(1), version: 7, vguid: filled(2), rootFragmentRoot: filled(3), updateDigest: filled(4), outcome: 'commit', timestampMs: 1_700_000_000_000 } },
  { kind: 'certificate', statement: { ringId, aguid: filled(5), version: 2, vguid: new Uint8Array(0), rootFragmentRoot: new Uint8Array(0), updateDigest: filled(6), outcome: 'abort', timestampMs: 1_700_000_000_000 } },
  { kind: 'heartbeat', statement: { ringId, aguid: filled(1), version: 7, vguid: filled(2), timestampMs: 1_700_000_000_001 } },
]);
const proofs = batch.proofs(combineShares(2, key.shares.slice(0, 2).map((s) => batch.signShare(s))));

describe('format vectors', () => {
  it('batch header (the BLS message)', () => {
    expect(toHex(batch.message)).toBe('97af6f732e62617463682d68656164657201c420a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a103cd04d203c420dcfa64b9144d2c34dd903a6c98f8c133f779d7faf2494fff7baf9e2b01b0141b');
  });

  it('certificate and heartbeat encodings, which verify under the fixed-seed ring key', () => {
    expect(toHex(encodeCertificate(proofs[0] as Certificate))).toBe(
      '97ae6f732e6365727469666963617465019ab16f732e636572742d73746174656d656e7401c420a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1c420010101010101010101010101010101010101010101010101010101010101010107c4200202020202020202020202020202020202020202020202020202020202020202c4200303030303030303030303030303030303030303030303030303030303030303c420040404040404040404040404040404040404040404040404040404040404040401cb4278bcfe5680000097af6f732e62617463682d68656164657201c420a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a103cd04d203c420dcfa64b9144d2c34dd903a6c98f8c133f779d7faf2494fff7baf9e2b01b0141b0092c4204327705b816b13036dce319c669c9fe30481a348f71b2ca4adcc6c544fe40b5dc420a91a34defbb69a5922d7b7fb01e1d9691f37d6bc4ce036c0c9c8bb8d4b849801c430ae0dc1ee208507dab057f74eac93b057452d94c3881832e2a2ed61bce23b2d0d8c89a3e8eb76c19c882be9b3aa1e2bd5',
    );
    expect(toHex(encodeHeartbeat(proofs[2] as Heartbeat))).toBe(
      '97ac6f732e6865617274626561740197b66f732e6865617274626561742d73746174656d656e7401c420a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1c420010101010101010101010101010101010101010101010101010101010101010107c4200202020202020202020202020202020202020202020202020202020202020202cb4278bcfe5680100097af6f732e62617463682d68656164657201c420a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a103cd04d203c420dcfa64b9144d2c34dd903a6c98f8c133f779d7faf2494fff7baf9e2b01b0141b0291c42083d5c1e38b2a1fdd515e69b5137f0213ccff58db6e713c56c6fa2a5a4e4692b1c430ae0dc1ee208507dab057f74eac93b057452d94c3881832e2a2ed61bce23b2d0d8c89a3e8eb76c19c882be9b3aa1e2bd5',
    );
    const verifier = new CertificateVerifier(nodeCrypto, key.publicKey);
    expect(verifier.verifyCertificate(proofs[0] as Certificate)).toEqual({ ok: true });
    expect(verifier.verifyHeartbeat(proofs[2] as Heartbeat)).toEqual({ ok: true });
  });

  it('resharing complaint record', () => {
    expect(toHex(encodeResharingMessage({ kind: 'complaint', epoch: 4, dealerIndex: 2, complainerIndex: 3 }))).toBe('95b46f732e726573686172652d636f6d706c61696e7401040203');
  });
});
