/**
 * The crypto a core may use, injected so cores stay pure (no node:* imports): the real runtime
 * passes the node:crypto implementation (runtime/node-crypto.ts, ~16x faster than pure JS here),
 * tests cross-check it against the pure-JS one (core/noble-crypto.ts), and the simulator may pass
 * a fast fake for most seeds (sim/fake-crypto.ts) and the real one for a share of them.
 */
import { assert } from './assert.ts';
import { concatBytes } from './bytes.ts';

/** One-byte domain separation tags: a hash of one kind can never be confused with another. */
export const HashTag = {
  dataBlock: 1,
  interiorBlock: 2,
  rootBlock: 3,
  update: 4,
  certificate: 5,
  fragmentLeaf: 6,
  fragmentNode: 7,
  tapestryId: 8,
  aguid: 9,
  identity: 10,
  batchLeaf: 11,
  batchNode: 12,
  ringMessage: 13,
  checkpoint: 14,
  objectTable: 15,
  acl: 16,
  heartbeat: 17,
  reply: 18,
  blsMessage: 19,
  receipt: 20,
  tapestryPointer: 21,
} as const;
export type HashTag = (typeof HashTag)[keyof typeof HashTag];

export const hashBytes = 32;
export const ed25519PublicKeyBytes = 32;
export const ed25519SecretKeyBytes = 32;
export const ed25519SignatureBytes = 64;

export interface Crypto {
  /** Name for logs and benchmark tables ('node', 'noble', 'fake'). */
  readonly name: string;
  /** SHA-256 of the concatenation of `chunks` (no copy into one buffer needed). */
  sha256(chunks: readonly Uint8Array[]): Uint8Array;
  /** Ed25519 public key of a 32-byte secret seed. */
  ed25519PublicKey(secretKey: Uint8Array): Uint8Array;
  /** Ed25519 signature (64 bytes) of `message` under a 32-byte secret seed. */
  ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array;
  /** True iff `signature` is a valid Ed25519 signature of `message` by `publicKey`. Never throws. */
  ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

/** H(tag ‖ parts...): the one hashing entry point for identifiers. */
export function taggedHash(crypto: Crypto, tag: HashTag, ...parts: Uint8Array[]): Uint8Array {
  return crypto.sha256([Uint8Array.of(tag), ...parts]);
}

/** An identity = H(identity-tag ‖ ed25519 public key). Servers and clients are named by it. */
export function identityOf(crypto: Crypto, publicKey: Uint8Array): Uint8Array {
  assert(publicKey.length === ed25519PublicKeyBytes, 'identityOf wants a 32-byte ed25519 key');
  return taggedHash(crypto, HashTag.identity, publicKey);
}

/** AGUID = H(aguid-tag ‖ owner public key ‖ utf8(name)). */
export function aguidOf(crypto: Crypto, ownerPublicKey: Uint8Array, name: string): Uint8Array {
  assert(ownerPublicKey.length === ed25519PublicKeyBytes, 'aguidOf wants a 32-byte ed25519 key');
  return taggedHash(crypto, HashTag.aguid, ownerPublicKey, new TextEncoder().encode(name));
}

/** A signing identity whose secret stays inside; what cores get instead of raw key bytes. */
export interface Signer {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export function signerOf(crypto: Crypto, secretKey: Uint8Array): Signer {
  assert(secretKey.length === ed25519SecretKeyBytes, 'an ed25519 secret key is 32 bytes');
  const publicKey = crypto.ed25519PublicKey(secretKey);
  return { publicKey, sign: (message) => crypto.ed25519Sign(secretKey, message) };
}

/** Signs H(tag ‖ message) rather than the message, so a signature of one kind is never valid as another. */
export function signTagged(crypto: Crypto, signer: Signer, tag: HashTag, message: Uint8Array): Uint8Array {
  return signer.sign(concatBytes([Uint8Array.of(tag), message]));
}

export function verifyTagged(
  crypto: Crypto,
  publicKey: Uint8Array,
  tag: HashTag,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (publicKey.length !== ed25519PublicKeyBytes || signature.length !== ed25519SignatureBytes) return false;
  return crypto.ed25519Verify(publicKey, concatBytes([Uint8Array.of(tag), message]), signature);
}
