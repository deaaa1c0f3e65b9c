/**
 * msgpack for the tree messages that carry blocks (read replies, pushes, snapshots, blocks
 * replies), written into one buffer of exactly the right size. The general encoder (msgpackr)
 * grows its buffer as it goes: a 4 MiB read reply was allocated as 4 MiB, then again as 16 MiB,
 * with the bytes so far copied each time, and every such buffer is garbage a moment later. On a
 * ring server serving a large get, that growth and its garbage collection cost more than the
 * bytes themselves. Here the size is summed first and each block is copied exactly once.
 *
 * The bytes are the same as msgpackr's (core/codec.ts settings) for the value kinds handled:
 * null, booleans, safe non-negative integers, byte arrays and arrays of these. The frame may
 * start with reserved bytes the caller fills in (a transport's channel byte), so the frame need
 * not be copied again to prepend them.
 */
import { assert } from '../core/assert.ts';

export type Packable = null | boolean | number | Uint8Array | readonly Packable[];

/** Encodes `value` after `reservedBytes` zero bytes, in a buffer of exactly the total size. */
export function packSized(value: Packable, reservedBytes = 0): Uint8Array {
  const out = new Uint8Array(reservedBytes + sizeOf(value));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const end = write(value, out, view, reservedBytes);
  assert(end === out.length, 'sized msgpack wrote exactly its computed size');
  return out;
}

function sizeOf(value: Packable): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'number') return uintSize(value);
  if (value instanceof Uint8Array) return binHeaderSize(value.length) + value.length;
  let total = value.length < 0x10 ? 1 : value.length < 0x10000 ? 3 : 5;
  for (const item of value) total += sizeOf(item);
  return total;
}

function uintSize(n: number): number {
  assert(Number.isSafeInteger(n) && n >= 0, 'sized msgpack: integers are safe and non-negative');
  if (n < 0x80) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  // Above 32 bits msgpackr writes a float64, exact for safe integers.
  return n <= 0xffffffff ? 5 : 9;
}

function binHeaderSize(length: number): number {
  return length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
}

function write(value: Packable, out: Uint8Array, view: DataView, at: number): number {
  if (value === null) {
    out[at] = 0xc0;
    return at + 1;
  }
  if (typeof value === 'boolean') {
    out[at] = value ? 0xc3 : 0xc2;
    return at + 1;
  }
  if (typeof value === 'number') return writeUint(value, out, view, at);
  if (value instanceof Uint8Array) {
    const n = value.length;
    if (n < 0x100) {
      out[at++] = 0xc4;
      out[at++] = n;
    } else if (n < 0x10000) {
      out[at++] = 0xc5;
      view.setUint16(at, n);
      at += 2;
    } else {
      out[at++] = 0xc6;
      view.setUint32(at, n);
      at += 4;
    }
    out.set(value, at);
    return at + n;
  }
  const n = value.length;
  if (n < 0x10) {
    out[at++] = 0x90 | n;
  } else if (n < 0x10000) {
    out[at++] = 0xdc;
    view.setUint16(at, n);
    at += 2;
  } else {
    out[at++] = 0xdd;
    view.setUint32(at, n);
    at += 4;
  }
  for (const item of value) at = write(item, out, view, at);
  return at;
}

function writeUint(n: number, out: Uint8Array, view: DataView, at: number): number {
  if (n < 0x80) {
    out[at] = n;
    return at + 1;
  }
  if (n < 0x100) {
    out[at] = 0xcc;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = 0xcd;
    view.setUint16(at + 1, n);
    return at + 3;
  }
  if (n <= 0xffffffff) {
    out[at] = 0xce;
    view.setUint32(at + 1, n);
    return at + 5;
  }
  out[at] = 0xcb;
  view.setFloat64(at + 1, n);
  return at + 9;
}
