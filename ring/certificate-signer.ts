/**
 * The threshold signature a ring uses for certificates, injected so the simulator can run most
 * seeds with a fast fake and a share of them (and the benchmark) with real BLS (ring/bls-signer.ts).
 * Replica indices are 0-based here; the BLS share index is replica + 1.
 */
import { bytesEqual, u32be } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import type { KeyShare } from '../core/threshold/dealer.ts';

export interface IndexedShare {
  readonly replica: number;
  readonly share: Uint8Array;
}

export interface CertificateSigner {
  readonly name: string;
  /** Shares needed to combine (f+1). */
  readonly threshold: number;
  /** This replica's share over `message` (a batch Merkle root). */
  signShare(message: Uint8Array): Uint8Array;
  /** True iff `share` is replica `replica`'s valid share over `message`. Never throws. */
  verifyShare(replica: number, message: Uint8Array, share: Uint8Array): boolean;
  /**
   * Combines exactly `threshold` shares from distinct replicas over `message`, unverified: with a
   * bad share among them the result fails CertificateVerifier.verify.
   */
  combine(message: Uint8Array, shares: readonly IndexedShare[]): Uint8Array;
  /**
   * Only threshold BLS signers, whose work a host may do on another thread (ring/config.ts
   * certificateWork): `keyShareFor` is the key share that signs `message` (null if this replica
   * holds none for its epoch: it then signs nothing), `signWith` signs with a given one (the bytes
   * signShare gives, whenever it runs: core/threshold signShare). combine is combineShares with
   * index replica + 1, which a thread can do too.
   */
  readonly bls?: {
    keyShareFor(message: Uint8Array): KeyShare | null;
    signWith(keyShare: KeyShare, message: Uint8Array): Uint8Array;
  };
}

/** What anyone holding the ring public key can do. */
export interface CertificateVerifier {
  /** True iff `signature` is the ring's signature over `message`. Never throws. */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

const fakeRingTag = new TextEncoder().encode('fake-ring-signature');
const fakeShareTag = new TextEncoder().encode('fake-ring-share');
const fakeBadTag = new TextEncoder().encode('fake-ring-bad-combination');

/**
 * A fast stand-in with the same failure behaviour as the real scheme (a bad share makes the
 * combined signature fail to verify, and only a per-share check names the sender). It is not
 * unforgeable: in the simulator Byzantine behaviours are our own code and never forge it.
 */
export function fakeCertificateSigner(crypto: Crypto, replica: number, threshold: number): CertificateSigner {
  const shareOf = (index: number, message: Uint8Array): Uint8Array => crypto.sha256([fakeShareTag, u32be(index), message]);
  return {
    name: 'fake',
    threshold,
    signShare: (message) => shareOf(replica, message),
    verifyShare: (index, message, share) => bytesEqual(shareOf(index, message), share),
    combine(message, shares) {
      const good = shares.every((s) => bytesEqual(shareOf(s.replica, message), s.share));
      return good ? crypto.sha256([fakeRingTag, message]) : crypto.sha256([fakeBadTag, message]);
    },
  };
}

export function fakeCertificateVerifier(crypto: Crypto): CertificateVerifier {
  return { verify: (message, signature) => bytesEqual(crypto.sha256([fakeRingTag, message]), signature) };
}
