/**
 * Certificates and heartbeats: a statement, the header of the batch it was agreed in, its Merkle
 * path to the batch root, and the ring's 48-byte threshold signature of the header. This file
 * holds the types and the ring side (building a batch and cutting its proofs); verification is
 * in certificate-verifier.ts, wire encoding in certificate-codec.ts.
 */
import { bytesEqual } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import { checkArgument } from '../errors.ts';
import type { KeyShare } from './dealer.ts';
import { BatchMerkleTree, batchLeafCountMax, batchLeafHash } from './batch-merkle.ts';
import { hashMessage, signatureBytes, type HashedMessage } from './points.ts';
import { signShare, type SignatureShare } from './signing.ts';
import {
  batchSigningMessage,
  encodeCertificateStatement,
  encodeHeartbeatStatement,
  type BatchHeader,
  type CertificateStatement,
  type HeartbeatStatement,
} from './statements.ts';

/** Proof that the ring signed a batch containing one entry. */
export interface BatchProof {
  readonly header: BatchHeader;
  readonly leafIndex: number;
  readonly path: readonly Uint8Array[];
  readonly signature: Uint8Array;
}

export interface Certificate extends BatchProof {
  readonly statement: CertificateStatement;
}

export interface Heartbeat extends BatchProof {
  readonly statement: HeartbeatStatement;
}

export type BatchEntry =
  | { readonly kind: 'certificate'; readonly statement: CertificateStatement }
  | { readonly kind: 'heartbeat'; readonly statement: HeartbeatStatement };

/**
 * One agreed batch on the ring side: builds the tree once, exposes the BLS message (hashed to
 * the curve once, since each replica signs it, checks peers' shares against it and combines),
 * and hands out every entry's certificate or heartbeat once the ring signature exists.
 */
export class SignedBatchBuilder {
  readonly header: BatchHeader;
  readonly entries: readonly BatchEntry[];
  /** The BLS message: canonical encoding of the header. */
  readonly message: Uint8Array;
  private readonly tree: BatchMerkleTree;
  private hashedMessage: HashedMessage | undefined;

  constructor(crypto: Crypto, batch: { ringId: Uint8Array; epoch: number; sequence: number }, entries: readonly BatchEntry[]) {
    checkArgument(Array.isArray(entries) && entries.length >= 1 && entries.length <= batchLeafCountMax, 'entries', `1..${batchLeafCountMax} entries`);
    const leaves = entries.map((entry, i) => {
      checkArgument(bytesEqual(entry.statement.ringId, batch.ringId), `entries[${i}].statement.ringId`, "the batch's ring id");
      return batchLeafHash(crypto, encodeEntry(entry));
    });
    this.entries = entries;
    this.tree = new BatchMerkleTree(crypto, leaves);
    this.header = { ringId: batch.ringId, epoch: batch.epoch, sequence: batch.sequence, leafCount: leaves.length, root: this.tree.root };
    this.message = batchSigningMessage(this.header);
  }

  get hashed(): HashedMessage {
    this.hashedMessage ??= hashMessage(this.message);
    return this.hashedMessage;
  }

  signShare(share: KeyShare): SignatureShare {
    return signShare(share, this.hashed);
  }

  /** Every entry's proof, in entry order, under the combined ring signature. */
  proofs(signature: Uint8Array): (Certificate | Heartbeat)[] {
    checkArgument(signature instanceof Uint8Array && signature.length === signatureBytes, 'signature', `${signatureBytes} bytes`);
    return this.entries.map((entry, leafIndex) => {
      const proof: BatchProof = { header: this.header, leafIndex, path: this.tree.pathOf(leafIndex), signature };
      return { ...proof, statement: entry.statement } as Certificate | Heartbeat;
    });
  }

  certificateAt(leafIndex: number, signature: Uint8Array): Certificate {
    const entry = this.entries[leafIndex];
    checkArgument(entry?.kind === 'certificate', 'leafIndex', 'the index of a certificate entry');
    checkArgument(signature instanceof Uint8Array && signature.length === signatureBytes, 'signature', `${signatureBytes} bytes`);
    return { statement: entry.statement, header: this.header, leafIndex, path: this.tree.pathOf(leafIndex), signature };
  }
}

function encodeEntry(entry: BatchEntry): Uint8Array {
  return entry.kind === 'certificate' ? encodeCertificateStatement(entry.statement) : encodeHeartbeatStatement(entry.statement);
}
