/**
 * node:crypto implementation of core/crypto.ts. KeyObjects are cached because building one
 * costs more than the signature itself (NOTES.md: 46 µs sign / 116 µs verify with caching).
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';

const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');
const cacheEntriesMax = 4096;

function boundedCache<V>(): { get(k: string): V | undefined; set(k: string, v: V): void } {
  const map = new Map<string, V>();
  return {
    get: (k) => map.get(k),
    set(k, v) {
      if (map.size >= cacheEntriesMax) map.delete(map.keys().next().value as string);
      map.set(k, v);
    },
  };
}

const privateKeys = boundedCache<KeyObject>();
const publicKeys = boundedCache<KeyObject | null>();

function privateKeyOf(secretKey: Uint8Array): KeyObject {
  const id = toHex(secretKey);
  let key = privateKeys.get(id);
  if (!key) {
    key = createPrivateKey({ key: Buffer.concat([pkcs8Prefix, secretKey]), format: 'der', type: 'pkcs8' });
    privateKeys.set(id, key);
  }
  return key;
}

function publicKeyOf(publicKey: Uint8Array): KeyObject | null {
  const id = toHex(publicKey);
  let key = publicKeys.get(id);
  if (key === undefined) {
    try {
      key = createPublicKey({ key: Buffer.concat([spkiPrefix, publicKey]), format: 'der', type: 'spki' });
    } catch {
      key = null; // not a point on the curve: every verification under it fails
    }
    publicKeys.set(id, key);
  }
  return key;
}

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export const nodeCrypto: Crypto = {
  name: 'node',
  sha256(chunks) {
    const h = createHash('sha256');
    for (const c of chunks) h.update(c);
    return u8(h.digest());
  },
  ed25519PublicKey(secretKey) {
    const der = createPublicKey(privateKeyOf(secretKey)).export({ format: 'der', type: 'spki' });
    return u8(der.subarray(spkiPrefix.length));
  },
  ed25519Sign: (secretKey, message) => u8(sign(null, message, privateKeyOf(secretKey))),
  ed25519Verify(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    const key = publicKeyOf(publicKey);
    if (!key) return false;
    try {
      return verify(null, message, key, signature);
    } catch {
      return false;
    }
  },
};
