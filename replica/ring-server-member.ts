/**
 * A ring server's place in the dissemination tree: the root of every tree of its ring's objects
 * (replica/root.ts) and the member of last resort for reads (the SDK asks secondaries first and
 * falls back here). It is fed by the ring replica's host:
 *   - `onExecuted(statement, update, blocks)` for every committed update the object service ran,
 *   - `onCertificate(seq, root, signature, statements)` when the batch's threshold signature exists.
 * From those it assembles core/threshold certificates (statement + batch header + Merkle path +
 * signature) and heartbeats, keeps (version -> VGUID, certificate) durably, publishes certified
 * updates down the tree, and answers reads with proofs from the ring's own block store.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import { asBytesField, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { hashBytes, type Crypto } from '../core/crypto.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import { batchLeafHash, BatchMerkleTree } from '../core/threshold/batch-merkle.ts';
import { encodeCertificate, encodeHeartbeat } from '../core/threshold/certificate-codec.ts';
import { certificateStatementFromTuple, heartbeatStatementFromTuple, type BatchHeader } from '../core/threshold/statements.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import type { ChildSetOptions } from './children.ts';
import type { LogEntry, TreeMessage } from './messages.ts';
import { treeLimits } from './messages.ts';
import { TreeRootMachine, type TreeRootEvent } from './root.ts';
import { rangeProof, rootBlockOf } from './version-walk.ts';

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
  unpublishable: number;
  reads: number;
  readsServed: number;
  rootMismatches: number;
}

/** Entries larger than this are not pushed down the tree (one push frame must carry them). */
const entryBytesMax = treeLimits.messageBytesMax / 2;
const pendingMax = 65_536;
const versionKey = (aguidHex: string, version: number): string => `rsm/v/${aguidHex}/${String(version).padStart(15, '0')}`;
const latestKey = (aguidHex: string): string => `rsm/latest/${aguidHex}`;

export class RingServerMember implements Machine<TreeMessage, TreeRootEvent> {
  readonly tree: TreeRootMachine;
  readonly counters: RingServerMemberCounters = { certified: 0, published: 0, unpublishable: 0, reads: 0, readsServed: 0, rootMismatches: 0 };
  /** Statement hex -> what the tree needs to forward it (waiting for the batch certificate). */
  private readonly pending = new Map<string, { update: Uint8Array; blocks: Uint8Array[] }>();
  private readonly heartbeats = new Map<string, { bytes: Uint8Array; version: number }>();
  /** Objects the tree stopped following here (an entry too large to push): reads still work. */
  private readonly unpublishable = new Set<string>();

  constructor(
    context: MachineContext,
    private readonly options: RingServerMemberOptions,
  ) {
    this.tree = new TreeRootMachine(context, options.tree ?? {});
  }

  /** The object service committed `update` (its certificate statement is `statement`). */
  onExecuted(statement: Uint8Array, update: Uint8Array, blocks: readonly Uint8Array[]): void {
    if (this.pending.size >= pendingMax) this.pending.delete(this.pending.keys().next().value as string);
    this.pending.set(toHex(statement), { update, blocks: [...blocks] });
  }

