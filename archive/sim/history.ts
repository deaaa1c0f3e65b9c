/**
 * Test and benchmark fixture: a certified history of objects built with the real data model
 * (core/version) and real threshold certificates (core/threshold), without a ring. Each round
 * makes one new version of every object (version 0 = fresh random bytes, later versions overwrite
 * a random range and sometimes append) and certifies the round as one signed batch, as the ring
 * would. What the archiver is handed per version: the blocks the version added, its root block's
 * BGUID (the VGUID) and its encoded certificate.
 */
import { toHex } from '../../core/bytes.ts';
import type { Crypto } from '../../core/crypto.ts';
import { aguidOf, taggedHash, HashTag } from '../../core/crypto.ts';
import { SignedBatchBuilder, combineShares, dealRingKey, encodeCertificate } from '../../core/threshold/index.ts';
import type { BlockKind } from '../../core/version/block.ts';
import { bguidOf } from '../../core/version/block.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { encodeRootBlock, type TreeRoot } from '../../core/version/root-block.ts';
import { appendBytes, writeBytes } from '../../core/version/tree-edit.ts';
import type { TreeWriter } from '../../core/version/tree-splice.ts';
import type { Prng } from '../../sim/prng.ts';
import type { BlockToArchive } from '../archiver-types.ts';

export interface BuiltVersion {
  name: string;
  aguid: Uint8Array;
  version: number;
  vguid: Uint8Array;
  content: Uint8Array;
  newBlocks: BlockToArchive[];
  certificate: Uint8Array;
}

export interface HistoryOptions {
  objectCount: number;
  versionCount: number;
  sizeBytes: number;
  blockBytes: number;
  fanoutMax?: number;
}

export interface History {
  ringPublicKey: Uint8Array;
  ownerPublicKey: Uint8Array;
  versions: BuiltVersion[];
}

/** A memory store that records the blocks each version adds (new BGUIDs only). */
class RecordingStore extends MemoryBlockStore {
  added: BlockToArchive[] = [];

  constructor(private readonly hashing: Crypto) {
    super(hashing, { verifyOnGet: false });
  }

  override put(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    const bguid = bguidOf(this.hashing, kind, bytes);
    this.putHashed(bguid, kind, bytes);
    return bguid;
  }

  override putHashed(bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): void {
    if (!this.has(bguid)) this.added.push({ bguid, bytes });
    super.putHashed(bguid, kind, bytes);
  }
}

export function buildHistory(crypto: Crypto, random: Prng, options: HistoryOptions): History {
  const ringKey = dealRingKey(random, 4, 2);
  const ringId = taggedHash(crypto, HashTag.objectTable, ringKey.publicKey);
  const ownerSecret = random.bytes(32);
  const ownerPublicKey = crypto.ed25519PublicKey(ownerSecret);
  const store = new RecordingStore(crypto);
  const writer: TreeWriter = { blocks: store, shape: { blockBytes: options.blockBytes, fanoutMax: options.fanoutMax ?? 16 } };
  const heads = new Map<string, { tree: TreeRoot | null; vguid: Uint8Array; content: Uint8Array }>();
  const versions: BuiltVersion[] = [];
  for (let round = 0; round < options.versionCount; round++) {
    const pending: Omit<BuiltVersion, 'certificate'>[] = [];
    for (let o = 0; o < options.objectCount; o++) {
      const name = `object-${o}`;
      const aguid = aguidOf(crypto, ownerPublicKey, name);
      const head = heads.get(name);
      store.added = [];
      let tree: TreeRoot | null;
      let content: Uint8Array;
      if (!head) {
        content = random.bytes(options.sizeBytes);
        tree = appendBytes(writer, null, content);
      } else {
        const edit = random.bytes(1 + random.int(4096));
        const offset = random.int(head.content.length + 1);
        tree = writeBytes(writer, head.tree, offset, edit);
        content = new Uint8Array(Math.max(head.content.length, offset + edit.length));
        content.set(head.content);
        content.set(edit, offset);
      }
      const rootBytes = encodeRootBlock({
        aguid,
        version: round,
        previousVguid: head ? head.vguid : new Uint8Array(0),
        sizeBytes: content.length,
        blockBytes: options.blockBytes,
        fanoutMax: writer.shape.fanoutMax,
        tree,
        ownerPublicKey,
        writerPublicKeys: [],
        updateDigest: taggedHash(crypto, HashTag.update, aguid, Uint8Array.of(round)),
        timestampMs: 1_700_000_000_000 + round,
      });
      const vguid = store.put('root', rootBytes);
      heads.set(name, { tree, vguid, content });
      pending.push({ name, aguid, version: round, vguid, content, newBlocks: store.added });
    }
    const statements = pending.map((p) => ({
      ringId,
      aguid: p.aguid,
      version: p.version,
      vguid: p.vguid,
      rootFragmentRoot: new Uint8Array(0),
      updateDigest: taggedHash(crypto, HashTag.update, p.aguid, Uint8Array.of(p.version)),
      outcome: 'commit' as const,
      timestampMs: 1_700_000_000_000 + round,
    }));
    const batch = new SignedBatchBuilder(crypto, { ringId, epoch: 0, sequence: round + 1 }, statements.map((statement) => ({ kind: 'certificate' as const, statement })));
    const signature = combineShares(2, [batch.signShare(ringKey.shares[0]!), batch.signShare(ringKey.shares[2]!)]);
    pending.forEach((p, i) => versions.push({ ...p, certificate: encodeCertificate(batch.certificateAt(i, signature)) }));
  }
  return { ringPublicKey: ringKey.publicKey, ownerPublicKey, versions };
}

export function versionKey(aguid: Uint8Array, version: number): string {
  return `${toHex(aguid)}@${version}`;
}
