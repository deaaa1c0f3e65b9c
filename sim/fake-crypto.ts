/**
 * Fast fake signatures for the simulator (real SHA-256). A signature is H(secret ‖ message), and
 * verification looks the secret up from the public key in a process-wide registry filled when a
 * public key is derived. Within the simulation it is unforgeable as long as Byzantine behaviours
 * (which are our own code) do not read the registry; it is ~100x cheaper than ed25519, so most
 * seeds use it and a share of seeds runs the real node:crypto suite (the tests say which).
 */
import { createHash } from 'node:crypto';
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';

const secretOfPublic = new Map<string, Uint8Array>();

function sha256(chunks: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const c of chunks) h.update(c);
  const d = h.digest();
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

const pubTag = new TextEncoder().encode('fake-ed25519-public');

function fakeSign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  const first = sha256([secretKey, message]);
  const out = new Uint8Array(64);
  out.set(first, 0);
  out.set(sha256([first, secretKey]), 32);
  return out;
}

export const fakeCrypto: Crypto = {
  name: 'fake',
  sha256,
  ed25519PublicKey(secretKey) {
    const pub = sha256([pubTag, secretKey]);
    secretOfPublic.set(toHex(pub), secretKey);
    return pub;
  },
  ed25519Sign: fakeSign,
  ed25519Verify(publicKey, message, signature) {
    const secret = secretOfPublic.get(toHex(publicKey));
    if (!secret || signature.length !== 64) return false;
    return bytesEqual(fakeSign(secret, message), signature);
  },
};