  /** A batch's threshold signature exists: certify every statement in it; returns the commits certified. */
  onCertificate(seq: number, root: Uint8Array, signature: Uint8Array, statements: readonly Uint8Array[]): CertifiedCommit[] {
    const certified: CertifiedCommit[] = [];
    if (statements.length === 0) return certified;
    const merkle = new BatchMerkleTree(this.options.crypto, statements.map((s) => batchLeafHash(this.options.crypto, s)));
    if (!bytesEqual(merkle.root, root)) {
      this.counters.rootMismatches++; // the ring and core/threshold disagree on the tree: certify nothing
      return certified;
    }
    const header: BatchHeader = { ringId: this.options.ringId, epoch: this.options.epoch, sequence: seq, leafCount: statements.length, root };
    statements.forEach((bytes, leafIndex) => {
      const proof = { header, leafIndex, path: merkle.pathOf(leafIndex), signature };
      const tuple = decode(bytes, 4096, 'statement');
      const commit = attempt(() => certificateStatementFromTuple(tuple));
      if (commit) {
        const pending = this.pending.get(toHex(bytes));
        this.pending.delete(toHex(bytes));
        if (commit.outcome !== 'commit') return;
        const certificate = encodeCertificate({ ...proof, statement: commit });
        this.record(commit.aguid, commit.version, commit.vguid, certificate);
        certified.push({ statementHex: toHex(bytes), aguid: commit.aguid, version: commit.version, vguid: commit.vguid, certificate });
        if (pending) this.publish(commit.aguid, commit.version, { update: pending.update, certificate, blocks: pending.blocks });
        return;
      }
      const heartbeat = attempt(() => heartbeatStatementFromTuple(tuple));
      if (!heartbeat) return;
      const encoded = encodeHeartbeat({ ...proof, statement: heartbeat });
      const key = toHex(heartbeat.aguid);
      const known = this.heartbeats.get(key);
      if (known && known.version > heartbeat.version) return;
      this.heartbeats.set(key, { bytes: encoded, version: heartbeat.version });
      if (!this.unpublishable.has(key)) this.tree.publishHeartbeat(heartbeat.aguid, encoded);
    });
    return certified;
  }

  onMessage(from: string, message: TreeMessage, nowMs: number): Effect<TreeMessage, TreeRootEvent>[] {
    if (message.type === 'read') return [{ kind: 'send', to: from, message: this.serve(message) }];
    return this.tree.onMessage(from, message, nowMs);
  }

  onTick(nowMs: number): Effect<TreeMessage, TreeRootEvent>[] {
    return this.tree.onTick(nowMs);
  }

  /** The latest certified version this server holds for `aguid`. */
  latestVersion(aguid: Uint8Array): number | undefined {
    const bytes = this.options.store.get(latestKey(toHex(aguid)));
    return bytes ? asUint(decode(bytes, 16, 'latest version'), 'latest version') : undefined;
  }

  private record(aguid: Uint8Array, version: number, vguid: Uint8Array, certificate: Uint8Array): void {
    const key = toHex(aguid);
    this.options.store.put(versionKey(key, version), encode([vguid, certificate]));
    const latest = this.latestVersion(aguid);
    if (latest === undefined || version > latest) this.options.store.put(latestKey(key), encode(version));
    this.counters.certified++;
  }

  private publish(aguid: Uint8Array, version: number, entry: LogEntry): void {
    const key = toHex(aguid);
    if (this.unpublishable.has(key)) return;
    const bytes = entry.update.length + entry.certificate.length + entry.blocks.reduce((n, b) => n + b.length, 0);
    const expected = this.tree.root.nextVersion(aguid);
    if (bytes > entryBytesMax || (expected !== null && expected !== version)) {
      // The tree must see versions without gaps; one it cannot carry ends its following here.
      this.unpublishable.add(key);
      this.counters.unpublishable++;
      return;
    }
    this.tree.publish(aguid, version, entry);
    this.counters.published++;
  }

  private serve(request: ReadRequest): ReadReply {
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
    if (latest === undefined) return reply('unknown-object');
    if (request.version === null && request.maxAgeMs > 0 && this.heartbeats.get(key)?.version !== latest) return reply('too-stale');
    const stored = this.options.store.get(versionKey(key, request.version ?? latest));
    if (!stored) return reply('not-cached');
    const t = asTuple(decode(stored, 8192, 'certified version'), 'certified version', 2);
    const vguid = asBytesField(t[0], 'vguid', { bytes: hashBytes });
    const certificate = asBytesField(t[1], 'certificate', { bytesMax: 4096 });
    const root = rootBlockOf(this.options.blocks, vguid);
    if (root && request.offset + request.length > root.sizeBytes) return reply('out-of-range', certificate);
    const proof = rangeProof(this.options.blocks, vguid, request.offset, request.length);
    if (!proof) return reply('not-cached', certificate);
    this.counters.readsServed++;
    return reply('ok', certificate, proof.map((b) => ({ kind: b.kind, bytes: b.bytes })));
  }
}

function attempt<T>(f: () => T): T | null {
  try {
    return f();
  } catch {
    return null;
  }
}
