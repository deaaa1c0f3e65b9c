/**
 * A test "ring": produces an object's certified history the way the ring does — execute each
 * update, certify (aguid, version, VGUID, update digest) in real core/threshold batches (Merkle
 * path + batch signature) — and signs heartbeats. The batch signature is either real threshold
 * BLS (dealt key, t shares combined) or a fast fake (a keyed hash of the batch header) that only
 * this ring can produce; everything else is byte-for-byte the production format.
 */
import { concatBytes, bytesEqual } from '../../core/bytes.ts';
import { aguidOf, signerOf, type Crypto } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Action } from '../../core/update/update.ts';
import { CoreExecutor } from '../../replica/core-executor.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import {
  SignedBatchBuilder,
  combineShares,
  dealRingKey,
  encodeCertificate,
  encodeHeartbeat,
  type DealtRingKey,
  type Heartbeat,
} from '../../core/threshold/index.ts';
import type { LogEntry } from '../../replica/messages.ts';
import { RingTrust, blsBatchSignatures, type BatchSignatureCheck } from '../../replica/ring-trust.ts';
import type { Head, ReplicaExecutor, ReplicaTrust } from '../../replica/types.ts';
import { Prng } from '../../sim/prng.ts';
import { ToyExecutor, toyBlockBytes, toyUpdate } from './toy-executor.ts';

export type SignerKind = 'fake' | 'bls';

export interface HistoryVersion {
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly timestampMs: number;
  readonly entry: LogEntry;
}

/** Signs batch headers: fake (keyed hash) or real threshold BLS (2 of 4 shares combined). */
export class TestRingSigner {
  readonly ringId: Uint8Array;
  private readonly secret: Uint8Array;
  private readonly key: DealtRingKey | null;

  constructor(
    private readonly crypto: Crypto,
    readonly kind: SignerKind,
    seed: number,
  ) {
    const random = new Prng(seed);
    this.ringId = crypto.sha256([random.bytes(32)]);
    this.secret = random.bytes(32);
    this.key = kind === 'bls' ? dealRingKey(random, 4, 2) : null;
  }

  sign(builder: SignedBatchBuilder): Uint8Array {
    if (this.key) return combineShares(2, [builder.signShare(this.key.shares[0]!), builder.signShare(this.key.shares[2]!)]);
    return this.fakeSignature(builder.message);
  }

  /** What a member checks: the real BLS check, or the fake one (a forger without `secret` cannot pass it). */
  signatureCheck(): BatchSignatureCheck {
    if (this.key) return blsBatchSignatures(this.key.publicKey);
    return { verify: (message, signature) => bytesEqual(this.fakeSignature(message), signature) };
  }

  trust(): ReplicaTrust {
    return new RingTrust(this.crypto, this.ringId, this.signatureCheck());
  }

  private fakeSignature(message: Uint8Array): Uint8Array {
    const h = this.crypto.sha256([this.secret, message]);
    return concatBytes([h, h.subarray(0, 16)]);
  }
}

export type ObjectModel = 'toy' | 'core';

/** The object a test history is about: its AGUID, how to write version v, and who re-executes it. */
export interface TestObject {
  readonly aguid: Uint8Array;
  readonly executor: ReplicaExecutor;
  /** Version v's update, appending `bytes` inline plus `references` (uploaded data blocks). */
  update(version: number, bytes: Uint8Array, references: readonly Uint8Array[], random: Prng): Uint8Array;
}

