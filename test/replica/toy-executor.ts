/**
 * A stand-in for core/update's applyUpdate while the real one is not wired: "append these bytes
 * and these already-uploaded blocks". It builds real core/version trees and root blocks, so
 * pinning, range proofs and reads run on the production formats; only the update format is a toy.
 */
import { asBytesField, asList, asLiteral, asTuple, decode, encode } from '../../core/codec.ts';
import { HashTag, hashBytes, taggedHash, type Crypto } from '../../core/crypto.ts';
import { bytesEqual } from '../../core/bytes.ts';
import { OceanStoreError } from '../../core/errors.ts';
import type { BlockStore } from '../../core/version/block-store.ts';
import { encodeRootBlock, type RootBlock } from '../../core/version/root-block.ts';
import { appendBytes, appendLeaves } from '../../core/version/tree-edit.ts';
import type { TreeWriter } from '../../core/version/tree-splice.ts';
import type { ExecuteResult, Head, ReplicaExecutor } from '../../replica/types.ts';
import { missingDataBlocks, rangeProof, readVersionRange, rootBlockOf, versionBlocks } from '../../replica/version-walk.ts';

export const toyBlockBytes = 4096;
const toyFanoutMax = 4;
const owner = new Uint8Array(32);

export function toyUpdate(aguid: Uint8Array, bytes: Uint8Array, references: readonly Uint8Array[] = []): Uint8Array {
  return encode(['toy-append', 1, aguid, bytes, [...references]]);
}

interface ToyUpdate {
  aguid: Uint8Array;
  bytes: Uint8Array;
  references: Uint8Array[];
}

function decodeToyUpdate(update: Uint8Array): ToyUpdate | null {
  try {
    const t = asTuple(decode(update, 16 * 1024 * 1024, 'toy update'), 'toy update', 5);
    asLiteral(t[0], 'tag', 'toy-append');
    asLiteral(t[1], 'format', 1);
    return {
      aguid: asBytesField(t[2], 'aguid', { bytes: hashBytes }),
      bytes: asBytesField(t[3], 'bytes', { bytesMax: 1024 * 1024 }),
      references: asList(t[4], 'references', 256, (v) => asBytesField(v, 'reference', { bytes: hashBytes })),
    };
  } catch (error) {
    if (error instanceof OceanStoreError) return null;
    throw error;
  }
}

export class ToyExecutor implements ReplicaExecutor {
  readonly firstVersion = 0;

  constructor(private readonly crypto: Crypto) {}

  digest(update: Uint8Array): Uint8Array | null {
    return decodeToyUpdate(update) ? taggedHash(this.crypto, HashTag.update, update) : null;
  }

  references(update: Uint8Array): Uint8Array[] {
    return decodeToyUpdate(update)?.references ?? [];
  }

  execute(blocks: BlockStore, head: Head | null, update: Uint8Array, timestampMs: number): ExecuteResult {
    const u = decodeToyUpdate(update);
    if (!u) return { ok: false, reason: 'undecodable update' };
    const previous = head ? rootBlockOf(blocks, head.vguid) : null;
    if (head && !previous) return { ok: false, reason: 'head root block missing' };
    if (previous && !bytesEqual(previous.aguid, u.aguid)) return { ok: false, reason: 'wrong object' };
    const leaves = [];
    for (const bguid of u.references) {
      const bytes = blocks.get(bguid, 'data');
      if (!bytes || bytes.length === 0 || bytes.length > toyBlockBytes) return { ok: false, reason: 'referenced block missing' };
      leaves.push({ bguid, byteCount: bytes.length, leafCount: 1 });
    }
    const w: TreeWriter = { blocks, nodeCache: new Map(), shape: { blockBytes: toyBlockBytes, fanoutMax: toyFanoutMax } };
    const tree = appendBytes(w, appendLeaves(w, previous?.tree ?? null, leaves), u.bytes);
    const root: RootBlock = {
      aguid: u.aguid,
      version: head ? head.version + 1 : 0,
      previousVguid: head ? head.vguid : new Uint8Array(0),
      sizeBytes: tree?.byteCount ?? 0,
      blockBytes: toyBlockBytes,
      fanoutMax: toyFanoutMax,
      tree,
      ownerPublicKey: owner,
      writerPublicKeys: [],
      updateDigest: taggedHash(this.crypto, HashTag.update, update),
      timestampMs,
    };
    const vguid = blocks.put('root', encodeRootBlock(root));
    return { ok: true, head: { aguid: u.aguid, version: root.version, vguid } };
  }

  versionBlocks = versionBlocks;
  missingDataBlocks = missingDataBlocks;
  rangeProof = rangeProof;
  readRange = readVersionRange;
}
