/**
 * ring/certificate-signer.ts's CertificateSigner over the real threshold BLS key a node loads from
 * disk (core/threshold/). Replica indices are 0-based in the ring core; BLS share indices are
 * replica + 1, as the dealer numbered them in `cluster init`.
 */
import { combineShares, RingKeyVerifier, signShare, type KeyShare, type RingKeyPublic } from '../core/threshold/index.ts';
import type { CertificateSigner, CertificateVerifier } from '../ring/certificate-signer.ts';

export function blsCertificateSigner(share: KeyShare, verifier: RingKeyVerifier): CertificateSigner {
  return {
    name: 'bls12-381',
    threshold: verifier.threshold,
    signShare: (message) => signShare(share, message).signature,
    verifyShare: (replica, message, signature) => verifier.verifyShare(message, { index: replica + 1, signature }),
    combine(_message, shares) {
      try {
        return combineShares(verifier.threshold, shares.map((s) => ({ index: s.replica + 1, signature: s.share })));
      } catch {
        // An undecodable share: the contract is a result that fails verification, not a throw.
        return new Uint8Array(48);
      }
    },
  };
}

export function blsCertificateVerifier(key: RingKeyPublic, shareCount: number): { verifier: RingKeyVerifier; certificateVerifier: CertificateVerifier } {
  const verifier = new RingKeyVerifier(key, shareCount);
  return { verifier, certificateVerifier: { verify: (message, signature) => verifier.verify(message, signature) } };
}