export function testObject(crypto: Crypto, model: ObjectModel, seed: number, blockBytes = toyBlockBytes): TestObject {
  if (model === 'toy') {
    const aguid = crypto.sha256([new TextEncoder().encode(`object-${seed}`)]);
    return { aguid, executor: new ToyExecutor(crypto), update: (_v, bytes, references) => toyUpdate(aguid, bytes, references) };
  }
  const signer = signerOf(crypto, new Prng(seed).fork('owner').bytes(32));
  const name = `object-${seed}`;
  const aguid = aguidOf(crypto, signer.publicKey, name);
  let sizeBytes = 0;
  return {
    aguid,
    executor: new CoreExecutor(crypto),
    update(version, bytes, references, random) {
      const actions: Action[] = [];
      if (version === 0) actions.push({ kind: 'create', name, blockBytes, fanoutMax: 16, writerPublicKeys: [] });
      if (version % 5 === 3 && sizeBytes > 10) {
        const offset = random.int(sizeBytes - 10);
        actions.push({ kind: 'write-bytes', offset, bytes: bytes.subarray(0, Math.min(bytes.length, sizeBytes - offset)) });
      } else {
        actions.push({ kind: 'append', bytes });
        sizeBytes += bytes.length;
      }
      if (references.length > 0) {
        actions.push({ kind: 'append-blocks', blocks: references.map((bguid) => ({ kind: 'ref' as const, bguid, length: toyBlockBytes })) });
        sizeBytes += references.length * toyBlockBytes; // references are toyBlockBytes long: keep blockBytes >= that
      }
      const unsigned = { aguid, writerPublicKey: signer.publicKey, nonce: version + 1, clauses: [{ predicates: [{ kind: 'always' as const }], actions }] };
      return encodeUpdate(signUpdate(crypto, signer, unsigned));
    },
  };
}

export interface HistoryOptions {
  readonly versionCount: number;
  /** Bytes appended inline per update. */
  readonly appendBytes?: number;
  /** Every n-th update also references an uploaded block (carried in the entry's blocks). */
  readonly referenceEvery?: number;
  /** Statements per signed batch (certificates share one signature, each with its own path). */
  readonly batchSize?: number;
  readonly startTimestampMs?: number;
  readonly seed?: number;
  /** Where the ring keeps its blocks (a fresh memory store if not given): tests read expected bytes from it. */
  readonly blocks?: MemoryBlockStore;
}

/** The ring's exact history of one object: versions 0..versionCount-1, certified. */
export function buildHistory(crypto: Crypto, signer: TestRingSigner, object: TestObject, options: HistoryOptions): HistoryVersion[] {
  const random = new Prng(options.seed ?? 1);
  const { aguid, executor } = object;
  const blocks = options.blocks ?? new MemoryBlockStore(crypto, { verifyOnGet: false });
  const out: HistoryVersion[] = [];
  let head: Head | null = null;
  const batchSize = options.batchSize ?? 3;
  for (let start = 0; start < options.versionCount; start += batchSize) {
    const made: { update: Uint8Array; head: Head; timestampMs: number; blocks: Uint8Array[] }[] = [];
    for (let v = start; v < Math.min(options.versionCount, start + batchSize); v++) {
      const referenced = options.referenceEvery && v % options.referenceEvery === 1 ? [random.bytes(toyBlockBytes)] : [];
      const references = referenced.map((b) => blocks.put('data', b));
      const update = object.update(v, random.bytes(options.appendBytes ?? 1000), references, random);
      const timestampMs = (options.startTimestampMs ?? 0) + v;
      const result = executor.execute(blocks, head, update, timestampMs);
      if (!result.ok) throw new Error(`test ring could not apply version ${v}: ${result.reason}`);
      head = result.head;
      made.push({ update, head, timestampMs, blocks: referenced });
    }
    const certificates = certify(
      crypto,
      signer,
      start,
      made.map((m) => ({ aguid, version: m.head.version, vguid: m.head.vguid, updateDigest: executor.digest(m.update)!, timestampMs: m.timestampMs })),
    );
    made.forEach((m, i) => {
      out.push({ version: m.head.version, vguid: m.head.vguid, timestampMs: m.timestampMs, entry: { update: m.update, certificate: certificates[i]!, blocks: m.blocks } });
    });
  }
  return out;
}

