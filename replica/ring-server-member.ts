/**
 * A ring server's place in the dissemination tree: the root of every tree of its ring's objects
 * (replica/root.ts) and the member of last resort for reads (the SDK asks secondaries first and
 * falls back here). It is fed by the ring replica's host:
 *   - `onExecuted(statement, update, blocks)` for every committed update the object service ran,
 *   - `onCertificate(seq, root, signature, statements)` when the batch's threshold signature exists.
 * From those it assembles core/threshold certificates (statement + batch header + Merkle path +
 * signature) and heartbeats, keeps (version -> VGUID, certificate) durably, publishes certified
 * updates down the tree, and answers reads with proofs from the ring's own block store.
 *
 * Only the f+1 combiners of a batch learn its signature from the ring, so a member that combined
 * one shares it with the other ring servers (`batch-certificate`, re-checked under the ring key by
 * each receiver): every root then certifies every version and its trees see no gap. Certified
 * updates are published in version order per object from a small reorder buffer (certificates of
 * different batches arrive in any order). Updates whose referenced blocks are large go down as
 * block references; children fetch the blocks by BGUID (`fetch-blocks`) from the ring's store.
 */
import { bytesEqual, ownedBytes, toHex } from '../core/bytes.ts';
import { asBytesField, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { hashBytes, type Crypto } from '../core/crypto.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import { batchLeafHash, BatchMerkleTree } from '../core/threshold/batch-merkle.ts';
import { encodeCertificate, encodeHeartbeat } from '../core/threshold/certificate-codec.ts';
import { certificateStatementFromTuple, heartbeatStatementFromTuple, statementKindOf, type BatchHeader } from '../core/threshold/statements.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { defaultChildSetOptions, type ChildSetOptions } from './children.ts';
import type { LogEntry, TreeMessage } from './messages.ts';
import { PeerBatches, type SharedBatch } from './peer-batches.ts';
import type { BatchSignatureCheck } from './ring-trust.ts';
import { TreeRootMachine, type TreeRootEvent } from './root.ts';
import { blocksReply } from './secondary.ts';
import { heartbeatIsNewer } from './types.ts';
import { rangeProof, rootBlockOf, versionBlocks } from './version-walk.ts';
import type { Snapshot } from './object-log.ts';

type ReadRequest = Extract<TreeMessage, { type: 'read' }>;
type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

export interface RingServerMemberOptions {
  readonly crypto: Crypto;
  /** The ring replica's block store (every block of every version it executed). */
  readonly blocks: BlockStore;
  /** Where certified versions are kept (survives restarts). */
  readonly store: KvStore;
  readonly ringId: Uint8Array;
  readonly epoch: number;
  readonly tree?: Partial<ChildSetOptions>;
  /** The other ring servers: batch signatures this member combined are shared with them. */
  readonly peers?: readonly string[];
  /** Checks a batch signature a peer shared (blsBatchSignatures(ringPublicKey) in production). */
  readonly batchSignatures?: BatchSignatureCheck;
  /** Identical copies of a shared batch from this many peers are trusted unverified (f + 1; default: never). */
  readonly peerVouchersNeeded?: number;
  /** How long a shared batch waits for more copies before it is verified under the ring key (default 500 ms). */
  readonly peerWaitMs?: number;
  /** How long a version may wait for its predecessor before the object's tree gives up here. */
  readonly reorderTimeoutMs?: number;
  /** Certified versions held per object while an earlier one is missing (default 256). */
  readonly reorderEntriesMax?: number;
  /**
   * Whether the ring's replicated state has the object (the object service's table). A member that
   * joined the ring later (state transfer) has the objects but none of their earlier certificates:
   * for those it answers not-cached, not unknown-object, which readers count toward "no such object".
   */
  readonly objectExists?: (aguid: Uint8Array) => boolean;
  /**
   * The object's latest version in the ring's replicated state (executed, maybe not certified
   * yet). A read of a version above it and above every certificate here is answered
   * no-such-version; 2f+1 such answers end a reader's wait at once.
   */
  readonly executedVersion?: (aguid: Uint8Array) => number | undefined;
  /**
   * Called before a certified version is recorded in `store`: makes the ring's writes that
   * executed it (its root and interior blocks) durable no later than the record. The replica holds
   * execution's writes back (ring/deferred-writes.ts) while this member writes straight to the
   * store, so a record could reach the disk first, and a crash then left a record of a version
   * whose blocks were gone: every read of the object answered not-cached until a view change ran
   * the batch again. In production: stage the replica's held writes.
   */
  readonly beforeRecord?: () => void;
}

export interface CertifiedCommit {
  readonly statementHex: string;
  readonly aguid: Uint8Array;
  readonly version: number;
  readonly vguid: Uint8Array;
  /** Encoded core/threshold certificate. */
  readonly certificate: Uint8Array;
}

export interface RingServerMemberCounters {
  certified: number;
  published: number;
  /** Versions published past a gap that was never filled (the log started over there). */
  gapsSkipped: number;
  reads: number;
  readsServed: number;
  /** Latest probes answered with an older certified version (the latest's blocks not here yet). */
  readsServedOlder: number;
  rootMismatches: number;
  /** Batch signatures shared by peers and certified here. */
  peerBatches: number;
  /** Entries published as block references, and block fetches children made. */
  publishedAsReferences: number;
  blockFetches: number;
}

const pendingMax = 65_536;
/** Certified versions held per object while an earlier one is missing (default). */
const reorderEntriesMaxDefault = 256;
const certifiedSequencesMax = 4096;
const certifiedEarlyMax = 4096;
/** How far below an unprovable latest version a "latest" probe looks for one this server can prove. */
const latestFallbackMax = 16;
const versionKey = (aguidHex: string, version: number): string => `rsm/v/${aguidHex}/${String(version).padStart(15, '0')}`;
const latestKey = (aguidHex: string): string => `rsm/latest/${aguidHex}`;

export class RingServerMember implements Machine<TreeMessage, TreeRootEvent> {
  readonly tree: TreeRootMachine;
  readonly counters: RingServerMemberCounters = {
    certified: 0, published: 0, gapsSkipped: 0, reads: 0, readsServed: 0, readsServedOlder: 0, rootMismatches: 0,
    peerBatches: 0, publishedAsReferences: 0, blockFetches: 0,
  };
  /** Statement hex -> what the tree needs to forward it (waiting for the batch certificate). */
  private readonly pending = new Map<string, { update: Uint8Array; blocks: Uint8Array[] }>();
  private readonly heartbeats = new Map<string, { bytes: Uint8Array; version: number; timestampMs: number }>();
  /** Commit statements certified before this server executed them: published once it does. */
  private readonly certifiedEarly = new Map<string, { aguid: Uint8Array; version: number; certificate: Uint8Array }>();
  /** Per object: certified versions waiting for their predecessor, and since when the oldest waits. */
  private readonly reorder = new Map<string, { aguid: Uint8Array; entries: Map<number, LogEntry>; sinceMs: number | null }>();
  /** Batches certified here (so a peer's copy of a signature is checked once). */
  private readonly certifiedSequences = new Set<number>();
  private outbox: Effect<TreeMessage, TreeRootEvent>[] = [];
  private readonly inlineBlockBytesMax: number;
  /** Batch signatures other ring servers shared, until enough copies agree or one verifies. */
  readonly peerBatches: PeerBatches;

  constructor(
    context: MachineContext,
    private readonly options: RingServerMemberOptions,
  ) {
    this.tree = new TreeRootMachine(context, { ...options.tree, snapshotOf: (aguid) => this.storedSnapshot(aguid) });
    this.inlineBlockBytesMax = options.tree?.inlineBlockBytesMax ?? defaultChildSetOptions.inlineBlockBytesMax;
    const peers = options.peers ?? [];
    this.peerBatches = new PeerBatches({
      crypto: options.crypto, ringId: options.ringId, peers, check: options.batchSignatures,
      vouchersNeeded: options.peerVouchersNeeded ?? peers.length + 1, waitMs: options.peerWaitMs ?? 500,
    });
  }

  /**
   * The other ring servers now (a re-signed descriptor after a membership change): combined batch
   * signatures go to them, and only their shared copies count.
   */
  setPeers(peers: readonly string[]): void {
    this.peerBatches.setPeers(peers);
  }

  /** The object service committed `update` (its certificate statement is `statement`). */
  onExecuted(statement: Uint8Array, update: Uint8Array, blocks: readonly Uint8Array[]): void {
    const key = toHex(statement);
    const early = this.certifiedEarly.get(key);
    if (early) {
      this.certifiedEarly.delete(key);
      this.enqueuePublish(early.aguid, early.version, { update: ownedBytes(update), certificate: early.certificate, blocks: blocks.map(ownedBytes) });
      return;
    }
    if (this.pending.size >= pendingMax) this.pending.delete(this.pending.keys().next().value as string);
    // Kept until certified, then in the root's log: views into the ring's frames would keep those.
    this.pending.set(key, { update: ownedBytes(update), blocks: blocks.map(ownedBytes) });
  }

  /**
   * The ring combined a batch's threshold signature here (with the shares of key `epoch`, default
   * `options.epoch`): certify every statement in it, and share the signature with the other ring
   * servers. Returns the commits certified.
   */
  onCertificate(seq: number, root: Uint8Array, signature: Uint8Array, statements: readonly Uint8Array[], epoch = this.options.epoch): CertifiedCommit[] {
    if (statements.length === 0) return [];
    // A peer may have shared this batch first: then only list its commits (for the archiver).
    const fresh = !this.certifiedSequences.has(seq);
    this.peerBatches.forget(seq);
    const certified = this.certify(seq, epoch, root, signature, statements, fresh);
    if (certified !== null && fresh) {
      const message: TreeMessage = { type: 'batch-certificate', sequence: seq, epoch, root, signature, statements: [...statements] };
      for (const to of this.peerBatches.peers) this.outbox.push({ kind: 'send', to, message });
    }
    return certified ?? [];
  }

  /** A peer ring server's copy of a batch signature: used once f+1 peers agree on it, or once it verifies. */
  private onPeerBatch(from: string, m: SharedBatch, nowMs: number): void {
    if (this.certifiedSequences.has(m.sequence)) return;
    const trusted = this.peerBatches.offer(from, m, nowMs);
    if (trusted) this.certifyShared(trusted);
  }

  private certifyShared(b: SharedBatch): void {
    if (this.certifiedSequences.has(b.sequence)) return;
    if (this.certify(b.sequence, b.epoch, b.root, b.signature, b.statements, true) !== null) this.counters.peerBatches++;
  }

  /**
   * The certificates of a signed batch's commits; with `keep`, also records them, publishes them
   * and forwards its heartbeats. Null if the statements do not make `root`.
   */
  private certify(seq: number, epoch: number, root: Uint8Array, signature: Uint8Array, statements: readonly Uint8Array[], keep: boolean): CertifiedCommit[] | null {
    const certified: CertifiedCommit[] = [];
    const merkle = new BatchMerkleTree(this.options.crypto, statements.map((s) => batchLeafHash(this.options.crypto, s)));
    if (!bytesEqual(merkle.root, root)) {
      this.counters.rootMismatches++; // the ring and core/threshold disagree on the tree: certify nothing
      return null;
    }
    if (keep) {
      if (this.certifiedSequences.size >= certifiedSequencesMax) this.certifiedSequences.delete(this.certifiedSequences.values().next().value as number);
      this.certifiedSequences.add(seq);
    }
    const header: BatchHeader = { ringId: this.options.ringId, epoch, sequence: seq, leafCount: statements.length, root };
    statements.forEach((bytes, leafIndex) => {
      const proof = { header, leafIndex, path: merkle.pathOf(leafIndex), signature };
      const tuple = attempt(() => decode(bytes, 4096, 'statement'));
      const kind = statementKindOf(tuple);
      const commit = kind !== 'certificate' ? null : attempt(() => certificateStatementFromTuple(tuple));
      if (commit) {
        if (commit.outcome !== 'commit') {
          if (keep) this.pending.delete(toHex(bytes));
          return;
        }
        // encode() answers with a view into msgpackr's shared output buffer (megabytes after one large
        // message); the certificate is kept (log, early map) so it gets its own.
        const certificate = ownedBytes(encodeCertificate({ ...proof, statement: commit }));
        certified.push({ statementHex: toHex(bytes), aguid: commit.aguid, version: commit.version, vguid: commit.vguid, certificate });
        if (!keep) return;
        const pending = this.pending.get(toHex(bytes));
        this.pending.delete(toHex(bytes));
        this.record(commit.aguid, commit.version, commit.vguid, certificate);
        if (pending) this.enqueuePublish(commit.aguid, commit.version, { update: pending.update, certificate, blocks: pending.blocks });
        else this.noteEarly(bytes, commit.aguid, commit.version, certificate);
        return;
      }
      const heartbeat = kind !== 'heartbeat' || !keep ? null : attempt(() => heartbeatStatementFromTuple(tuple));
      if (!heartbeat) return;
      const key = toHex(heartbeat.aguid);
      const known = this.heartbeats.get(key);
      // Batches arrive in any order (own and peers'): keep the newest heartbeat only.
      if (known && !heartbeatIsNewer(known, heartbeat)) return;
      const encoded = ownedBytes(encodeHeartbeat({ ...proof, statement: heartbeat }));
      this.heartbeats.set(key, { bytes: encoded, version: heartbeat.version, timestampMs: heartbeat.timestampMs });
      this.tree.publishHeartbeat(heartbeat.aguid, encoded);
    });
    return certified;
  }

  onMessage(from: string, message: TreeMessage, nowMs: number): Effect<TreeMessage, TreeRootEvent>[] {
    switch (message.type) {
      case 'read':
        return [{ kind: 'send', to: from, message: this.serve(message, nowMs) }];
      case 'batch-certificate':
        this.onPeerBatch(from, message, nowMs);
        return this.drainOutbox(nowMs);
      case 'fetch-blocks':
        if (!this.tree.root.childrenOf(message.aguid).includes(from)) return [];
        this.counters.blockFetches++;
        return [{ kind: 'send', to: from, message: blocksReply(this.options.blocks, message.aguid, message.bguids) }];
      default:
        return this.tree.onMessage(from, message, nowMs);
    }
  }

  onTick(nowMs: number): Effect<TreeMessage, TreeRootEvent>[] {
    return this.drainOutbox(nowMs).concat(this.tree.onTick(nowMs));
  }

  /** Publishes what the reorder buffers allow, then hands out the queued sends. */
  private drainOutbox(nowMs: number): Effect<TreeMessage, TreeRootEvent>[] {
    for (const b of this.peerBatches.due(nowMs)) this.certifyShared(b);
    for (const [key, held] of this.reorder) this.publishInOrder(key, held, nowMs);
    const out = this.outbox;
    this.outbox = [];
    return out;
  }

  /** The latest certified version this server holds for `aguid`. */
  latestVersion(aguid: Uint8Array): number | undefined {
    const bytes = this.options.store.get(latestKey(toHex(aguid)));
    return bytes ? asUint(decode(bytes, 16, 'latest version'), 'latest version') : undefined;
  }

  private record(aguid: Uint8Array, version: number, vguid: Uint8Array, certificate: Uint8Array): void {
    this.options.beforeRecord?.();
    const key = toHex(aguid);
    this.options.store.put(versionKey(key, version), encode([vguid, certificate]));
    const latest = this.latestVersion(aguid);
    if (latest === undefined || version > latest) this.options.store.put(latestKey(key), encode(version));
    this.counters.certified++;
  }

  /** (VGUID, certificate) of a version certified here, from the store. */
  private certifiedVersion(aguidHex: string, version: number): { vguid: Uint8Array; certificate: Uint8Array } | null {
    const stored = this.options.store.get(versionKey(aguidHex, version));
    if (!stored) return null;
    const t = asTuple(decode(stored, 8192, 'certified version'), 'certified version', 2);
    return { vguid: asBytesField(t[0], 'vguid', { bytes: hashBytes }), certificate: asBytesField(t[1], 'certificate', { bytesMax: 4096 }) };
  }

  /**
   * The object's latest version certified here, whole, from the ring's block store: what the tree
   * root sends a child below the start of its log (which starts at this server's restart). Data
   * blocks go along only when they fit inlineBlockBytesMax; otherwise the child fetches them by
   * BGUID. Null if a block is missing here (the child then waits for another root or a newer version).
   */
  private storedSnapshot(aguid: Uint8Array): Snapshot | null {
    const latest = this.latestVersion(aguid);
    const stored = latest === undefined ? null : this.certifiedVersion(toHex(aguid), latest);
    const refs = stored && versionBlocks(this.options.blocks, stored.vguid);
    if (!stored || !refs) return null;
    let dataBytes = 0;
    for (const r of refs) if (r.kind === 'data') dataBytes += this.options.blocks.byteLengthOf(r.bguid, 'data') ?? 0;
    const blocks: Snapshot['blocks'][number][] = [];
    for (const r of refs) {
      if (r.kind === 'data' && dataBytes > this.inlineBlockBytesMax) continue;
      const bytes = this.options.blocks.get(r.bguid, r.kind);
      if (!bytes) return null;
      blocks.push({ kind: r.kind, bytes });
    }
    return { certificate: stored.certificate, blocks };
  }

  private noteEarly(statement: Uint8Array, aguid: Uint8Array, version: number, certificate: Uint8Array): void {
    // Only certificates that beat this server's own execution wait here (milliseconds): few.
    if (this.certifiedEarly.size >= certifiedEarlyMax) this.certifiedEarly.delete(this.certifiedEarly.keys().next().value as string);
    this.certifiedEarly.set(toHex(statement), { aguid: new Uint8Array(aguid), version, certificate });
  }

  private enqueuePublish(aguid: Uint8Array, version: number, entry: LogEntry): void {
    const key = toHex(aguid);
    const next = this.tree.root.nextVersion(aguid);
    if (next !== null && version < next) return; // published already, or skipped past
    let held = this.reorder.get(key);
    if (!held) this.reorder.set(key, (held = { aguid: new Uint8Array(aguid), entries: new Map(), sinceMs: null }));
    // Large referenced blocks stay in the ring's block store; children fetch them by BGUID.
    const blockBytes = entry.blocks.reduce((n, b) => n + b.length, 0);
    held.entries.set(version, blockBytes > this.inlineBlockBytesMax ? { update: entry.update, certificate: entry.certificate, blocks: [] } : entry);
    if (blockBytes > this.inlineBlockBytesMax) this.counters.publishedAsReferences++;
    if (held.entries.size <= (this.options.reorderEntriesMax ?? reorderEntriesMaxDefault)) return;
    // Too many wait: go on now rather than at the next drain, past the gap if there is one (every
    // held version is past `next`: below it they are published, skipped or refused above).
    const start = next ?? Math.min(...held.entries.keys()); // nothing published yet: start at the oldest
    if (!held.entries.has(start)) this.skipGap(held);
    this.publishRun(held, this.tree.root.nextVersion(aguid) ?? start);
  }

  /** Publishes the held versions from `next` on while they follow on; whether it published any. */
  private publishRun(held: { aguid: Uint8Array; entries: Map<number, LogEntry> }, next: number): boolean {
    let progressed = false;
    for (let entry = held.entries.get(next); entry !== undefined; entry = held.entries.get(++next)) {
      this.tree.publish(held.aguid, next, entry);
      held.entries.delete(next);
      this.counters.published++;
      progressed = true;
    }
    return progressed;
  }

  /**
   * Publishes the object's held versions that follow the last one published. A root that has
   * published nothing for the object starts at version 0, or, after reorderTimeoutMs, at the
   * oldest version it holds (it joined late: earlier history is served by the other roots).
   */
  private publishInOrder(key: string, held: { aguid: Uint8Array; entries: Map<number, LogEntry>; sinceMs: number | null }, nowMs: number): void {
    const timeoutMs = this.options.reorderTimeoutMs ?? 10_000;
    let next = this.tree.root.nextVersion(held.aguid);
    if (next === null) {
      const oldest = Math.min(...held.entries.keys());
      if (oldest === 0 || (held.sinceMs !== null && nowMs - held.sinceMs > timeoutMs)) next = oldest;
    }
    for (const version of [...held.entries.keys()]) if (next !== null && version < next) held.entries.delete(version);
    const progressed = next !== null && this.publishRun(held, next);
    if (held.entries.size === 0) {
      this.reorder.delete(key);
      return;
    }
    if (progressed || held.sinceMs === null) held.sinceMs = nowMs;
    if (next !== null && nowMs - held.sinceMs > timeoutMs) {
      this.skipGap(held);
      this.publishInOrder(key, held, nowMs);
    }
  }

  /**
   * A version that never comes (its certificate arrived after a restart, with the update that
   * made it gone from memory; or it was never certified here): the root's log goes on from the
   * oldest version held, and children below it get the stored head. Until session 28 the root
   * stopped following the object for good (no pushes, no heartbeats), so after a whole-ring
   * restart each root could drop the objects being written at the crash, and their secondaries
   * moved from root to root, all of them behind.
   */
  private skipGap(held: { aguid: Uint8Array; entries: Map<number, LogEntry>; sinceMs: number | null }): void {
    // Every held version is past the root's next one.
    const oldest = Math.min(...held.entries.keys());
    this.tree.publishAfterGap(held.aguid, oldest, held.entries.get(oldest)!);
    held.entries.delete(oldest);
    held.sinceMs = null;
    this.counters.published++;
    this.counters.gapsSkipped++;
  }

  private serve(request: ReadRequest, nowMs: number): ReadReply {
    this.counters.reads++;
    const key = toHex(request.aguid);
    const heartbeat = this.heartbeats.get(key)?.bytes ?? null;
    const reply = (status: ReadReply['status'], certificate: Uint8Array | null = null, blocks: ReadReply['blocks'] = []): ReadReply => ({
      type: 'read-reply',
      requestId: request.requestId,
      status,
      certificate,
      heartbeat,
      blocks,
    });
    const latest = this.latestVersion(request.aguid);
    if (latest === undefined) return reply(this.options.objectExists?.(request.aguid) ? 'not-cached' : 'unknown-object');
    if (request.version === null && request.maxAgeMs > 0) {
      // Fresh means what the reader checks (replica/verify-read.ts): a heartbeat naming our latest
      // version, young enough. Serving an older one made the reader refuse an 'ok' as forged.
      const beat = this.heartbeats.get(key);
      if (!beat || beat.version !== latest || nowMs - beat.timestampMs > request.maxAgeMs) return reply('too-stale');
    }
    const stored = this.certifiedVersion(key, request.version ?? latest);
    if (!stored) {
      const beyond = request.version !== null && request.version > latest && request.version > (this.options.executedVersion?.(request.aguid) ?? -1);
      return reply(beyond ? 'no-such-version' : 'not-cached');
    }
    const { vguid, certificate } = stored;
    const root = rootBlockOf(this.options.blocks, vguid);
    if (root && request.offset + request.length > root.sizeBytes) return reply('out-of-range', certificate);
    const proof = rangeProof(this.options.blocks, vguid, request.offset, request.length);
    if (!proof) {
      // Not for a fresh read (maxAgeMs): the heartbeat names the latest, and an older version
      // beside it reads as forged (replica/verify-read.ts "not the latest version").
      const older = request.version === null && request.length === 0 && request.maxAgeMs === 0 ? this.provableBelow(key, latest) : null;
      if (older) return reply('ok', older.certificate, older.proof);
      return reply('not-cached', certificate);
    }
    this.counters.readsServed++;
    return reply('ok', certificate, proof.map((b) => ({ kind: b.kind, bytes: b.bytes })));
  }

  /**
   * For a "latest" probe whose latest certified version this server cannot prove (a certificate a
   * peer shared before this replica executed the update, or blocks still on their way): the newest
   * older version certified here whose root block it has, at most latestFallbackMax below. A
   * latest read settles on the newest of f+1 ring servers' answers, so an older one from a server
   * behind is an answer like any other, where not-cached left the reader waiting for servers
   * that could prove their latest (UnavailableError when fewer than f+1 could).
   */
  private provableBelow(aguidHex: string, latest: number): { certificate: Uint8Array; proof: ReadReply['blocks'] } | null {
    for (let version = latest - 1; version >= Math.max(0, latest - latestFallbackMax); version--) {
      const stored = this.certifiedVersion(aguidHex, version);
      const proof = stored && rangeProof(this.options.blocks, stored.vguid, 0, 0);
      if (stored && proof) {
        this.counters.readsServedOlder++;
        return { certificate: stored.certificate, proof: proof.map((b) => ({ kind: b.kind, bytes: b.bytes })) };
      }
    }
    return null;
  }
}

function attempt<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}
