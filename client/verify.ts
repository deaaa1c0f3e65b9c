/**
 * The client's trust boundary for reads. replica/verify-read.ts does the checking (certificate
 * under the ring key naming the object and version, heartbeat freshness, every block re-hashed
 * from the certified VGUID down to the bytes); this adds the verified root block, which the SDK
 * needs for sizes, timestamps and ACLs.
 */
import { bytesEqual } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import type { PublicKeyVerifier } from '../core/threshold/signing.ts';
import { bguidOf } from '../core/version/block.ts';
import { decodeRootBlock, type RootBlock } from '../core/version/root-block.ts';
import { CoreExecutor } from '../replica/core-executor.ts';
import { blsBatchSignatures, RingTrust } from '../replica/ring-trust.ts';
import type { ReplicaTrust } from '../replica/types.ts';
import { verifyReadReply } from '../replica/verify-read.ts';
import type { ReadReply, ReadRequest } from './session.ts';

export interface VerifiedVersion {
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly root: RootBlock;
  /** The bytes asked for (requests are always inside the version's size). */
  readonly bytes: Uint8Array;
  /** The same bytes as verified views of their blocks, in order (streams write these: no copy). */
  readonly parts: readonly Uint8Array[];
}

/** `stale`: failed only on freshness (see replica/verify-read.ts ReadCheck), not a forgery. */
export type VerifyResult = { ok: true; value: VerifiedVersion } | { ok: false; reason: string; stale?: true };

/** `ringKey`: the ring public key, or one already parsed (ClusterView.ringKey) to share. */
export function ringTrustOf(crypto: Crypto, ringId: Uint8Array, ringKey: Uint8Array | PublicKeyVerifier): ReplicaTrust {
  return new RingTrust(crypto, ringId, blsBatchSignatures(ringKey));
}

const executors = new WeakMap<Crypto, CoreExecutor>();

export function verifyRead(crypto: Crypto, trust: ReplicaTrust, request: ReadRequest, reply: ReadReply, nowMs: number): VerifyResult {
  let executor = executors.get(crypto);
  if (!executor) executors.set(crypto, (executor = new CoreExecutor(crypto)));
  const checked = verifyReadReply({ crypto, trust, executor }, request, reply, nowMs);
  if (!checked.ok) return checked.stale ? { ok: false, reason: checked.reason, stale: true } : { ok: false, reason: checked.reason };
  // The root block is among the proof blocks; only the one hashing to the certified VGUID counts.
  const rootBytes = reply.blocks.find((b) => b.kind === 'root' && bytesEqual(bguidOf(crypto, 'root', b.bytes), checked.read.vguid));
  if (!rootBytes) return { ok: false, reason: 'root block missing' };
  const root = decodeRootBlock(rootBytes.bytes);
  const read = checked.read;
  return {
    ok: true,
    value: {
      version: read.version,
      vguid: read.vguid,
      root,
      parts: read.parts,
      get bytes(): Uint8Array {
        return read.bytes;
      },
    },
  };
}
