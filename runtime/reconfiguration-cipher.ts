/**
 * Seals resharing sub-shares to a ring member's ed25519 identity (ring/reconfiguration-codec.ts
 * SubShareCipher): the identity key is mapped to x25519 (the birational map, @noble/curves'
 * toMontgomery), the dealer uses a fresh ephemeral x25519 key, the AEAD key is SHA-256 of a domain
 * tag, the shared secret and both public keys, and ChaCha20-Poly1305 (node:crypto) seals the
 * 32-byte scalar with the (epoch, dealer, member) context as associated data. So a sealed
 * sub-share opens only for its member and only as the sub-share of that dealer in that round.
 * Layout: ephemeral public key (32) ‖ nonce (12) ‖ ciphertext (32) ‖ tag (16).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import type { SubShareCipher } from '../ring/reconfiguration-codec.ts';

const domain = Buffer.from('oceanstore/reshare-seal/v1');
const tagBytes = 16;
const nonceBytes = 12;

function aeadKey(shared: Uint8Array, ephemeralPublic: Uint8Array, recipientPublic: Uint8Array): Buffer {
  return createHash('sha256').update(domain).update(shared).update(ephemeralPublic).update(recipientPublic).digest();
}

/**
 * The cipher of the member whose ed25519 secret seed is `secretKey` (it opens what was sealed to
 * it). `randomBytesOf` is injectable so a simulation run stays reproducible.
 */
export function subShareCipher(secretKey: Uint8Array, randomBytesOf: (count: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n))): SubShareCipher {
  const mySecret = ed25519.utils.toMontgomerySecret(secretKey);
  const myPublic = x25519.getPublicKey(mySecret);
  return {
    seal(recipientPublicKey, plaintext, context) {
      const recipient = ed25519.utils.toMontgomery(recipientPublicKey);
      const ephemeralSecret = randomBytesOf(32);
      const ephemeralPublic = x25519.getPublicKey(ephemeralSecret);
      const key = aeadKey(x25519.getSharedSecret(ephemeralSecret, recipient), ephemeralPublic, recipient);
      const nonce = randomBytesOf(nonceBytes);
      const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: tagBytes });
      cipher.setAAD(context, { plaintextLength: plaintext.length });
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return new Uint8Array(Buffer.concat([ephemeralPublic, nonce, body, cipher.getAuthTag()]));
    },
    open(sealed, context) {
      if (sealed.length < 32 + nonceBytes + tagBytes) return null;
      try {
        const ephemeralPublic = sealed.subarray(0, 32);
        const nonce = sealed.subarray(32, 32 + nonceBytes);
        const body = sealed.subarray(32 + nonceBytes, sealed.length - tagBytes);
        const key = aeadKey(x25519.getSharedSecret(mySecret, ephemeralPublic), ephemeralPublic, myPublic);
        const decipher = createDecipheriv('chacha20-poly1305', key, nonce, { authTagLength: tagBytes });
        decipher.setAAD(context, { plaintextLength: body.length });
        decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
        return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
      } catch {
        return null;
      }
    },
  };
}
