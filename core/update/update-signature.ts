/**
 * Signing, verifying and digesting updates. The signature and the digest both cover the encoded
 * unsigned body (HashTag.update), so the digest names exactly what the writer signed.
 */
import { bytesEqual } from '../bytes.ts';
import { type Crypto, HashTag, type Signer, signTagged, taggedHash, verifyTagged } from '../crypto.ts';
import { checkArgument } from '../errors.ts';
import type { UnsignedUpdate, Update } from './update.ts';
import { encodeUnsignedUpdate } from './update-codec.ts';

export function signUpdate(crypto: Crypto, signer: Signer, unsigned: UnsignedUpdate): Update {
  checkArgument(bytesEqual(signer.publicKey, unsigned.writerPublicKey), 'unsigned.writerPublicKey', "the signer's public key");
  checkArgument(unsigned.clauses.length > 0, 'unsigned.clauses', 'at least one clause');
  const signature = signTagged(crypto, signer, HashTag.update, encodeUnsignedUpdate(unsigned));
  return { ...unsigned, signature };
}

/** True iff the update is signed by its writerPublicKey. Never throws. */
export function verifyUpdateSignature(crypto: Crypto, update: Update): boolean {
  return verifyTagged(crypto, update.writerPublicKey, HashTag.update, encodeUnsignedUpdate(update), update.signature);
}

/** H(update tag ‖ unsigned body): what root blocks, logs and certificates name the update by. */
export function updateDigest(crypto: Crypto, update: UnsignedUpdate): Uint8Array {
  return taggedHash(crypto, HashTag.update, encodeUnsignedUpdate(update));
}
