/**
 * Pure-JS crypto (@noble): the reference the node:crypto implementation is checked against, and a
 * fallback where node:crypto is absent. ~16x slower here, so the runtime does not use it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import type { Crypto } from './crypto.ts';

export const nobleCrypto: Crypto = {
  name: 'noble',
  sha256(chunks) {
    const h = sha256.create();
    for (const c of chunks) h.update(c);
    return h.digest();
  },
  ed25519PublicKey: (secretKey) => ed25519.getPublicKey(secretKey),
  ed25519Sign: (secretKey, message) => ed25519.sign(message, secretKey),
  ed25519Verify(publicKey, message, signature) {
    try {
      return ed25519.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  },
};
