/**
 * The real certificate signer: threshold BLS12-381 from core/threshold (Boldyreva; shares dealt
 * with Feldman commitments). Replica i (0-based) holds share index i+1. Hashing to the curve is
 * the costliest step (NOTES.md: ~3 ms), so the hashed point of recent roots is cached and reused
 * by share signing, share checks and the combined-signature check (pass one HashedCache to a
 * replica's signer and verifier for the last).
 */
import { toHex } from '../core/bytes.ts';
import type { KeyShare } from '../core/threshold/dealer.ts';
import { OceanStoreError } from '../core/errors.ts';
import { hashMessage, type HashedMessage } from '../core/threshold/points.ts';
import { combineShares, RingKeyVerifier, signShare } from '../core/threshold/signing.ts';
import type { CertificateSigner, CertificateVerifier } from './certificate-signer.ts';

const hashedCacheMax = 64;

/**
 * Recent messages hashed to G1. One per replica, shared by its share signer and its certificate
 * verifier: a certifier hashes a round's span header once for its share and once more to check the
 * combined signature, ~1.3 ms each with mcl (bench/threshold.ts), unless they share it.
 */
export class HashedCache {
  private readonly map = new Map<string, HashedMessage>();

  /** The hashed point of `message` if it is cached (no hashing). */
  peek(message: Uint8Array): HashedMessage | undefined {
    return this.map.get(toHex(message));
  }

  get(message: Uint8Array): HashedMessage {
    const key = toHex(message);
    let h = this.map.get(key);
    if (!h) {
      if (this.map.size >= hashedCacheMax) this.map.delete(this.map.keys().next().value!);
      h = hashMessage(message);
      this.map.set(key, h);
    }
    return h;
  }
}

export function blsCertificateVerifier(ring: RingKeyVerifier, cache = new HashedCache()): CertificateVerifier {
  return { verify: (message, signature) => ring.verify(cache.get(message), signature) };
}

/** `share` must be this replica's (index = replica + 1), checked against the ring's commitments by the caller. */
export function blsCertificateSigner(share: KeyShare, ring: RingKeyVerifier, cache = new HashedCache()): CertificateSigner {
  return {
    name: 'bls12-381',
    threshold: ring.threshold,
    signShare: (message) => signShare(share, cache.get(message)).signature,
    verifyShare: (replica, message, signature) => ring.verifyShare(cache.get(message), { index: replica + 1, signature }),
    bls: { keyShareFor: () => share, signWith: (keyShare, message) => signShare(keyShare, cache.get(message)).signature },
    combine(_message, shares) {
      try {
        return combineShares(ring.threshold, shares.map((s) => ({ index: s.replica + 1, signature: s.share })));
      } catch (error) {
        // Undecodable shares: return bytes that fail verification, so the caller checks shares one by one.
        if (error instanceof OceanStoreError) return new Uint8Array(48);
        throw error;
      }
    },
  };
}
