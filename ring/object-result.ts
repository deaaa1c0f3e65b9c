/**
 * The result bytes a ring reply carries for a Pond update (ring/object-service.ts), decoded by the
 * client SDK (client/result.ts). msgpack tuples:
 *   ['commit', version, vguid]
 *   ['abort', reason, detail, currentVersion]   (currentVersion 0 when the object does not exist)
 * Reasons: core/update's AbortReason values, with 'predicates-failed' spelled 'predicate-failed',
 * plus the ring's refusals before apply: 'malformed', 'bad-signature', 'replay' (nonce not fresh).
 */
import { asBytesField, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { hashBytes } from '../core/crypto.ts';
import { DecodeError } from '../core/errors.ts';

export type ObjectResult =
  | { readonly outcome: 'commit'; readonly version: number; readonly vguid: Uint8Array }
  | { readonly outcome: 'abort'; readonly reason: string; readonly detail: string; readonly currentVersion: number };

const reasonLengthMax = 64;
const detailLengthMax = 512;

export function encodeObjectResult(r: ObjectResult): Uint8Array {
  if (r.outcome === 'commit') return encode(['commit', r.version, r.vguid]);
  return encode(['abort', r.reason, r.detail.slice(0, detailLengthMax), r.currentVersion]);
}

export function decodeObjectResult(bytes: Uint8Array): ObjectResult {
  const t = asTuple(decode(bytes, 4096, 'object result'), 'object result', 3, 4);
  if (t[0] === 'commit') {
    asTuple(t, 'commit result', 3);
    return { outcome: 'commit', version: asUint(t[1], 'result.version'), vguid: asBytesField(t[2], 'result.vguid', { bytes: hashBytes }) };
  }
  if (t[0] !== 'abort') throw new DecodeError('object result: expected commit or abort');
  asTuple(t, 'abort result', 4);
  return {
    outcome: 'abort',
    reason: asString(t[1], 'result.reason', reasonLengthMax),
    detail: asString(t[2], 'result.detail', detailLengthMax),
    currentVersion: asUint(t[3], 'result.currentVersion'),
  };
}