/** Certificates for `statements` (commits unless `outcome` says otherwise), all in one signed batch. */
export function certify(
  crypto: Crypto,
  signer: TestRingSigner,
  sequence: number,
  statements: readonly { aguid: Uint8Array; version: number; vguid: Uint8Array; updateDigest: Uint8Array; timestampMs: number; outcome?: 'commit' | 'abort' }[],
): Uint8Array[] {
  const builder = new SignedBatchBuilder(
    crypto,
    { ringId: signer.ringId, epoch: 0, sequence },
    statements.map((s) => ({
      kind: 'certificate' as const,
      statement: { ringId: signer.ringId, rootFragmentRoot: new Uint8Array(0), outcome: s.outcome ?? ('commit' as const), ...s },
    })),
  );
  const signature = signer.sign(builder);
  return statements.map((_s, i) => encodeCertificate(builder.certificateAt(i, signature)));
}

export function makeHeartbeat(crypto: Crypto, signer: TestRingSigner, aguid: Uint8Array, latest: HistoryVersion, timestampMs: number, sequence: number): Uint8Array {
  const builder = new SignedBatchBuilder(crypto, { ringId: signer.ringId, epoch: 0, sequence }, [
    { kind: 'heartbeat', statement: { ringId: signer.ringId, aguid, version: latest.version, vguid: latest.vguid, timestampMs } },
  ]);
  const proof = builder.proofs(signer.sign(builder))[0] as Heartbeat;
  return encodeHeartbeat(proof);
}

/** The tree tests' usual world: a fake-signing ring, one core object, 8 versions (every third referencing a block). */
export function eightVersionSetup(crypto: Crypto) {
  const signer = new TestRingSigner(crypto, 'fake', 5);
  const object = testObject(crypto, 'core', 5);
  const history = buildHistory(crypto, signer, object, { versionCount: 8, referenceEvery: 3, seed: 5 });
  return { signer, object, history };
}

/**
 * An object owned by a fresh writer key: version 0 creates it, version 1 appends `blockCount`
 * blocks of `blockBytes` by reference (its entry carries them: by reference on the wire when over
 * inlineBlockBytesMax), then `tail` small appends. `blocks` is what a ring server's store holds.
 */
export function largeObjectHistory(crypto: Crypto, blockBytes: number, blockCount: number, tail: number) {
  const signer = new TestRingSigner(crypto, 'fake', 3);
  const writer = signerOf(crypto, new Prng(3).bytes(32));
  const aguid = aguidOf(crypto, writer.publicKey, 'large');
  const executor = new CoreExecutor(crypto);
  const blocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
  const random = new Prng(4);
  const data = Array.from({ length: blockCount }, () => random.bytes(blockBytes));
  const refs = data.map((b) => ({ kind: 'ref' as const, bguid: blocks.put('data', b), length: blockBytes }));
  const actions: Action[][] = [
    [{ kind: 'create', name: 'large', blockBytes, fanoutMax: 16, writerPublicKeys: [] }],
    [{ kind: 'append-blocks', blocks: refs }],
    ...Array.from({ length: tail }, (_, i): Action[] => [{ kind: 'append', bytes: random.bytes(100 + i) }]),
  ];
  const updates = actions.map((a, i) => encodeUpdate(signUpdate(crypto, writer, { aguid, writerPublicKey: writer.publicKey, nonce: i + 1, clauses: [{ predicates: [], actions: a }] })));
  let head: Head | null = null;
  const heads: Head[] = [];
  for (const [i, update] of updates.entries()) {
    const result = executor.execute(blocks, head, update, 1000 + i);
    if (!result.ok) throw new Error(result.reason);
    heads.push((head = result.head));
  }
  const certificates = certify(crypto, signer, 1, heads.map((h, i) => ({ aguid, version: h.version, vguid: h.vguid, updateDigest: executor.digest(updates[i]!)!, timestampMs: 1000 + i })));
  const history = heads.map((h, i): HistoryVersion => {
    const entry: LogEntry = { update: updates[i]!, certificate: certificates[i]!, blocks: i === 1 ? data : [] };
    return { version: h.version, vguid: h.vguid, timestampMs: 1000 + i, entry };
  });
  return { signer, aguid, executor, history, blocks, data };
}
