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
  scan(bytes, what);
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new DecodeError(`${what}: malformed msgpack (${(error as Error).message})`);
  }
}

/** Nesting deeper than any record of ours. */
const depthMax = 32;
/** Arrays, strings and byte arrays a message may hold: a few per small message, then one per 8 bytes. */
const containersOf = (bytes: number): number => 1024 + Math.floor(bytes / 8);

/**
 * One pass over the msgpack bytes before msgpackr builds anything: one value, no trailing bytes,
 * no maps or extension types (no record of ours has them; undefined is allowed), nesting at most depthMax deep, and at
 * most containersOf(length) arrays, strings and byte arrays. msgpackr spends ~80 ns building an
 * empty array, more for a byte array and ~350 ns for an empty map, so without this a 4 MiB frame
 * of one-byte empty maps cost a node ~1.5 s of CPU and ~800 MiB before any shape check refused
 * it (64 MiB of two-byte empty byte arrays: 18 s, 3.5 GiB); now such a frame costs ~10 ms. What
 * the allowance still lets through costs ~20 ms per MiB (a 64 MiB frame of tiny arrays ~1.3 s).
 * Exported for encoders whose records may be denser than that (encodeUpdate): DecodeError.
 */
export function scan(bytes: Uint8Array, what: string): void {
  // Straight-line code with its state in locals: closures here cost more than the scan itself
  // (tsx names every closure it creates, ~50 ns each, per decode).
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let at = 0;
  let containers = containersOf(end);
  // Items still to read in each open array, innermost last; the outermost "array" is the one value.
  // An array's header counts as an item of its parent; its own items are pushed as a new entry.
  const open: number[] = [1];
  while (open.length > 0) {
    if (at >= end) scanFailed(what, 'truncated', at);
    // This value is one item of the innermost open array (which stays open until its items are read).
    open[open.length - 1]!--;
    const b = bytes[at++]!;
    let skip = 0;
    let items = -1;
    let counted = false;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // fixint, negative fixint, nil, false, true
    } else if (b >= 0x90 && b <= 0x9f) {
      items = b & 0x0f;
    } else if (b >= 0xa0 && b <= 0xbf) {
      counted = true;
      skip = b & 0x1f;
    } else {
      // Length-prefixed: the prefix's size, then what it says.
      const prefix = b === 0xc4 || b === 0xd9 ? 1 : b === 0xc5 || b === 0xda || b === 0xdc ? 2 : b === 0xc6 || b === 0xdb || b === 0xdd ? 4 : 0;
      if (prefix > 0) {
        if (at + prefix > end) scanFailed(what, 'truncated', at);
        const n = prefix === 1 ? bytes[at]! : prefix === 2 ? view.getUint16(at) : view.getUint32(at);
        at += prefix;
        counted = true;
        if (b === 0xdc || b === 0xdd) items = n;
        else skip = n;
      } else if (b === 0xcc || b === 0xd0) {
        skip = 1; // uint 8, int 8
      } else if (b === 0xcd || b === 0xd1) {
        skip = 2;
      } else if (b === 0xca || b === 0xce || b === 0xd2) {
        skip = 4; // float 32, uint 32, int 32
      } else if (b === 0xcb || b === 0xcf || b === 0xd3) {
        skip = 8; // float 64, uint 64, int 64
      } else if (b === 0xd4 && at + 2 <= end && bytes[at] === 0 && bytes[at + 1] === 0) {
        skip = 2; // fixext 1 of type 0 is how msgpackr writes undefined (an absent optional field)
      } else {
        scanFailed(what, (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf ? 'a map' : b === 0xc1 ? 'reserved byte 0xc1' : 'an extension type', at);
      }
    }
    if ((counted || items >= 0) && --containers < 0) scanFailed(what, 'too many arrays and strings for its size', at);
    if (at + skip > end) scanFailed(what, 'truncated', at);
    at += skip;
    if (items > end - at) scanFailed(what, 'array longer than the bytes left', at);
    if (items > 0) {
      if (open.length >= depthMax) scanFailed(what, `nested deeper than ${depthMax}`, at);
      open.push(items);
    }
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
  }
  if (at !== end) scanFailed(what, 'trailing bytes', at);
}

function scanFailed(what: string, why: string, at: number): never {
  throw new DecodeError(`${what}: malformed msgpack (${why} at byte ${at})`);
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
