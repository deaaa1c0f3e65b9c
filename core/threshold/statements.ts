/**
 * What the ring signs (DESIGN.md "Certificates and heartbeats"): a certificate statement for each
 * executed update, a heartbeat statement for the latest version of an object, and the batch
 * header whose encoding is the BLS message. Records are msgpack tuples whose first element names
 * the record, so a statement of one kind never decodes (or hashes) as another; a leaf hash is
 * always taken over the canonical re-encoding, never over bytes as received.
 */
import { hashBytes } from '../crypto.ts';
import { asBytesField, asLiteral, asTuple, asUint, encode } from '../codec.ts';
import { DecodeError, checkArgument } from '../errors.ts';
import { batchLeafCountMax } from './batch-merkle.ts';

export const formatVersion = 1;
export const recordTag = {
  certificateStatement: 'os.cert-statement',
  heartbeatStatement: 'os.heartbeat-statement',
  batchHeader: 'os.batch-header',
  certificate: 'os.certificate',
  heartbeat: 'os.heartbeat',
} as const;

export type Outcome = 'commit' | 'abort';

/** One executed update's result, as the ring vouches for it. */
export interface CertificateStatement {
  readonly ringId: Uint8Array;
  readonly aguid: Uint8Array;
  readonly version: number;
  /** VGUID of the resulting version (commit) or of the current one (abort); empty if none exists. */
  readonly vguid: Uint8Array;
  /** Fragment root of the version's root block; empty while not yet known. */
  readonly rootFragmentRoot: Uint8Array;
  readonly updateDigest: Uint8Array;
  readonly outcome: Outcome;
  /** The agreed timestamp of the batch, ms since the epoch. */
  readonly timestampMs: number;
}

/** "The latest version of `aguid` is (version, vguid) as of `timestampMs`." */
export interface HeartbeatStatement {
  readonly ringId: Uint8Array;
  readonly aguid: Uint8Array;
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly timestampMs: number;
}

/**
 * The signed part of a batch. (ringId, epoch, sequence) names the batch uniquely: PBFT commits at
 * most one batch per sequence number, and the epoch changes with the key (resharing). The view is
 * left out on purpose: a batch re-proposed after a view change must get the same signature.
 */
export interface BatchHeader {
  readonly ringId: Uint8Array;
  readonly epoch: number;
  readonly sequence: number;
  readonly leafCount: number;
  readonly root: Uint8Array;
}

function checkHash(value: Uint8Array, argument: string): void {
  checkArgument(value instanceof Uint8Array && value.length === hashBytes, argument, `${hashBytes} bytes`);
}

function checkOptionalHash(value: Uint8Array, argument: string): void {
  checkArgument(value instanceof Uint8Array && (value.length === 0 || value.length === hashBytes), argument, `0 or ${hashBytes} bytes`);
}

function checkUint(value: number, argument: string): void {
  checkArgument(Number.isSafeInteger(value) && value >= 0, argument, 'a non-negative safe integer');
}

export function certificateStatementTuple(s: CertificateStatement): unknown[] {
  checkHash(s.ringId, 'statement.ringId');
  checkHash(s.aguid, 'statement.aguid');
  checkUint(s.version, 'statement.version');
  checkOptionalHash(s.vguid, 'statement.vguid');
  checkOptionalHash(s.rootFragmentRoot, 'statement.rootFragmentRoot');
  checkHash(s.updateDigest, 'statement.updateDigest');
  checkArgument(s.outcome === 'commit' || s.outcome === 'abort', 'statement.outcome', "'commit' or 'abort'");
  checkArgument(s.outcome === 'abort' || s.vguid.length === hashBytes, 'statement.vguid', 'a VGUID for a commit');
  checkUint(s.timestampMs, 'statement.timestampMs');
  const outcome = s.outcome === 'commit' ? 1 : 0;
  return [recordTag.certificateStatement, formatVersion, s.ringId, s.aguid, s.version, s.vguid, s.rootFragmentRoot, s.updateDigest, outcome, s.timestampMs];
}

/**
 * Which statement a decoded leaf claims to be, from its tag alone, without throwing: a batch
 * mixes commit statements and heartbeats, and trying the wrong decoder first built an error (and
 * its stack trace) for every heartbeat leaf.
 */
export function statementKindOf(value: unknown): 'certificate' | 'heartbeat' | null {
  if (!Array.isArray(value)) return null;
  if (value[0] === recordTag.certificateStatement) return 'certificate';
  if (value[0] === recordTag.heartbeatStatement) return 'heartbeat';
  return null;
}

