/**
 * The reader's side of a read from a tree member (client SDK, benchmarks): trust nothing the
 * member says. The certificate must verify under the ring key and name the object (and the
 * version asked for); every block is re-hashed on arrival, so the range can only be assembled
 * from blocks that hash up to the certified VGUID; with maxAgeMs the heartbeat must verify, be
 * young enough and name the same version. Any failure means "ask the ring instead".
 */
import { bytesEqual, concatBytes } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { MemoryBlockStore } from '../core/version/block-store.ts';
import { rootBlockBytesMax } from '../core/version/root-block.ts';
import type { TreeMessage } from './messages.ts';
import type { ReplicaExecutor, ReplicaTrust } from './types.ts';

type ReadRequest = Extract<TreeMessage, { type: 'read' }>;
type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

export interface VerifiedRead {
  /** The range as one array (joined from `parts` on first use when it spans several blocks). */
  readonly bytes: Uint8Array;
  /** The range as verified views of its blocks, in order: stream these to avoid a copy. */
  readonly parts: readonly Uint8Array[];
  readonly version: number;
  readonly vguid: Uint8Array;
}

/**
 * `stale`: the reply failed only on freshness (its heartbeat too old by the reader's clock, or
 * older than the version served), which an honest member with a clock apart, or one that learned
 * a certificate before the next heartbeat, can send: not evidence of tampering.
 */
export type ReadCheck = { readonly ok: true; readonly read: VerifiedRead } | { readonly ok: false; readonly reason: string; readonly stale?: true };

export interface ReadVerifier {
  readonly crypto: Crypto;
  readonly trust: ReplicaTrust;
  readonly executor: ReplicaExecutor;
}

export function verifyReadReply(verifier: ReadVerifier, request: ReadRequest, reply: ReadReply, nowMs: number): ReadCheck {
  const fail = (reason: string): ReadCheck => ({ ok: false, reason });
  if (reply.requestId !== request.requestId) return fail('reply to another request');
  if (reply.status !== 'ok') return fail(`member answered ${reply.status}`);
  if (!reply.certificate) return fail('no certificate');
  const statement = verifier.trust.verifyCommit(reply.certificate);
  if (!statement) return fail('certificate does not verify');
  if (!bytesEqual(statement.aguid, request.aguid)) return fail('certificate names another object');
  if (request.version !== null && statement.version !== request.version) return fail('certificate names another version');
  if (request.version === null && request.maxAgeMs > 0) {
    const heartbeat = reply.heartbeat ? verifier.trust.verifyHeartbeat(reply.heartbeat) : null;
    if (!heartbeat || !bytesEqual(heartbeat.aguid, request.aguid)) return fail('no valid heartbeat');
    if (nowMs - heartbeat.timestampMs > request.maxAgeMs) return { ok: false, reason: 'heartbeat too old', stale: true };
    if (heartbeat.version < statement.version) return { ok: false, reason: 'not the latest version', stale: true };
    if (heartbeat.version !== statement.version || !bytesEqual(heartbeat.vguid, statement.vguid)) return fail('not the latest version');
  }
  const store = new MemoryBlockStore(verifier.crypto, { verifyOnGet: false });
  for (const block of proofBlocksOf(request, reply)) store.put(block.kind, block.bytes);
  const executor = verifier.executor;
  const parts = executor.readParts
    ? executor.readParts(store, statement.vguid, request.offset, request.length)
    : wrap(executor.readRange(store, statement.vguid, request.offset, request.length));
  if (!parts) return fail('blocks do not prove the range');
  return { ok: true, read: verifiedRead(parts, statement.version, statement.vguid) };
}

/**
 * The blocks worth hashing. A metadata read (length 0) needs the root block alone, which an honest
 * member sends first (rangeProof): only that one is hashed, so junk a member attaches to a probe
 * (up to a 64 MiB frame, and probes go to every member) costs the reader nothing.
 */
function proofBlocksOf(request: ReadRequest, reply: ReadReply): ReadReply['blocks'] {
  if (request.length > 0) return reply.blocks;
  const root = reply.blocks[0];
  return root && root.kind === 'root' && root.bytes.length <= rootBlockBytesMax ? [root] : [];
}

function wrap(bytes: Uint8Array | null): Uint8Array[] | null {
  return bytes ? [bytes] : null;
}

function verifiedRead(parts: readonly Uint8Array[], version: number, vguid: Uint8Array): VerifiedRead {
  let joined: Uint8Array | null = parts.length === 1 ? parts[0]! : null;
  return {
    parts,
    version,
    vguid,
    get bytes(): Uint8Array {
      return (joined ??= concatBytes(parts));
    },
  };
}
