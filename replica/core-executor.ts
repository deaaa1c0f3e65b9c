/**
 * The production ReplicaExecutor: re-executes Pond updates with core/update's applyUpdate on the
 * member's block cache, exactly as the ring executed them, and reads versions with core/version.
 *
 * applyUpdate's preconditions: the update decodes (checked here), its writer signature and nonce
 * were checked — by the ring, and the certificate the member verified first vouches for that —
 * and the head's blocks are present (the member pins its head). A member therefore does not
 * re-verify the ed25519 signature: the certified digest already binds the exact signed body.
 */
import { bytesEqual } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { OceanStoreError } from '../core/errors.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { applyUpdate } from '../core/update/apply.ts';
import { decodeUpdate } from '../core/update/update-codec.ts';
import { updateDigest } from '../core/update/update-signature.ts';
import type { Update } from '../core/update/update.ts';
import type { ExecuteResult, Head, ReplicaExecutor } from './types.ts';
import { missingDataBlocks, rangeProof, readVersionParts, readVersionRange, rootBlockOf, versionBlocks } from './version-walk.ts';

export class CoreExecutor implements ReplicaExecutor {
  readonly firstVersion = 0;
  /** The last update decoded: digest() and execute() see the same bytes back to back. */
  private last: { bytes: Uint8Array; update: Update | null } | null = null;

  constructor(private readonly crypto: Crypto) {}

  digest(update: Uint8Array): Uint8Array | null {
    const decoded = this.decode(update);
    return decoded ? updateDigest(this.crypto, decoded) : null;
  }

  references(updateBytes: Uint8Array): Uint8Array[] {
    const update = this.decode(updateBytes);
    const out: Uint8Array[] = [];
    for (const clause of update?.clauses ?? []) {
      for (const a of clause.actions) {
        const sources = a.kind === 'append-blocks' ? a.blocks : a.kind === 'replace-block' || a.kind === 'insert-block' ? [a.block] : [];
        for (const source of sources) if (source.kind === 'ref') out.push(source.bguid);
      }
    }
    return out;
  }

  execute(blocks: BlockStore, head: Head | null, updateBytes: Uint8Array, timestampMs: number): ExecuteResult {
    const update = this.decode(updateBytes);
    if (!update) return { ok: false, reason: 'undecodable update' };
    let current = null;
    if (head) {
      const root = rootBlockOf(blocks, head.vguid);
      if (!root || root.version !== head.version || !bytesEqual(root.aguid, head.aguid)) return { ok: false, reason: 'head root block missing' };
      current = { vguid: head.vguid, root };
    }
    const outcome = applyUpdate({ crypto: this.crypto, blocks, timestampMs }, current, update);
    if (outcome.kind === 'abort') return { ok: false, reason: `aborted (${outcome.reason})` };
    const root = outcome.head.root;
    return { ok: true, head: { aguid: root.aguid, version: root.version, vguid: outcome.head.vguid } };
  }

  versionBlocks = versionBlocks;
  missingDataBlocks = missingDataBlocks;
  rangeProof = rangeProof;
  readRange = readVersionRange;
  readParts = readVersionParts;

  private decode(bytes: Uint8Array): Update | null {
    if (this.last && this.last.bytes === bytes) return this.last.update;
    let update: Update | null = null;
    try {
      update = decodeUpdate(bytes);
    } catch (error) {
      if (!(error instanceof OceanStoreError)) throw error;
    }
    this.last = { bytes, update };
    return update;
  }
}
