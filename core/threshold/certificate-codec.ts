/**
 * Wire encoding of certificates and heartbeats: statement tuple, header tuple, leaf index, path,
 * signature. Decoding checks shape and bounds only; verify with CertificateVerifier.
 */
import { hashBytes } from '../crypto.ts';
import { asBytesField, asList, asLiteral, asTuple, asUint, decode, encode } from '../codec.ts';
import { checkArgument } from '../errors.ts';
import { batchPathLengthMax } from './batch-merkle.ts';
import type { BatchProof, Certificate, Heartbeat } from './certificate.ts';
import { signatureBytes } from './points.ts';
import {
  batchHeaderFromTuple,
  batchHeaderTuple,
  certificateStatementFromTuple,
  certificateStatementTuple,
  formatVersion,
  heartbeatStatementFromTuple,
  heartbeatStatementTuple,
  recordTag,
} from './statements.ts';

/** Bytes limits for the codecs: a path of 16 hashes plus the fixed fields stays far below. */
export const certificateBytesMax = 2048;

function proofFields(p: BatchProof): unknown[] {
  checkArgument(Number.isSafeInteger(p.leafIndex) && p.leafIndex >= 0, 'leafIndex', 'a non-negative integer');
  checkArgument(Array.isArray(p.path) && p.path.length <= batchPathLengthMax, 'path', `at most ${batchPathLengthMax} hashes`);
  checkArgument(p.signature instanceof Uint8Array && p.signature.length === signatureBytes, 'signature', `${signatureBytes} bytes`);
  return [batchHeaderTuple(p.header), p.leafIndex, [...p.path], p.signature];
}

function proofFromFields(t: unknown[], what: string): BatchProof {
  const header = batchHeaderFromTuple(t[3]);
  return {
    header,
    leafIndex: asUint(t[4], `${what} leafIndex`, header.leafCount - 1),
    path: asList(t[5], `${what} path`, batchPathLengthMax, (v, i) => asBytesField(v, `${what} path[${i}]`, { bytes: hashBytes })),
    signature: asBytesField(t[6], `${what} signature`, { bytes: signatureBytes }),
  };
}

export function encodeCertificate(c: Certificate): Uint8Array {
  return encode([recordTag.certificate, formatVersion, certificateStatementTuple(c.statement), ...proofFields(c)]);
}

/** Shape only: decoding does not verify; call verifyCertificate. Throws DecodeError. */
export function decodeCertificate(bytes: Uint8Array): Certificate {
  const t = asTuple(decode(bytes, certificateBytesMax, 'certificate'), 'certificate', 7);
  asLiteral(t[0], 'certificate tag', recordTag.certificate);
  asLiteral(t[1], 'certificate version', formatVersion);
  return { statement: certificateStatementFromTuple(t[2]), ...proofFromFields(t, 'certificate') };
}

export function encodeHeartbeat(h: Heartbeat): Uint8Array {
  return encode([recordTag.heartbeat, formatVersion, heartbeatStatementTuple(h.statement), ...proofFields(h)]);
}

export function decodeHeartbeat(bytes: Uint8Array): Heartbeat {
  const t = asTuple(decode(bytes, certificateBytesMax, 'heartbeat'), 'heartbeat', 7);
  asLiteral(t[0], 'heartbeat tag', recordTag.heartbeat);
  asLiteral(t[1], 'heartbeat version', formatVersion);
  return { statement: heartbeatStatementFromTuple(t[2]), ...proofFromFields(t, 'heartbeat') };
}
