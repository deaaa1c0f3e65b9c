/**
 * How ring certificates meet core/threshold's format: the ring signs the encoded batch header
 * (ring id, epoch, sequence, leaf count, Merkle root), and a CertificateMessage plus the ring id
 * and epoch is exactly a core/threshold Certificate (or Heartbeat), checkable by verifyCertificate.
 */
import { certificateStatementFromTuple, batchSigningMessage, type BatchHeader } from '../core/threshold/statements.ts';
import type { Certificate } from '../core/threshold/index.ts';
import { decode } from '../core/codec.ts';
import type { CertificateMessage } from './messages.ts';

export interface BatchNaming {
  readonly ringId: Uint8Array;
  readonly epoch: number;
}

export function batchHeaderOf(naming: BatchNaming, seq: number, leafCount: number, root: Uint8Array): BatchHeader {
  return { ringId: naming.ringId, epoch: naming.epoch, sequence: seq, leafCount, root };
}

/** The BLS message of a batch. */
export function batchMessage(naming: BatchNaming, seq: number, leafCount: number, root: Uint8Array): Uint8Array {
  return batchSigningMessage(batchHeaderOf(naming, seq, leafCount, root));
}

/**
 * The core/threshold Certificate a certificate message carries (under ring `ringId`, in the key
 * epoch the message names), when its statement is a Pond certificate statement. Throws DecodeError otherwise.
 */
export function toThresholdCertificate(ringId: Uint8Array, m: CertificateMessage): Certificate {
  return {
    statement: certificateStatementFromTuple(decode(m.statement, 4096, 'certificate statement')),
    header: batchHeaderOf({ ringId, epoch: m.epoch }, m.seq, m.leafCount, m.root),
    leafIndex: m.leafIndex,
    path: m.path,
    signature: m.signature,
  };
}
