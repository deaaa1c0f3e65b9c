/**
 * Certificates and heartbeats: a statement, the header of the batch it was agreed in, its Merkle
 * path to the batch root, and the ring's 48-byte threshold signature of the header. A verifier
 * needs only the ring public key. Building a batch (ring side), verifying (everyone), and the
 * wire codecs live here.
 */
import { bytesEqual, toHex } from '../bytes.ts';
import { hashBytes, type Crypto } from '../crypto.ts';
import { asBytesField, asList, asLiteral, asTuple, asUint, decode, encode } from '../codec.ts';
import { checkArgument } from '../errors.ts';
import type { RandomSource } from '../machine.ts';
import type { KeyShare } from './dealer.ts';
import { BatchMerkleTree, batchLeafCountMax, batchLeafHash, batchPathLengthMax, verifyBatchPath } from './batch-merkle.ts';
import { hashMessage, signatureBytes, type HashedMessage } from './points.ts';
import { PublicKeyVerifier, signShare, type SignatureShare } from './signing.ts';
import {
  batchHeaderFromTuple,
  batchHeaderTuple,
  batchSigningMessage,
  certificateStatementFromTuple,
  certificateStatementTuple,
  encodeCertificateStatement,
  encodeHeartbeatStatement,
  formatVersion,
  heartbeatStatementFromTuple,
  heartbeatStatementTuple,
  recordTag,
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

export type BatchEntry = { readonly kind: 'certificate'; readonly statement: CertificateStatement } | { readonly kind: 'heartbeat'; readonly statement: HeartbeatStatement };

/** Bytes limits for the codecs: a path of 16 hashes plus the fixed fields stays far below. */
export const certificateBytesMax = 2048;

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
    return this.entries.map((entry, leafIndex) => ({ statement: entry.statement, header: this.header, leafIndex, path: this.tree.pathOf(leafIndex), signature }) as Certificate | Heartbeat);
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

export type ProofFailure = 'ring-mismatch' | 'bad-merkle-path' | 'bad-signature' | 'malformed' | 'stale';
export type ProofCheck = { readonly ok: true } | { readonly ok: false; readonly reason: ProofFailure; readonly detail: string };

const verifiedCacheEntriesMax = 1024;

/**
 * Verifies certificates and heartbeats under one ring public key. Keeps the pairing precomputes
 * and a bounded cache of batch signatures already verified, so the many certificates of one
 * batch cost one pairing check between them plus a Merkle path each.
 */
export class CertificateVerifier {
  private readonly keyVerifier: PublicKeyVerifier;
  private readonly verified = new Set<string>();

  constructor(
    private readonly crypto: Crypto,
    ringPublicKey: Uint8Array,
  ) {
    this.keyVerifier = new PublicKeyVerifier(ringPublicKey);
  }

  get ringPublicKey(): Uint8Array {
    return this.keyVerifier.publicKey;
  }

  verifyCertificate(certificate: Certificate): ProofCheck {
    return this.checkSignature(this.checkStructure(certificate, 'certificate'), certificate);
  }

  /**
   * Checks many certificates (say, an object's whole history, or a restore's) with one pairing
   * for all their distinct batch signatures (PublicKeyVerifier.verifyMany); `random` supplies
   * the secret weights. One verdict per certificate, exact.
   */
  verifyCertificates(random: RandomSource, certificates: readonly Certificate[]): ProofCheck[] {
    checkArgument(Array.isArray(certificates), 'certificates', 'an array');
    const results: ProofCheck[] = [];
    const pending = new Map<string, { message: Uint8Array; signature: Uint8Array; at: number[] }>();
    certificates.forEach((certificate, at) => {
      const early = this.checkStructure(certificate, 'certificate');
      results.push(early.check);
      if (!early.check.ok || early.cacheKey === undefined) return;
      const entry = pending.get(early.cacheKey) ?? { message: early.message!, signature: certificate.signature, at: [] as number[] };
      entry.at.push(at);
      pending.set(early.cacheKey, entry);
    });
    const entries = [...pending.entries()];
    const verdicts = this.keyVerifier.verifyMany(random, entries.map(([, e]) => e));
    entries.forEach(([cacheKey, entry], n) => {
      if (verdicts[n]) this.remember(cacheKey);
      else for (const at of entry.at) results[at] = badSignature;
    });
    return results;
  }

  /** Checks a heartbeat; with `notBeforeMs`, one older than that is rejected as 'stale'. */
  verifyHeartbeat(heartbeat: Heartbeat, notBeforeMs?: number): ProofCheck {
    const result = this.checkSignature(this.checkStructure(heartbeat, 'heartbeat'), heartbeat);
    if (result.ok && notBeforeMs !== undefined && heartbeat.statement.timestampMs < notBeforeMs) {
      return { ok: false, reason: 'stale', detail: `heartbeat of ${heartbeat.statement.timestampMs} is older than ${notBeforeMs}` };
    }
    return result;
  }

  private checkSignature(early: Early, proof: BatchProof): ProofCheck {
    if (!early.check.ok || early.cacheKey === undefined) return early.check;
    if (!this.keyVerifier.verify(early.message!, proof.signature)) return badSignature;
    this.remember(early.cacheKey);
    return ok;
  }

  /** Everything but the pairing: shape, ring, Merkle path, and the cache of verified batches. */
  private checkStructure(proof: Certificate | Heartbeat, what: 'certificate' | 'heartbeat'): Early {
    try {
      const encoded = what === 'certificate' ? encodeCertificateStatement((proof as Certificate).statement) : encodeHeartbeatStatement((proof as Heartbeat).statement);
      return this.checkPath(proof.statement.ringId, batchLeafHash(this.crypto, encoded), proof);
    } catch (error) {
      return { check: { ok: false, reason: 'malformed', detail: `${what}: ${(error as Error).message}` } };
    }
  }

  private checkPath(ringId: Uint8Array, leaf: Uint8Array, proof: BatchProof): Early {
    let message: Uint8Array;
    try {
      message = batchSigningMessage(proof.header);
    } catch (error) {
      return { check: { ok: false, reason: 'malformed', detail: (error as Error).message } };
    }
    if (!bytesEqual(ringId, proof.header.ringId)) return { check: { ok: false, reason: 'ring-mismatch', detail: 'statement and batch header name different rings' } };
    if (!verifyBatchPath(this.crypto, proof.header.root, leaf, proof.leafIndex, proof.header.leafCount, proof.path)) {
      return { check: { ok: false, reason: 'bad-merkle-path', detail: 'the Merkle path does not lead from the statement to the signed batch root' } };
    }
    if (!(proof.signature instanceof Uint8Array) || proof.signature.length !== signatureBytes) {
      return { check: { ok: false, reason: 'malformed', detail: `signature must be ${signatureBytes} bytes` } };
    }
    const cacheKey = toHex(message) + toHex(proof.signature);
    if (this.verified.has(cacheKey)) return { check: ok };
    return { check: ok, cacheKey, message };
  }

  private remember(cacheKey: string): void {
    if (this.verified.size >= verifiedCacheEntriesMax) this.verified.delete(this.verified.values().next().value as string);
    this.verified.add(cacheKey);
  }
}

/** A structural check's result; `cacheKey` set means the batch signature still needs a pairing. */
interface Early {
  readonly check: ProofCheck;
  readonly cacheKey?: string;
  readonly message?: Uint8Array;
}

const ok: ProofCheck = { ok: true };
const badSignature: ProofCheck = { ok: false, reason: 'bad-signature', detail: 'the batch signature does not verify under the ring public key' };

/** One-shot check (builds the precomputes each call: keep a CertificateVerifier when verifying many). */
export function verifyCertificate(crypto: Crypto, ringPublicKey: Uint8Array | CertificateVerifier, certificate: Certificate): ProofCheck {
  const verifier = verifierOf(crypto, ringPublicKey);
  return verifier ? verifier.verifyCertificate(certificate) : { ok: false, reason: 'malformed', detail: 'the ring public key is not a valid G2 point' };
}

export function verifyHeartbeat(crypto: Crypto, ringPublicKey: Uint8Array | CertificateVerifier, heartbeat: Heartbeat, notBeforeMs?: number): ProofCheck {
  const verifier = verifierOf(crypto, ringPublicKey);
  return verifier ? verifier.verifyHeartbeat(heartbeat, notBeforeMs) : { ok: false, reason: 'malformed', detail: 'the ring public key is not a valid G2 point' };
}

function verifierOf(crypto: Crypto, key: Uint8Array | CertificateVerifier): CertificateVerifier | null {
  if (key instanceof CertificateVerifier) return key;
  try {
    return new CertificateVerifier(crypto, key);
  } catch {
    return null;
  }
}

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