export function certificateStatementFromTuple(value: unknown): CertificateStatement {
  const t = asTuple(value, 'certificate statement', 10);
  asLiteral(t[0], 'certificate statement tag', recordTag.certificateStatement);
  asLiteral(t[1], 'certificate statement version', formatVersion);
  const vguid = optionalHashField(t[5], 'certificate statement vguid');
  const outcomeCode = asUint(t[8], 'certificate statement outcome', 1);
  if (outcomeCode === 1 && vguid.length === 0) throw new DecodeError('certificate statement: a commit needs a vguid');
  return {
    ringId: asBytesField(t[2], 'certificate statement ringId', { bytes: hashBytes }),
    aguid: asBytesField(t[3], 'certificate statement aguid', { bytes: hashBytes }),
    version: asUint(t[4], 'certificate statement version number'),
    vguid,
    rootFragmentRoot: optionalHashField(t[6], 'certificate statement rootFragmentRoot'),
    updateDigest: asBytesField(t[7], 'certificate statement updateDigest', { bytes: hashBytes }),
    outcome: outcomeCode === 1 ? 'commit' : 'abort',
    timestampMs: asUint(t[9], 'certificate statement timestampMs'),
  };
}

export function heartbeatStatementTuple(s: HeartbeatStatement): unknown[] {
  checkHash(s.ringId, 'heartbeat.ringId');
  checkHash(s.aguid, 'heartbeat.aguid');
  checkUint(s.version, 'heartbeat.version');
  checkHash(s.vguid, 'heartbeat.vguid');
  checkUint(s.timestampMs, 'heartbeat.timestampMs');
  return [recordTag.heartbeatStatement, formatVersion, s.ringId, s.aguid, s.version, s.vguid, s.timestampMs];
}

export function heartbeatStatementFromTuple(value: unknown): HeartbeatStatement {
  const t = asTuple(value, 'heartbeat statement', 7);
  asLiteral(t[0], 'heartbeat statement tag', recordTag.heartbeatStatement);
  asLiteral(t[1], 'heartbeat statement version', formatVersion);
  return {
    ringId: asBytesField(t[2], 'heartbeat statement ringId', { bytes: hashBytes }),
    aguid: asBytesField(t[3], 'heartbeat statement aguid', { bytes: hashBytes }),
    version: asUint(t[4], 'heartbeat statement version number'),
    vguid: asBytesField(t[5], 'heartbeat statement vguid', { bytes: hashBytes }),
    timestampMs: asUint(t[6], 'heartbeat statement timestampMs'),
  };
}

export function batchHeaderTuple(h: BatchHeader): unknown[] {
  checkHash(h.ringId, 'header.ringId');
  checkUint(h.epoch, 'header.epoch');
  checkUint(h.sequence, 'header.sequence');
  checkArgument(Number.isSafeInteger(h.leafCount) && h.leafCount >= 1 && h.leafCount <= batchLeafCountMax, 'header.leafCount', `1..${batchLeafCountMax}`);
  checkHash(h.root, 'header.root');
  return [recordTag.batchHeader, formatVersion, h.ringId, h.epoch, h.sequence, h.leafCount, h.root];
}

export function batchHeaderFromTuple(value: unknown): BatchHeader {
  const t = asTuple(value, 'batch header', 7);
  asLiteral(t[0], 'batch header tag', recordTag.batchHeader);
  asLiteral(t[1], 'batch header version', formatVersion);
  const leafCount = asUint(t[5], 'batch header leafCount', batchLeafCountMax);
  if (leafCount === 0) throw new DecodeError('batch header: leafCount must be at least 1');
  return {
    ringId: asBytesField(t[2], 'batch header ringId', { bytes: hashBytes }),
    epoch: asUint(t[3], 'batch header epoch'),
    sequence: asUint(t[4], 'batch header sequence'),
    leafCount,
    root: asBytesField(t[6], 'batch header root', { bytes: hashBytes }),
  };
}

function optionalHashField(value: unknown, what: string): Uint8Array {
  const bytes = asBytesField(value, what, { bytesMax: hashBytes });
  if (bytes.length !== 0 && bytes.length !== hashBytes) throw new DecodeError(`${what}: expected 0 or ${hashBytes} bytes`);
  return bytes;
}

/** Canonical bytes of a statement: what its batch leaf hashes. */
export function encodeCertificateStatement(s: CertificateStatement): Uint8Array {
  return encode(certificateStatementTuple(s));
}

export function encodeHeartbeatStatement(s: HeartbeatStatement): Uint8Array {
  return encode(heartbeatStatementTuple(s));
}

/** The BLS message of a batch: the canonical encoding of its header. */
export function batchSigningMessage(header: BatchHeader): Uint8Array {
  return encode(batchHeaderTuple(header));
}
