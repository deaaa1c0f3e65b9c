/**
 * BLS12-381 points as this module uses them: the short-signature scheme (48-byte G1 signatures,
 * 96-byte G2 keys), strict decoding (on curve, in the prime-order subgroup, not the identity),
 * and hashing to G1 under a domain tag that belongs to oceanstore ring certificates only, so a
 * ring signature can never be replayed as a signature of any other BLS application.
 */
import { bls12_381 } from '@noble/curves/bls12-381.js';
import type { WeierstrassPoint } from '@noble/curves/abstract/weierstrass.js';
import type { Fp2 } from '@noble/curves/abstract/tower.js';
import { asBytes } from '../bytes.ts';
import { checkArgument } from '../errors.ts';
import { blsEngine } from './accelerator.ts';

export type G1Point = WeierstrassPoint<bigint>;
export type G2Point = WeierstrassPoint<Fp2>;
export const G1 = bls12_381.G1.Point;
export const G2 = bls12_381.G2.Point;

export const signatureBytes = 48;
export const publicKeyBytes = 96;
/** RFC 9380 style tag: application, version, and the exact hash-to-curve suite. */
export const ringSignatureDst = 'OCEANSTORE-RING-CERT-V01-CS01-with-BLS12381G1_XMD:SHA-256_SSWU_RO_';

/**
 * A message already hashed onto G1. Hash-to-curve costs about as much as a share signature, so
 * a replica that signs, checks peers' shares and combines for one batch hashes the message once.
 */
export interface HashedMessage {
  readonly kind: 'hashed-message';
  readonly point: G1Point;
  /** The point's 48 compressed bytes, when an engine (accelerator.ts) made it. */
  readonly bytes?: Uint8Array;
}

export function hashMessage(message: Uint8Array): HashedMessage {
  const engine = blsEngine();
  if (engine) {
    const bytes = engine.hashToG1(message, ringSignatureDst);
    let point: G1Point | null = null;
    // The reference code paths decode the point only if they run (slow paths, resharing checks).
    return {
      kind: 'hashed-message',
      bytes,
      get point(): G1Point {
        return (point ??= G1.fromBytes(bytes));
      },
    };
  }
  return { kind: 'hashed-message', point: bls12_381.shortSignatures.hash(message, ringSignatureDst) };
}

/** The hashed message as 48 compressed bytes (what an engine works on). */
export function hashedBytesOf(message: Uint8Array | HashedMessage): Uint8Array {
  const hashed = message instanceof Uint8Array ? hashMessage(message) : message;
  return hashed.bytes ?? g1ToBytes(hashedPointOf(hashed));
}

export function hashedPointOf(message: Uint8Array | HashedMessage): G1Point {
  if (message instanceof Uint8Array) return hashMessage(message).point;
  checkArgument(message?.kind === 'hashed-message' && message.point instanceof G1, 'message', 'bytes or a HashedMessage from hashMessage()');
  return message.point;
}

export function g1ToBytes(point: G1Point): Uint8Array {
  return asBytes(point.toBytes(true));
}

export function g2ToBytes(point: G2Point): Uint8Array {
  return asBytes(point.toBytes(true));
}

/** A valid, non-identity subgroup point from 48 compressed bytes, or null. Never throws. */
export function g1FromBytes(bytes: Uint8Array): G1Point | null {
  if (!(bytes instanceof Uint8Array) || bytes.length !== signatureBytes) return null;
  try {
    const point = G1.fromBytes(bytes);
    point.assertValidity();
    return point.is0() ? null : point;
  } catch {
    return null;
  }
}

/** A valid, non-identity subgroup point from 96 compressed bytes, or null. Never throws. */
export function g2FromBytes(bytes: Uint8Array): G2Point | null {
  if (!(bytes instanceof Uint8Array) || bytes.length !== publicKeyBytes) return null;
  try {
    const point = G2.fromBytes(bytes);
    point.assertValidity();
    return point.is0() ? null : point;
  } catch {
    return null;
  }
}
