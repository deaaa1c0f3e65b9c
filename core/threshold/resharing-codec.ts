/**
 * Wire records of a resharing round. Public ones (commitments, complaint, response) are ordered
 * by the ring; the sub-share record goes to one new member on a confidential channel. Each names
 * the epoch it belongs to, so a message of an earlier round is never taken for the current one.
 */
import { asBytesField, asList, asLiteral, asTuple, asUint, decode, encode } from '../codec.ts';
import { DecodeError, checkArgument } from '../errors.ts';
import { publicKeyBytes } from './points.ts';
import type { Complaint, ComplaintResponse } from './resharing.ts';
import { scalarBytes, shareIndexMax } from './scalar.ts';
import { formatVersion } from './statements.ts';

export const resharingRecordTag = {
  commitments: 'os.reshare-commitments',
  subShare: 'os.reshare-sub-share',
  complaint: 'os.reshare-complaint',
  response: 'os.reshare-response',
} as const;

/** Commitments of a threshold up to 64 (a ring of 190 servers) fit; nothing larger is accepted. */
export const resharingThresholdMax = 64;
export const resharingRecordBytesMax = 128 + resharingThresholdMax * (publicKeyBytes + 4);

export type ResharingMessage =
  | { readonly kind: 'commitments'; readonly epoch: number; readonly dealerIndex: number; readonly commitments: readonly Uint8Array[] }
  | { readonly kind: 'sub-share'; readonly epoch: number; readonly dealerIndex: number; readonly memberIndex: number; readonly subShare: Uint8Array }
  | ({ readonly kind: 'complaint'; readonly epoch: number } & Complaint)
  | ({ readonly kind: 'response'; readonly epoch: number } & ComplaintResponse);

function index(value: number, argument: string): number {
  checkArgument(Number.isSafeInteger(value) && value >= 1 && value <= shareIndexMax, argument, `1..${shareIndexMax}`);
  return value;
}

export function encodeResharingMessage(m: ResharingMessage): Uint8Array {
  checkArgument(Number.isSafeInteger(m.epoch) && m.epoch >= 0, 'epoch', 'a non-negative integer');
  switch (m.kind) {
    case 'commitments':
      checkArgument(m.commitments.length >= 1 && m.commitments.length <= resharingThresholdMax, 'commitments', `1..${resharingThresholdMax} points`);
      return encode([resharingRecordTag.commitments, formatVersion, m.epoch, index(m.dealerIndex, 'dealerIndex'), [...m.commitments]]);
    case 'sub-share':
      checkArgument(m.subShare.length === scalarBytes, 'subShare', `${scalarBytes} bytes`);
      return encode([resharingRecordTag.subShare, formatVersion, m.epoch, index(m.dealerIndex, 'dealerIndex'), index(m.memberIndex, 'memberIndex'), m.subShare]);
    case 'complaint':
      return encode([resharingRecordTag.complaint, formatVersion, m.epoch, index(m.dealerIndex, 'dealerIndex'), index(m.complainerIndex, 'complainerIndex')]);
    case 'response':
      checkArgument(m.subShare.length === scalarBytes, 'subShare', `${scalarBytes} bytes`);
      return encode([resharingRecordTag.response, formatVersion, m.epoch, index(m.dealerIndex, 'dealerIndex'), index(m.complainerIndex, 'complainerIndex'), m.subShare]);
  }
}

function asIndex(value: unknown, what: string): number {
  const i = asUint(value, what, shareIndexMax);
  if (i === 0) throw new DecodeError(`${what}: indices start at 1`);
  return i;
}

function subShareField(value: unknown): Uint8Array {
  return asBytesField(value, 'resharing subShare', { bytes: scalarBytes });
}

/** Shape only (points are checked by ResharingTranscript). Throws DecodeError. */
export function decodeResharingMessage(bytes: Uint8Array): ResharingMessage {
  const t = asTuple(decode(bytes, resharingRecordBytesMax, 'resharing message'), 'resharing message', 5, 6);
  asLiteral(t[1], 'resharing message version', formatVersion);
  const epoch = asUint(t[2], 'resharing message epoch');
  const dealerIndex = asIndex(t[3], 'resharing dealerIndex');
  switch (t[0]) {
    case resharingRecordTag.commitments:
      if (t.length !== 5) throw new DecodeError('resharing commitments: expected 5 fields');
      return {
        kind: 'commitments',
        epoch,
        dealerIndex,
        commitments: asList(t[4], 'resharing commitments', resharingThresholdMax, (v, i) => asBytesField(v, `resharing commitments[${i}]`, { bytes: publicKeyBytes })),
      };
    case resharingRecordTag.subShare:
      if (t.length !== 6) throw new DecodeError('resharing sub-share: expected 6 fields');
      return { kind: 'sub-share', epoch, dealerIndex, memberIndex: asIndex(t[4], 'resharing memberIndex'), subShare: subShareField(t[5]) };
    case resharingRecordTag.complaint:
      if (t.length !== 5) throw new DecodeError('resharing complaint: expected 5 fields');
      return { kind: 'complaint', epoch, dealerIndex, complainerIndex: asIndex(t[4], 'resharing complainerIndex') };
    case resharingRecordTag.response:
      if (t.length !== 6) throw new DecodeError('resharing response: expected 6 fields');
      return { kind: 'response', epoch, dealerIndex, complainerIndex: asIndex(t[4], 'resharing complainerIndex'), subShare: subShareField(t[5]) };
    default:
      throw new DecodeError('resharing message: unknown record tag');
  }
}
