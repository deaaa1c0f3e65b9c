/**
 * A CertificateSigner whose key follows the epoch named in the batch header it signs: the same
 * replica signs batch ≤ B with its epoch-e share and batch > B with its epoch-(e+1) share, and
 * checks a peer's share against that peer's verification key of the header's epoch. Combining
 * is Lagrange at zero by share index, the same for every epoch; the combined signature verifies
 * under the unchanged ring public key, so the ring's CertificateVerifier needs no change.
 */
import { decode } from '../core/codec.ts';
import type { KeyShare, RingKeyPublic } from '../core/threshold/dealer.ts';
import type { HashedMessage } from '../core/threshold/points.ts';
import { combineShares, RingKeyVerifier, signShare } from '../core/threshold/signing.ts';
import { batchHeaderFromTuple } from '../core/threshold/statements.ts';
import { HashedCache } from './bls-certificate-signer.ts';
import type { CertificateSigner } from './certificate-signer.ts';

export interface EpochKeys {
  /** This replica's share for `epoch`, or null (not a member, not computed yet, or already deleted). */
  shareFor(epoch: number): KeyShare | null;
  /** The public key (commitments) of `epoch`, or undefined if the ring has not decided it. */
  keyOf(epoch: number): RingKeyPublic | undefined;
}

const verifiersMax = 4;
const invalidSignature = new Uint8Array(48);

/** The epoch a batch header names; null if the bytes are not a batch header. */
export function epochOfBatchMessage(message: Uint8Array): number | null {
  try {
    return batchHeaderFromTuple(decode(message, 512, 'batch header')).epoch;
  } catch {
    return null;
  }
}

export class EpochCertificateSigner implements CertificateSigner {
  readonly name = 'bls12-381-epochs';
  private readonly verifiers = new Map<number, RingKeyVerifier>();
  constructor(
    readonly threshold: number,
    private readonly shareCount: number,
    private readonly keys: EpochKeys,
    /** Shared with the replica's certificate verifier (bls-certificate-signer.ts). */
    private readonly hashed = new HashedCache(),
  ) {}

  signShare(message: Uint8Array): Uint8Array {
    const share = this.bls.keyShareFor(message);
    // An invalid share is what a missing key amounts to: combiners drop it and use others.
    return share ? this.bls.signWith(share, message) : invalidSignature;
  }

  readonly bls = {
    keyShareFor: (message: Uint8Array): KeyShare | null => {
      const epoch = epochOfBatchMessage(message);
      return epoch === null ? null : this.keys.shareFor(epoch);
    },
    signWith: (keyShare: KeyShare, message: Uint8Array): Uint8Array => signShare(keyShare, this.hash(message)).signature,
  };

  verifyShare(replica: number, message: Uint8Array, share: Uint8Array): boolean {
    const epoch = epochOfBatchMessage(message);
    const verifier = epoch === null ? undefined : this.verifierOf(epoch);
    return verifier !== undefined && verifier.verifyShare(this.hash(message), { index: replica + 1, signature: share });
  }

  combine(_message: Uint8Array, shares: readonly { replica: number; share: Uint8Array }[]): Uint8Array {
    try {
      return combineShares(this.threshold, shares.map((s) => ({ index: s.replica + 1, signature: s.share })));
    } catch {
      return invalidSignature;
    }
  }

  private verifierOf(epoch: number): RingKeyVerifier | undefined {
    let v = this.verifiers.get(epoch);
    if (v) return v;
    const key = this.keys.keyOf(epoch);
    if (!key) return undefined;
    if (this.verifiers.size >= verifiersMax) this.verifiers.delete(Math.min(...this.verifiers.keys()));
    v = new RingKeyVerifier(key, this.shareCount);
    this.verifiers.set(epoch, v);
    return v;
  }

  private hash(message: Uint8Array): HashedMessage {
    return this.hashed.get(message);
  }
}
