/**
 * A small msgpack writer for our own records and the messages that carry blocks: the data model's
 * interior and root blocks and update bodies (the apply hot path, where msgpackr's general encoder
 * cost more than the hashing: bench/core.ts, docs/data-model.md), and the dissemination tree's read
 * replies, pushes, snapshots and `blocks` replies (replica/messages.ts). msgpackr grows its buffer as
 * it goes: a 4 MiB read reply was allocated as 4 MiB, then again as 16 MiB, with the bytes so far
 * copied each time. Here the size is summed first and the value written once into a buffer of
 * exactly that size, each byte array copied once. The buffer may start with reserved bytes the
 * caller fills in (a transport's channel byte), so a frame need not be copied again to prepend them.
 *
 * It writes exactly what core/codec.ts's encode writes for the value kinds handled — arrays,
 * non-negative safe integers, byte arrays, strings, booleans, null — so decoding stays
 * core/codec.ts's bounded decoder and a test checks the bytes are identical
 * (test/core/version/fast-msgpack.test.ts).
 */
import { assert } from '../assert.ts';

export type Packable = null | boolean | number | string | Uint8Array | readonly Packable[];

const utf8 = new TextEncoder();
/** Record tags and action names repeat on every call: encode each once. */
const stringCache = new Map<string, Uint8Array>();

function utf8Of(s: string): Uint8Array {
  let bytes = stringCache.get(s);
  if (bytes === undefined) {
    bytes = utf8.encode(s);
    if (s.length <= 16 && stringCache.size < 256) stringCache.set(s, bytes);
  }
  return bytes;
}

/** The msgpack bytes of `value` after `reservedBytes` zero bytes, in a fresh buffer of exactly that size. */
export function packFast(value: Packable, reservedBytes = 0): Uint8Array {
  const out = new Uint8Array(reservedBytes + sizeOf(value));
  const end = write(value, out, new DataView(out.buffer, out.byteOffset, out.byteLength), reservedBytes);
  assert(end === out.length, 'fast-msgpack wrote exactly its computed size');
  return out;
}

function sizeOf(value: Packable): number {
  if (value === null || typeof value === 'boolean') return 1;
  if (typeof value === 'number') return uintSize(value);
  if (typeof value === 'string') {
    const n = utf8Of(value).length;
    return (n < 32 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 5) + n;
  }
  if (value instanceof Uint8Array) return (value.length < 0x100 ? 2 : value.length < 0x10000 ? 3 : 5) + value.length;
  let total = value.length < 0x10 ? 1 : value.length < 0x10000 ? 3 : 5;
  for (const item of value) total += sizeOf(item);
  return total;
}

function uintSize(n: number): number {
  assert(Number.isSafeInteger(n) && n >= 0, 'fast-msgpack writes non-negative safe integers only');
  if (n < 0x80) return 1;
  if (n < 0x100) return 2;
  if (n < 0x10000) return 3;
  // Past 32 bits msgpackr writes a float64, exact for safe integers.
  return n < 0x100000000 ? 5 : 9;
}

/**
 * A length header: the fix form below `fixMax` (fixMax 0: none), then the 8-, 16- and 32-bit
 * forms (`b8` null: none).
 */
function writeHeader(n: number, out: Uint8Array, view: DataView, at: number, fix: number, fixMax: number, b8: number | null, b16: number, b32: number): number {
  if (n < fixMax) {
    out[at] = fix | n;
    return at + 1;
  }
  if (b8 !== null && n < 0x100) {
    out[at] = b8;
    out[at + 1] = n;
    return at + 2;
  }
  if (n < 0x10000) {
    out[at] = b16;
    view.setUint16(at + 1, n);
    return at + 3;
  }
  out[at] = b32;
  view.setUint32(at + 1, n);
  return at + 5;
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
  if (typeof value === 'string' || value instanceof Uint8Array) {
    const bytes = typeof value === 'string' ? utf8Of(value) : value;
    at = typeof value === 'string'
      ? writeHeader(bytes.length, out, view, at, 0xa0, 32, 0xd9, 0xda, 0xdb)
      : writeHeader(bytes.length, out, view, at, 0, 0, 0xc4, 0xc5, 0xc6);
    out.set(bytes, at);
    return at + bytes.length;
  }
  at = writeHeader(value.length, out, view, at, 0x90, 16, null, 0xdc, 0xdd);
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
  if (n < 0x100000000) {
    out[at] = 0xce;
    view.setUint32(at + 1, n);
    return at + 5;
  }
  out[at] = 0xcb;
  view.setFloat64(at + 1, n);
  return at + 9;
}
