/**
 * Proof checks and the new primary's rule (Castro & Liskov TOCS'02 §4.4–4.5): the new view
 * re-proposes, for every sequence number above the highest stable checkpoint, the batch of the
 * highest-view prepared proof, and a null batch where none exists; a new-view that proposes
 * anything else, or rests on forged or too few view changes, is rejected. Also: a replica fed
 * arbitrary decoded garbage never throws (bad input is dropped and counted).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { signerOf, type Signer } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { Prng } from '../../sim/prng.ts';
import { fakeCertificateSigner, fakeCertificateVerifier } from '../../ring/certificate-signer.ts';
import { decodeRingMessage, encodeRingMessage } from '../../ring/codec.ts';
import { message } from './arbitraries.ts';
import { KvService } from '../../ring/kv-service.ts';
import type { Batch, Checkpoint, NewView, PrePrepare, Prepare, PreparedProof, ViewChange } from '../../ring/messages.ts';
import { newViewProposals, newViewValid, nullBatch, viewChangeValid, type ProofContext } from '../../ring/proofs.ts';
import { Replica } from '../../ring/replica.ts';
import { batchDigest, signMessage } from '../../ring/signing.ts';

const signers: Signer[] = [0, 1, 2, 3].map((i) => signerOf(fakeCrypto, new Uint8Array(32).fill(i + 1)));
const ctx: ProofContext = { crypto: fakeCrypto, publicKeys: signers.map((s) => s.publicKey), f: 1, watermarkWindow: 16 };
const sign = <T,>(i: number, m: object): T => signMessage(fakeCrypto, signers[i]!, m as never) as T;
const batchOf = (tag: number): Batch => ({ timestampMs: tag, heartbeat: false, requests: [] });

function prepared(view: number, seq: number, batch: Batch): PreparedProof {
  const digest = batchDigest(fakeCrypto, batch);
  const primary = view % 4;
  const prePrepare = sign<PrePrepare>(primary, { kind: 'pre-prepare', view, seq, digest, replica: primary, batch });
  const prepares = [0, 1, 2, 3].filter((i) => i !== primary).slice(0, 2).map((i) => sign<Prepare>(i, { kind: 'prepare', view, seq, digest, replica: i }));
  return { prePrepare, prepares };
}

function viewChange(replica: number, newView: number, proofs: PreparedProof[], stableSeq = 0, checkpointProof: Checkpoint[] = []): ViewChange {
  return sign<ViewChange>(replica, { kind: 'view-change', newView, stableSeq, checkpointProof, prepared: proofs, replica });
}

function newView(view: number, vcs: ViewChange[], digests?: Uint8Array[]): NewView {
  const primary = view % 4;
  const { proposals } = newViewProposals(ctx, vcs);
  const prePrepares = proposals.map((p, i) => sign<PrePrepare>(primary, { kind: 'pre-prepare', view, seq: p.seq, digest: digests?.[i] ?? p.digest, replica: primary, batch: null }));
  return sign<NewView>(primary, { kind: 'new-view', view, viewChanges: vcs, prePrepares, replica: primary });
}

describe('view-change proofs', () => {
  it('re-proposes the highest-view prepared batch per seq and fills gaps with null batches', () => {
    const old = prepared(0, 1, batchOf(1));
    const newer = prepared(1, 1, batchOf(2));
    const only3 = prepared(1, 3, batchOf(3));
    const vcs = [viewChange(2, 2, [old]), viewChange(3, 2, [newer, only3]), viewChange(0, 2, [])];
    for (const vc of vcs) expect(viewChangeValid(ctx, vc)).toBe(true);
    const { minSeq, proposals } = newViewProposals(ctx, vcs);
    expect(minSeq).toBe(0);
    expect(proposals.map((p) => p.seq)).toEqual([1, 2, 3]);
    expect(toHex(proposals[0]!.digest)).toBe(toHex(newer.prePrepare.digest));
    expect(proposals[1]!.batch).toEqual(nullBatch);
    expect(toHex(proposals[2]!.digest)).toBe(toHex(only3.prePrepare.digest));
    expect(newViewValid(ctx, newView(2, vcs))).not.toBeNull();
  });

  it('rejects a new-view that proposes another batch, rests on 2f view changes, or carries a forged prepared proof', () => {
    const p = prepared(0, 1, batchOf(1));
    const vcs = [viewChange(1, 1, [p]), viewChange(2, 1, []), viewChange(3, 1, [])];
    expect(newViewValid(ctx, newView(1, vcs, [batchDigest(fakeCrypto, batchOf(9))]))).toBeNull();
    expect(newViewValid(ctx, newView(1, vcs.slice(0, 2)))).toBeNull();
    const forged: PreparedProof = { ...p, prepares: [p.prepares[0]!, { ...p.prepares[1]!, signature: new Uint8Array(64) }] };
    expect(viewChangeValid(ctx, viewChange(1, 1, [forged]))).toBe(false);
    // A prepared proof from the view being entered (or later) cannot be in a view change.
    expect(viewChangeValid(ctx, viewChange(1, 1, [prepared(1, 1, batchOf(1))]))).toBe(false);
  });
});

describe('replica boundary', () => {
  it('never throws on arbitrary well-formed but hostile messages from members and strangers', () => {
    const replica = new Replica(
      { nodeId: 'ring-1', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
      {
        members: signers.map((s, i) => ({ id: `ring-${i}`, publicKey: s.publicKey })),
        f: 1,
        crypto: fakeCrypto,
        signer: signers[1]!,
        certificateSigner: fakeCertificateSigner(fakeCrypto, 1, 2),
        certificateVerifier: fakeCertificateVerifier(fakeCrypto),
        service: (store) => new KvService(fakeCrypto, store),
      },
    );
    fc.assert(
      fc.property(message, fc.constantFrom('ring-0', 'ring-2', 'stranger'), fc.nat({ max: 10_000 }), (m, from, nowMs) => {
        // Through the codec, as a host would deliver it.
        replica.onMessage(from, decodeRingMessage(encodeRingMessage(m)), nowMs);
        replica.onTick(nowMs);
      }),
      { numRuns: 1500 },
    );
    // Hand-made hostile messages that do decode: wrong views, bad signatures, absurd seqs.
    const hostile = [
      { kind: 'pre-prepare', view: 0, seq: 1, digest: new Uint8Array(32), replica: 0, signature: new Uint8Array(64), batch: batchOf(1) },
      { kind: 'commit', view: 0, seq: 2 ** 40, digest: new Uint8Array(32), replica: 3, signature: new Uint8Array(64) },
      { kind: 'checkpoint-proof', checkpoints: [] },
      { kind: 'state-reply', seq: 8, snapshot: new Uint8Array(5), checkpoints: [] },
      { kind: 'view-change', newView: 5, stableSeq: 0, checkpointProof: [], prepared: [], replica: 9, signature: new Uint8Array(64) },
    ] as const;
    for (const m of hostile) expect(() => replica.onMessage('ring-0', m as never, 1)).not.toThrow();
    // Nothing forged got ordered, and the bad input was counted.
    expect(replica.lastExecuted).toBe(0);
    expect([...replica.drops.values()].reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
  });
});
