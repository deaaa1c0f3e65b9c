/**
 * ReplicaTrust over the ring's real certificates and heartbeats (core/threshold): decode, check
 * the Merkle path from the statement to the batch root, check the batch signature, and require
 * the right ring and a commit. The batch-signature check is injected: `blsBatchSignatures` (the
 * ring public key; what production uses) or, in simulation, a fast fake that the test ring signs
 * with. Either way every other byte is checked exactly as in production.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { OceanStoreError } from '../core/errors.ts';
import {
  PublicKeyVerifier,
  batchLeafHash,
  batchSigningMessage,
  decodeCertificate,
  decodeHeartbeat,
  encodeCertificateStatement,
  encodeHeartbeatStatement,
  verifyBatchPath,
  type BatchProof,
} from '../core/threshold/index.ts';
import type { CommitStatement, HeartbeatStatement, ReplicaTrust } from './types.ts';

export interface BatchSignatureCheck {
  /** True iff `signature` is the ring's signature of the batch header encoding `message`. Never throws. */
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** The production check: BLS under the ring public key (pairing precomputes kept), results cached per batch. */
export function blsBatchSignatures(ringKey: Uint8Array | PublicKeyVerifier, cacheEntriesMax = 1024): BatchSignatureCheck {
  // A verifier already made for this key is shared: parsing the key again costs a G2 check and precomputes.
  const verifier = ringKey instanceof PublicKeyVerifier ? ringKey : new PublicKeyVerifier(ringKey);
  const verified = new Set<string>();
  return {
    verify(message, signature) {
      const key = toHex(message) + toHex(signature);
      if (verified.has(key)) return true;
      if (!verifier.verify(message, signature)) return false;
      if (verified.size >= cacheEntriesMax) verified.delete(verified.values().next().value as string);
      verified.add(key);
      return true;
    },
  };
}

export class RingTrust implements ReplicaTrust {
  constructor(
    private readonly crypto: Crypto,
    private readonly ringId: Uint8Array,
    private readonly signatures: BatchSignatureCheck,
  ) {}

  verifyCommit(certificate: Uint8Array): CommitStatement | null {
    const decoded = attempt(() => decodeCertificate(certificate));
    if (!decoded || decoded.statement.outcome !== 'commit') return null;
    const leaf = attempt(() => batchLeafHash(this.crypto, encodeCertificateStatement(decoded.statement)));
    if (!leaf || !this.proves(decoded.statement.ringId, leaf, decoded)) return null;
    const s = decoded.statement;
    return { aguid: s.aguid, version: s.version, vguid: s.vguid, updateDigest: s.updateDigest, timestampMs: s.timestampMs };
  }

  verifyHeartbeat(heartbeat: Uint8Array): HeartbeatStatement | null {
    const decoded = attempt(() => decodeHeartbeat(heartbeat));
    if (!decoded) return null;
    const leaf = attempt(() => batchLeafHash(this.crypto, encodeHeartbeatStatement(decoded.statement)));
    if (!leaf || !this.proves(decoded.statement.ringId, leaf, decoded)) return null;
    const s = decoded.statement;
    return { aguid: s.aguid, version: s.version, vguid: s.vguid, timestampMs: s.timestampMs };
  }

  private proves(statementRing: Uint8Array, leaf: Uint8Array, proof: BatchProof): boolean {
    if (!bytesEqual(statementRing, this.ringId) || !bytesEqual(proof.header.ringId, this.ringId)) return false;
    if (!verifyBatchPath(this.crypto, proof.header.root, leaf, proof.leafIndex, proof.header.leafCount, proof.path)) return false;
    const message = attempt(() => batchSigningMessage(proof.header));
    return message !== null && this.signatures.verify(message, proof.signature);
  }
}

function attempt<T>(f: () => T): T | null {
  try {
    return f();
  } catch (error) {
    if (error instanceof OceanStoreError) return null;
    throw error;
  }
}
