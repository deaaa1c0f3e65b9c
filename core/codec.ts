/**
 * Wire and disk encoding: msgpack with explicit tuple shapes. Records are arrays whose first
 * element is a record tag (and, where it can evolve, a format version), never maps: arrays have
 * no key order to disagree on and no `__proto__` keys to smuggle. Every decoder bounds the input
 * size first and checks each field's type and range with the helpers below before any other code
 * sees the value; all failures are DecodeError.
 */
import { Packr } from 'msgpackr';
import { DecodeError } from './errors.ts';
import { asBytes as plainBytes } from './bytes.ts';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: false, bundleStrings: false });

/** Deterministic for the value kinds we use (arrays, safe integers, byte arrays, strings, booleans, null). */
export function encode(value: unknown): Uint8Array {
  const out = packr.pack(value);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes one msgpack value of at most `bytesMax` bytes; DecodeError for anything else. */
export function decode(bytes: Uint8Array, bytesMax: number, what = 'message'): unknown {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError(`${what}: expected bytes`);
  if (bytes.length > bytesMax) throw new DecodeError(`${what}: ${bytes.length} bytes exceeds the limit of ${bytesMax}`);
  if (bytes.length === 0) throw new DecodeError(`${what}: empty`);
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new DecodeError(`${what}: malformed msgpack (${(error as Error).message})`);
  }
}

export function asTuple(value: unknown, what: string, lengthMin: number, lengthMax = lengthMin): unknown[] {
  if (!Array.isArray(value)) throw new DecodeError(`${what}: expected an array`);
  if (value.length < lengthMin || value.length > lengthMax) {
    throw new DecodeError(`${what}: expected ${lengthMin}..${lengthMax} fields, got ${value.length}`);
  }
  return value;
}

export interface BytesBounds {
  bytes?: number;
  bytesMax?: number;
}

export function asBytesField(value: unknown, what: string, bounds: BytesBounds = {}): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new DecodeError(`${what}: expected bytes`);
  if (bounds.bytes !== undefined && value.length !== bounds.bytes) {
    throw new DecodeError(`${what}: expected ${bounds.bytes} bytes, got ${value.length}`);
  }
  if (bounds.bytesMax !== undefined && value.length > bounds.bytesMax) {
    throw new DecodeError(`${what}: ${value.length} bytes exceeds ${bounds.bytesMax}`);
  }
  return plainBytes(value);
}

export function asUint(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new DecodeError(`${what}: expected a non-negative integer`);
  }
  if (value > max) throw new DecodeError(`${what}: ${value} exceeds ${max}`);
  return value;
}

export function asLiteral<T extends number | string>(value: unknown, what: string, expected: T): T {
  if (value !== expected) throw new DecodeError(`${what}: expected ${String(expected)}`);
  return expected;
}

export function asBool(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw new DecodeError(`${what}: expected a boolean`);
  return value;
}

export function asString(value: unknown, what: string, lengthMax: number): string {
  if (typeof value !== 'string') throw new DecodeError(`${what}: expected a string`);
  if (value.length > lengthMax) throw new DecodeError(`${what}: longer than ${lengthMax}`);
  return value;
}

export function asList<T>(value: unknown, what: string, countMax: number, item: (v: unknown, i: number) => T): T[] {
  if (!Array.isArray(value)) throw new DecodeError(`${what}: expected a list`);
  if (value.length > countMax) throw new DecodeError(`${what}: ${value.length} items exceeds ${countMax}`);
  return value.map((v, i) => item(v, i));
}

export function asNullable<T>(value: unknown, decodeValue: (v: unknown) => T): T | null {
  return value === null || value === undefined ? null : decodeValue(value);
}
