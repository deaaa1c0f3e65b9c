/**
 * The check an archive server (and its repairer) runs on a certificate stored beside a root
 * block: it must decode, verify under the ring public key, certify a commit, and name this block
 * as the version's VGUID. Without it any writer could park junk bytes beside a root block first
 * and the genuine certificate (the only way restore finds a version) would never be kept.
 * Pure: the verifier keeps the pairing precomputes and a cache of batch signatures already seen,
 * so the k + m copies of one certificate cost one pairing between them.
 */
import { bytesEqual } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { DecodeError } from '../core/errors.ts';
import { CertificateVerifier, decodeCertificate } from '../core/threshold/index.ts';

export type CertificateCheck = (bguid: Uint8Array, certificate: Uint8Array) => boolean;

export function certificateCheckOf(crypto: Crypto, ringPublicKey: Uint8Array): CertificateCheck {
  const verifier = new CertificateVerifier(crypto, ringPublicKey);
  return (bguid, bytes) => {
    let certificate;
    try {
      certificate = decodeCertificate(bytes);
    } catch (error) {
      if (error instanceof DecodeError) return false;
      throw error;
    }
    const s = certificate.statement;
    return s.outcome === 'commit' && bytesEqual(s.vguid, bguid) && verifier.verifyCertificate(certificate).ok;
  };
}
