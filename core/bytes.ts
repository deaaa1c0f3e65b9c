/** Small byte helpers shared by every module (no node:* so cores can use them). */

const hexChars = '0123456789abcdef';
const byteHex = Array.from({ length: 256 }, (_, b) => hexChars[b >> 4]! + hexChars[b & 15]!);

/**
 * One flat string. Built by `+=` it was a chain of 64 pieces that V8 keeps as is in a map key it
 * only hashes: ~1.4 KB per 32-byte key (the primary's waiting-request index held ~300 MiB for 4,096
 * requests; session-21 review).
 */
export function toHex(bytes: Uint8Array): string {
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) parts[i] = byteHex[bytes[i]!]!;
  return parts.join('');
}

export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError(`not hex: ${hex.slice(0, 20)}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic order, shorter first on a common prefix. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** 8-byte big-endian encoding of a non-negative safe integer (used inside hashed preimages). */
export function u64be(value: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value));
  return out;
}

export function u32be(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}

/** A plain Uint8Array view (msgpackr and node return Buffers; equality and hashing want the bytes). */
export function asBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** What a kept view may waste of its buffer (a frame's header around one block, say) before it is copied. */
const viewSlackBytes = 1024;

/**
 * Bytes that may be kept: `bytes` itself, or a copy when it is a view into a much larger buffer
 * (a received frame, or msgpackr's shared output buffer). A kept view keeps its whole buffer
 * alive: one certificate kept in a log pinned the 16 MiB push frame it came in (session-22 review).
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  // new Uint8Array, not slice(): a Buffer's slice() is a view, not a copy.
  return bytes.buffer.byteLength - bytes.byteLength > viewSlackBytes ? new Uint8Array(bytes) : bytes;
}
