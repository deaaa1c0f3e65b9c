/**
 * Verifying certificates and heartbeats with nothing but the ring public key: shape, ring id,
 * Merkle path to the signed batch root, then one pairing check per batch signature not seen
 * before.
 */
import { bytesEqual, toHex } from '../bytes.ts';
import type { Crypto } from '../crypto.ts';
import { checkArgument } from '../errors.ts';
import type { RandomSource } from '../machine.ts';
import { batchLeafHash, verifyBatchPath } from './batch-merkle.ts';
import type { BatchProof, Certificate, Heartbeat } from './certificate.ts';
import { signatureBytes } from './points.ts';
import { PublicKeyVerifier } from './signing.ts';
import { batchSigningMessage, encodeCertificateStatement, encodeHeartbeatStatement } from './statements.ts';

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
