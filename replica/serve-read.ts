/**
 * Serving a read from a tree member. The member proves nothing by itself: it hands the reader the
 * version's certificate, the newest heartbeat, and the blocks from the VGUID down to the bytes
 * asked for; the reader checks all of it (replica/verify-read.ts). A member that is behind the
 * freshness the reader demands (maxAgeMs) says so, and the reader goes to the ring.
 */
import type { BlockCache } from './block-cache.ts';
import type { TreeMessage } from './messages.ts';
import type { ObjectCopy } from './object-copy.ts';
import type { ReplicaExecutor } from './types.ts';
import { rootBlockOf } from './version-walk.ts';

type ReadRequest = Extract<TreeMessage, { type: 'read' }>;
type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

export function serveRead(copy: ObjectCopy | null, executor: ReplicaExecutor, cache: BlockCache, request: ReadRequest, nowMs: number): ReadReply {
  const reply = (status: ReadReply['status'], certificate: Uint8Array | null = null, blocks: ReadReply['blocks'] = []): ReadReply => ({
    type: 'read-reply',
    requestId: request.requestId,
    status,
    certificate,
    heartbeat: copy?.heartbeat?.bytes ?? null,
    blocks,
  });
  if (!copy) return reply('unknown-object');
  const head = copy.head;
  if (!head) return reply('not-cached');
  if (request.version === null && request.maxAgeMs > 0) {
    const heartbeat = copy.heartbeat?.statement;
    // Fresh means: a heartbeat young enough, and we hold the version it names.
    if (!heartbeat || nowMs - heartbeat.timestampMs > request.maxAgeMs || heartbeat.version > head.version) return reply('too-stale');
  }
  const record = copy.log.get(request.version ?? head.version);
  if (!record) return reply('not-cached');
  const root = rootBlockOf(cache, record.vguid);
  if (root && request.offset + request.length > root.sizeBytes) return reply('out-of-range', record.certificate);
  const proof = executor.rangeProof(cache, record.vguid, request.offset, request.length);
  if (!proof) return reply('not-cached', record.certificate);
  return reply(
    'ok',
    record.certificate,
    proof.map((b) => ({ kind: b.kind, bytes: b.bytes })),
  );
}
