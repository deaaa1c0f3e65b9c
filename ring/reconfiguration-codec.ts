/**
 * Operations of a ring reconfiguration (issue 10). They travel as ordinary client requests through
 * PBFT, so every replica executes them in one order: the admin's reconfigure request, and the
 * resharing transcript each member submits under its own ed25519 key (deal, verdict, response).
 * Sub-shares ride inside the dealer's deal record sealed to each recipient's key, so the one
 * ordered transcript also tells every member which sub-share its dealer committed to sending.
 *
 * The bytes start with 0xC1, a byte msgpack never produces, so a reconfiguration operation can
 * never be mistaken for a Pond update (which is msgpack) and vice versa.
 */
import { asBytesField, asList, asLiteral, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { ed25519PublicKeyBytes } from '../core/crypto.ts';
import { DecodeError, checkArgument } from '../core/errors.ts';
import { publicKeyBytes } from '../core/threshold/points.ts';
import { scalarBytes, shareIndexMax } from '../core/threshold/scalar.ts';

export const reconfigurationMagic = Uint8Array.of(0xc1, 0x52, 0x43, 0x46); // 0xC1 'RCF'
export const reconfigurationFormatVersion = 1;
/** Ring size the records accept; bounds every list in them. */
export const ringMembersMax = 64;
/** Sealed sub-share: ephemeral x25519 key, AEAD nonce, ciphertext of the 32-byte scalar, tag. */
export const sealedSubShareBytes = 32 + 12 + scalarBytes + 16;
export const reconfigurationOperationBytesMax = 256 + ringMembersMax * (publicKeyBytes + sealedSubShareBytes + 8);
const memberIdLengthMax = 128;

export const reconfigurationTag = {
  reconfigure: 'os.reconfigure',
  deal: 'os.reshare-deal',
  verdict: 'os.reshare-verdict',
  response: 'os.reshare-response',
} as const;

/** Keep the same members and refresh every share, or put `newMember` in `oldIndex`'s place. */
export type ReconfigurationAction =
  | { readonly kind: 'refresh' }
  | { readonly kind: 'replace'; readonly oldIndex: number; readonly newId: string; readonly newPublicKey: Uint8Array };

/** Signed (as a ring request) by the admin key; `epoch` is the epoch it starts (current + 1). */
export interface ReconfigureRecord {
  readonly kind: 'reconfigure';
  readonly epoch: number;
  readonly action: ReconfigurationAction;
}

/** Old member `dealerIndex` (1-based share index): Feldman commitments and one sealed sub-share per new member. */
export interface DealRecord {
  readonly kind: 'deal';
  readonly epoch: number;
  readonly dealerIndex: number;
  readonly commitments: readonly Uint8Array[];
  /** sealed[j−1] is for new member j. */
  readonly sealed: readonly Uint8Array[];
}

/** New member `memberIndex`: the dealers whose sub-share it could not open or check (empty = satisfied). */
export interface VerdictRecord {
  readonly kind: 'verdict';
  readonly epoch: number;
  readonly memberIndex: number;
  readonly complaints: readonly number[];
}

/** A dealer answering a complaint by revealing that sub-share in public. */
export interface ResponseRecord {
  readonly kind: 'response';
  readonly epoch: number;
  readonly dealerIndex: number;
  readonly complainerIndex: number;
  readonly subShare: Uint8Array;
}

export type ReconfigurationRecord = ReconfigureRecord | DealRecord | VerdictRecord | ResponseRecord;

function index(value: number, argument: string): number {
  checkArgument(Number.isSafeInteger(value) && value >= 1 && value <= shareIndexMax, argument, `1..${shareIndexMax}`);
  return value;
}

export function reconfigurationActionTuple(a: ReconfigurationAction): unknown[] {
  if (a.kind === 'refresh') return ['refresh'];
  checkArgument(a.newId.length >= 1 && a.newId.length <= memberIdLengthMax, 'action.newId', `1..${memberIdLengthMax} characters`);
  checkArgument(a.newPublicKey.length === ed25519PublicKeyBytes, 'action.newPublicKey', `${ed25519PublicKeyBytes} bytes`);
  return ['replace', index(a.oldIndex, 'action.oldIndex'), a.newId, a.newPublicKey];
}

function recordTuple(r: ReconfigurationRecord): unknown[] {
  checkArgument(Number.isSafeInteger(r.epoch) && r.epoch >= 1, 'epoch', 'an integer >= 1 (the epoch the record belongs to)');
  const head = [reconfigurationFormatVersion, r.epoch];
  switch (r.kind) {
    case 'reconfigure':
      return [reconfigurationTag.reconfigure, ...head, reconfigurationActionTuple(r.action)];
    case 'deal':
      checkArgument(r.commitments.length >= 1 && r.commitments.length <= ringMembersMax, 'commitments', `1..${ringMembersMax} points`);
      checkArgument(r.sealed.length >= 1 && r.sealed.length <= ringMembersMax, 'sealed', `1..${ringMembersMax} sealed sub-shares`);
      return [reconfigurationTag.deal, ...head, index(r.dealerIndex, 'dealerIndex'), [...r.commitments], [...r.sealed]];
    case 'verdict':
      checkArgument(r.complaints.length <= ringMembersMax, 'complaints', `at most ${ringMembersMax}`);
      return [reconfigurationTag.verdict, ...head, index(r.memberIndex, 'memberIndex'), r.complaints.map((d) => index(d, 'complaints[]'))];
    case 'response':
      checkArgument(r.subShare.length === scalarBytes, 'subShare', `${scalarBytes} bytes`);
      return [reconfigurationTag.response, ...head, index(r.dealerIndex, 'dealerIndex'), index(r.complainerIndex, 'complainerIndex'), r.subShare];
  }
}

/** Operation bytes for a ring request. */
export function encodeReconfigurationRecord(r: ReconfigurationRecord): Uint8Array {
  const body = encode(recordTuple(r));
  const out = new Uint8Array(reconfigurationMagic.length + body.length);
  out.set(reconfigurationMagic);
  out.set(body, reconfigurationMagic.length);
  return out;
}

/** True iff the operation claims to be a reconfiguration record (it may still fail to decode). */
export function isReconfigurationOperation(operation: Uint8Array): boolean {
  return operation.length >= reconfigurationMagic.length && reconfigurationMagic.every((b, i) => operation[i] === b);
}

function asIndex(value: unknown, what: string): number {
  const i = asUint(value, what, shareIndexMax);
  if (i === 0) throw new DecodeError(`${what}: indices start at 1`);
  return i;
}

export function decodeReconfigurationAction(value: unknown): ReconfigurationAction {
  const t = asTuple(value, 'reconfigure action', 1, 4);
  if (t[0] === 'refresh' && t.length === 1) return { kind: 'refresh' };
  if (t[0] !== 'replace' || t.length !== 4) throw new DecodeError('reconfigure action: expected [refresh] or [replace, oldIndex, newId, newPublicKey]');
  return {
    kind: 'replace',
    oldIndex: asIndex(t[1], 'reconfigure oldIndex'),
    newId: asString(t[2], 'reconfigure newId', memberIdLengthMax),
    newPublicKey: asBytesField(t[3], 'reconfigure newPublicKey', { bytes: ed25519PublicKeyBytes }),
  };
}

/** Bounded, shape-checked decode. Throws DecodeError. */
export function decodeReconfigurationRecord(operation: Uint8Array): ReconfigurationRecord {
  if (!isReconfigurationOperation(operation)) throw new DecodeError('reconfiguration record: missing magic prefix');
  const body = operation.subarray(reconfigurationMagic.length);
  const t = asTuple(decode(body, reconfigurationOperationBytesMax, 'reconfiguration record'), 'reconfiguration record', 4, 6);
  asLiteral(t[1], 'reconfiguration record version', reconfigurationFormatVersion);
  const epoch = asUint(t[2], 'reconfiguration epoch');
  if (epoch === 0) throw new DecodeError('reconfiguration epoch: epoch 0 is the initial key and is never reconfigured to');
  const expect = (length: number): void => {
    if (t.length !== length) throw new DecodeError(`reconfiguration ${String(t[0])}: expected ${length} fields`);
  };
  switch (t[0]) {
    case reconfigurationTag.reconfigure:
      expect(4);
      return { kind: 'reconfigure', epoch, action: decodeReconfigurationAction(t[3]) };
    case reconfigurationTag.deal:
      expect(6);
      return {
        kind: 'deal', epoch, dealerIndex: asIndex(t[3], 'deal dealerIndex'),
        commitments: asList(t[4], 'deal commitments', ringMembersMax, (v, i) => asBytesField(v, `deal commitments[${i}]`, { bytes: publicKeyBytes })),
        sealed: asList(t[5], 'deal sealed', ringMembersMax, (v, i) => asBytesField(v, `deal sealed[${i}]`, { bytes: sealedSubShareBytes })),
      };
    case reconfigurationTag.verdict:
      expect(5);
      return { kind: 'verdict', epoch, memberIndex: asIndex(t[3], 'verdict memberIndex'), complaints: asList(t[4], 'verdict complaints', ringMembersMax, (v) => asIndex(v, 'verdict complaint')) };
    case reconfigurationTag.response:
      expect(6);
      return {
        kind: 'response', epoch, dealerIndex: asIndex(t[3], 'response dealerIndex'), complainerIndex: asIndex(t[4], 'response complainerIndex'),
        subShare: asBytesField(t[5], 'response subShare', { bytes: scalarBytes }),
      };
    default:
      throw new DecodeError('reconfiguration record: unknown tag');
  }
}

/** Associated data a sealed sub-share is bound to: it opens only as (epoch, dealer → member). */
export function sealedSubShareContext(epoch: number, dealerIndex: number, memberIndex: number): Uint8Array {
  return encode(['os.reshare-seal', reconfigurationFormatVersion, epoch, dealerIndex, memberIndex]);
}

/**
 * Seals a sub-share to a member's ed25519 identity (the implementation converts it to x25519 and
 * uses an AEAD; injected so the core stays free of node:crypto). open returns null on any failure.
 */
export interface SubShareCipher {
  seal(recipientPublicKey: Uint8Array, plaintext: Uint8Array, context: Uint8Array): Uint8Array;
  open(sealed: Uint8Array, context: Uint8Array): Uint8Array | null;
}
