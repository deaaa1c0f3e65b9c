/**
 * Wire and disk form of a fragment record: the msgpack tuple
 *   ['fragment', version, k, m, index, blockBytes, bguid, payload, [path hashes...]]
 * decodeFragment bounds the input, checks every field (DecodeError) and then the record's internal
 * consistency (FragmentError from checkFragmentShape), so a truncated or mislabelled record never
 * reaches the decoder. It does not hash: verify against the fragment root with checkFragment.
 */
import { asBytesField, asList, asLiteral, asTuple, asUint, decode, encode } from '../../core/codec.ts';
import { hashBytes } from '../../core/crypto.ts';
import { checkFragmentShape, type FragmentRecord } from './fragment.ts';

const recordTag = 'fragment';
/** Default bound: fragments of blocks up to 16 MiB at k = 1, plus the header and path. */
export const fragmentRecordBytesMaxDefault = 16 * 2 ** 20 + 4096;
/** A tree over at most 256 leaves has at most 8 levels. */
const pathLengthMax = 8;

export function encodeFragment(record: FragmentRecord): Uint8Array {
  checkFragmentShape(record);
  const { version, k, m, index, blockBytes, bguid, payload, path } = record;
  return encode([recordTag, version, k, m, index, blockBytes, bguid, payload, path]);
}

export function decodeFragment(bytes: Uint8Array, bytesMax = fragmentRecordBytesMaxDefault): FragmentRecord {
  const what = 'fragment record';
  const t = asTuple(decode(bytes, bytesMax, what), what, 9);
  asLiteral(t[0], `${what} tag`, recordTag);
  const record: FragmentRecord = {
    version: asUint(t[1], `${what} version`, 255),
    k: asUint(t[2], `${what} k`, 256),
    m: asUint(t[3], `${what} m`, 256),
    index: asUint(t[4], `${what} index`, 255),
    blockBytes: asUint(t[5], `${what} blockBytes`),
    bguid: asBytesField(t[6], `${what} bguid`, { bytes: hashBytes }),
    payload: asBytesField(t[7], `${what} payload`, { bytesMax }),
    path: asList(t[8], `${what} path`, pathLengthMax, (p, i) => asBytesField(p, `${what} path[${i}]`, { bytes: hashBytes })),
  };
  checkFragmentShape(record);
  return record;
}
