/**
 * The client's trust boundary for reads: a reply is used only if its certificate verifies under
 * the ring public key and names the object (and version) asked for, and every block re-hashes to
 * the pointer that names it, from the certified VGUID down to the bytes. Anything else is an
 * IntegrityError-worthy reply: the SDK drops it and asks another member.
 */
import { bytesEqual } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { MemoryBlockStore } from '../core/version/block-store.ts';
import type { RootBlock } from '../core/version/root-block.ts';
import { blsBatchSignatures, RingTrust } from '../replica/ring-trust.ts';
import type { ReplicaTrust } from '../replica/types.ts';
import { readVersionRange, rootBlockOf } from '../replica/version-walk.ts';
import type { ReadReply, ReadRequest } from './session.ts';

export interface VerifiedVersion {
  readonly version: number;
  readonly vguid: Uint8Array;
  readonly root: RootBlock;
  /** The bytes asked for, clipped to the version's size. */
  readonly bytes: Uint8Array;
  /** The certificate that proved it (encoded), for callers that keep proofs. */
  readonly certificate: Uint8Array;
}

export type VerifyResult = { ok: true; value: VerifiedVersion } | { ok: false; reason: string };

export function ringTrustOf(crypto: Crypto, ringId: Uint8Array, ringPublicKey: Uint8Array): ReplicaTrust {
  return new RingTrust(crypto, ringId, blsBatchSignatures(ringPublicKey));
}

export function verifyRead(crypto: Crypto, trust: ReplicaTrust, request: ReadRequest, reply: ReadReply, nowMs: number): VerifyResult {
  const fail = (reason: string): VerifyResult => ({ ok: false, reason });
  if (reply.requestId !== request.requestId) return fail('reply to another request');
  if (reply.status !== 'ok') return fail(`member answered ${reply.status}`);
  if (!reply.certificate) return fail('no certificate');
  const statement = trust.verifyCommit(reply.certificate);
  if (!statement) return fail('certificate does not verify under the ring key');
  if (!bytesEqual(statement.aguid, request.aguid)) return fail('certificate names another object');
  if (request.version !== null && statement.version !== request.version) return fail('certificate names another version');
  if (request.version === null && request.maxAgeMs > 0) {
    const heartbeat = reply.heartbeat ? trust.verifyHeartbeat(reply.heartbeat) : null;
    if (!heartbeat || !bytesEqual(heartbeat.aguid, request.aguid)) return fail('no valid heartbeat');
    if (nowMs - heartbeat.timestampMs > request.maxAgeMs) return fail('heartbeat too old');
    if (heartbeat.version !== statement.version || !bytesEqual(heartbeat.vguid, statement.vguid)) return fail('not the latest version');
  }
  // The store re-hashes each block as it goes in: a block is only found under the hash of its bytes.
  const store = new MemoryBlockStore(crypto, { verifyOnGet: false });
  for (const block of reply.blocks) store.put(block.kind, block.bytes);
  const root = rootBlockOf(store, statement.vguid);
  if (!root || root.version !== statement.version || !bytesEqual(root.aguid, statement.aguid)) return fail('root block missing or not the certified one');
  const offset = Math.min(request.offset, root.sizeBytes);
  const length = Math.min(request.length, root.sizeBytes - offset);
  const bytes = length === 0 ? new Uint8Array(0) : readVersionRange(store, statement.vguid, offset, length);
  if (!bytes) return fail('blocks do not prove the range');
  return { ok: true, value: { version: statement.version, vguid: statement.vguid, root, bytes, certificate: reply.certificate } };
}
