/**
 * A small msgpack writer for the data model's own records (interior blocks, root blocks, update
 * bodies), used on the apply hot path where msgpackr's general encoder cost more than the hashing
 * (measured: bench/core.ts, docs/data-model.md). It writes exactly what core/codec.ts's encode
 * writes for the value kinds these records use — arrays, non-negative safe integers, byte arrays,
 * strings, null — so decoding stays core/codec.ts's bounded decoder and a test checks the bytes
 * are identical (test/core/version/fast-msgpack.test.ts).
 */
import { assert } from '../assert.ts';

export type Packable = number | string | Uint8Array | null | readonly Packable[];

let scratch = new Uint8Array(64 * 1024);
let scratchView = new DataView(scratch.buffer);
let at = 0;
const utf8 = new TextEncoder();

function reserve(bytes: number): void {
  if (at + bytes <= scratch.length) return;
  let size = scratch.length * 2;
  while (size < at + bytes) size *= 2;
  const grown = new Uint8Array(size);
  grown.set(scratch.subarray(0, at));
  scratch = grown;
  scratchView = new DataView(scratch.buffer);
}

function writeUint(v: number): void {
  assert(Number.isSafeInteger(v) && v >= 0, 'fast-msgpack writes non-negative safe integers only');
  reserve(9);
  if (v < 0x80) scratch[at++] = v;
  else if (v < 0x100) {
    scratch[at++] = 0xcc;
    scratch[at++] = v;
  } else if (v < 0x10000) {
    scratch[at++] = 0xcd;
    scratchView.setUint16(at, v);
    at += 2;
  } else if (v < 0x100000000) {
    scratch[at++] = 0xce;
    scratchView.setUint32(at, v);
    at += 4;
  } else {
    // What msgpackr does past 32 bits for a safe integer: a float64, which is exact there.
    scratch[at++] = 0xcb;
    scratchView.setFloat64(at, v);
    at += 8;
  }
}

function writeHeader(length: number, fix: number, fixMax: number, b8: number | null, b16: number, b32: number): void {
  reserve(5);
  if (length < fixMax) scratch[at++] = fix | length;
  else if (b8 !== null && length < 0x100) {
    scratch[at++] = b8;
    scratch[at++] = length;
  } else if (length < 0x10000) {
    scratch[at++] = b16;
    scratchView.setUint16(at, length);
    at += 2;
  } else {
    scratch[at++] = b32;
    scratchView.setUint32(at, length);
    at += 4;
  }
}

function writeBytes(b: Uint8Array): void {
  if (b.length < 0x100) {
    reserve(2 + b.length);
    scratch[at++] = 0xc4;
    scratch[at++] = b.length;
  } else writeHeader(b.length, 0, 0, null, 0xc5, 0xc6);
  reserve(b.length);
  scratch.set(b, at);
  at += b.length;
}

/** Record tags and action names repeat on every call: encode each once. */
const stringCache = new Map<string, Uint8Array>();

function writeString(s: string): void {
  let bytes = stringCache.get(s);
  if (bytes === undefined) {
    bytes = utf8.encode(s);
    if (s.length <= 16 && stringCache.size < 256) stringCache.set(s, bytes);
  }
  writeHeader(bytes.length, 0xa0, 32, 0xd9, 0xda, 0xdb);
  reserve(bytes.length);
  scratch.set(bytes, at);
  at += bytes.length;
}

function write(v: Packable): void {
  if (typeof v === 'number') writeUint(v);
  else if (v instanceof Uint8Array) writeBytes(v);
  else if (typeof v === 'string') writeString(v);
  else if (v === null) {
    reserve(1);
    scratch[at++] = 0xc0;
  } else {
    writeHeader(v.length, 0x90, 16, null, 0xdc, 0xdd);
    for (const item of v) write(item);
  }
}

/** The msgpack bytes of `value` (a fresh array the caller owns). */
export function packFast(value: Packable): Uint8Array {
  at = 0;
  write(value);
  return scratch.slice(0, at);
}
