/**
 * Tapestry identifiers: 160-bit values written as 40 lowercase hex digits. Nodes and objects share
 * one id space; digit i (0 = most significant) drives routing level i. Inside the core ids are hex
 * strings (cheap map keys and digit access); on the wire they are 20 raw bytes.
 */
import { assert } from '../core/assert.ts';
import { toHex } from '../core/bytes.ts';
import { HashTag, taggedHash } from '../core/crypto.ts';
import type { Crypto } from '../core/crypto.ts';
import { checkArgument } from '../core/errors.ts';

/** 40 lowercase hex digits. */
export type TapestryId = string;

export const idBytes = 20;
export const idDigits = 40;
export const digitBase = 16;

const idPattern = /^[0-9a-f]{40}$/;

export function isTapestryId(value: unknown): value is TapestryId {
  return typeof value === 'string' && idPattern.test(value);
}

/** A node's id: the first 20 bytes of H(tapestry-id tag ‖ ed25519 public key). */
export function tapestryIdOf(crypto: Crypto, publicKey: Uint8Array): TapestryId {
  checkArgument(publicKey instanceof Uint8Array && publicKey.length === 32, 'publicKey', 'a 32-byte ed25519 public key');
  return toHex(taggedHash(crypto, HashTag.tapestryId, publicKey).subarray(0, idBytes));
}

/**
 * An object's id from a GUID (AGUID, BGUID, ...): its first 20 bytes. GUIDs are already uniform
 * hashes, so truncation keeps them uniform and lets anyone compute the id without crypto.
 */
export function objectIdOf(guid: Uint8Array): TapestryId {
  checkArgument(guid instanceof Uint8Array && guid.length >= idBytes, 'guid', `at least ${idBytes} bytes`);
  return toHex(guid.subarray(0, idBytes));
}

/** Two hex digits per byte value: ids are converted on every frame, so no per-digit work. */
const byteHex: readonly string[] = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

export function idFromBytes(bytes: Uint8Array): TapestryId {
  assert(bytes.length === idBytes, 'a tapestry id is 20 bytes');
  let out = '';
  for (let i = 0; i < idBytes; i++) out += byteHex[bytes[i]!]!;
  return out;
}

/** Value of a lowercase hex digit's char code, or -1. */
function nibble(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

export function idToBytes(id: TapestryId): Uint8Array {
  assert(typeof id === 'string' && id.length === idDigits, 'not a tapestry id');
  const out = new Uint8Array(idBytes);
  for (let i = 0; i < idBytes; i++) {
    const hi = nibble(id.charCodeAt(2 * i));
    const lo = nibble(id.charCodeAt(2 * i + 1));
    assert(hi >= 0 && lo >= 0, 'not a tapestry id');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Digit `level` of `id` (0..15). */
export function digitAt(id: TapestryId, level: number): number {
  const c = id.charCodeAt(level);
  return c <= 57 ? c - 48 : c - 87;
}

/** Number of leading hex digits `a` and `b` share (40 when equal). Symmetric. */
export function sharedPrefixLength(a: TapestryId, b: TapestryId): number {
  let i = 0;
  while (i < idDigits && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** Where a node can be reached: its id and the name the host maps to an address. */
export interface NodeRef {
  readonly id: TapestryId;
  readonly name: string;
}
