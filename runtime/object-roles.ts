/**
 * The object store's parts of a ring server and of a secondary replica, as host bindings:
 *   ring server:  the Pond object service inside the PBFT replica; a RingServerMember (tree root +
 *                 reads, channel replica) fed with every committed update and batch certificate;
 *                 the archiver (channel archive), handed each certified version's new blocks.
 *   secondary:    a SecondaryReplica (channel replica) that follows objects on first read.
 * Feeding happens from host callbacks (service execution, replica outputs), so the fed cores
 * queue the work and emit it on their next tick, under the host's durability barrier.
 */
import { fromHex, toHex } from '../core/bytes.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import type { BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { archiverBinding as makeArchiverBinding, type SlicedArchiver } from '../archive/shell/archive-binding.ts';
import { DeferredWrites } from '../ring/deferred-writes.ts';
import { KvBlockStore } from '../ring/kv-block-store.ts';
import { ObjectService } from '../ring/object-service.ts';
import type { RingOutput } from '../ring/outputs.ts';
import type { ReplicatedService } from '../ring/service.ts';
import { CachingTrust } from '../replica/caching-trust.ts';
import { ConfigLocator } from '../replica/config-locator.ts';
import { CoreExecutor } from '../replica/core-executor.ts';
import { treeLimits, type TreeMessage } from '../replica/messages.ts';
import { blsBatchSignatures, RingTrust } from '../replica/ring-trust.ts';
import { RingServerMember } from '../replica/ring-server-member.ts';
import { SecondaryReplica, type ReplicaEvent } from '../replica/secondary.ts';
import { treeWire } from '../replica/wire.ts';
import { ringNamesOf, secureRandom, type RingDescriptor } from './cluster-keys.ts';
import type { Binding } from './machine-host.ts';
import { PrefixedKvStore } from './prefixed-kv-store.ts';
import { CurrentBlockStore, newBlocksOf, RecordingBlockStore, TappedObjectService, type Executed } from './tapped-object-service.ts';
import { channels, type RoleContext } from './roles.ts';

/**
 * The ring server's tree member, with each child's `fetch-blocks` cut to blocks it was not sent
 * in the last `resendAfterMs`, at most one `blocks` reply's worth (treeLimits.blocksReplyBytesMax).
 * Why: the member reads (and re-hashes) every block a request names before leaving the surplus
 * out, and a child asks again on every reply and every 300 ms, so while a reply is on its way
 * duplicate requests pile up and each reply spawns another: one secondary following a 256 MiB
 * object cost a ring server 45 s of SHA-256 and multi-second stalls (measured). A request that
 * names only blocks recently sent is dropped; the child's own retry covers a lost reply.
 */
class TrimmedFetches implements Machine<TreeMessage, unknown> {
  /** Per child: block (hex) -> when it was last sent. */
  private readonly sent = new Map<string, Map<string, number>>();
  /** Block lengths seen (reading one from the store copies the whole block). */
  private readonly lengths = new Map<string, number>();

  constructor(
    private readonly member: RingServerMember,
    private readonly blocks: BlockStore,
    // Long enough that a reply queued behind others on a busy socket is not sent again; a reply
    // lost with a connection costs its blocks this much delay.
    private readonly resendAfterMs = 20_000,
  ) {}

  onMessage(from: string, message: TreeMessage, nowMs: number): Effect<TreeMessage, unknown>[] {
    if (message.type !== 'fetch-blocks') return this.member.onMessage(from, message, nowMs);
    const { bguids, present } = this.fitting(from, message.bguids, nowMs);
    if (bguids.length === 0) return [];
    const effects = this.member.onMessage(from, { ...message, bguids }, nowMs);
    // Only blocks that actually went out count as sent (the member ignores a peer that is not its child).
    if (effects.some((e) => e.kind === 'send' && e.to === from && e.message.type === 'blocks')) {
      const sent = this.sent.get(from) ?? new Map<string, number>();
      this.sent.set(from, sent);
      for (const hex of present) if (sent.size < treeLimits.fetchBlocksMax * 4) sent.set(hex, nowMs);
    }
    return effects;
  }

  onTick(nowMs: number): Effect<TreeMessage, unknown>[] {
    for (const [child, sent] of this.sent) {
      for (const [hex, atMs] of sent) if (nowMs - atMs >= this.resendAfterMs) sent.delete(hex);
      if (sent.size === 0) this.sent.delete(child);
    }
    return this.member.onTick(nowMs);
  }

  private fitting(child: string, bguids: readonly Uint8Array[], nowMs: number): { bguids: Uint8Array[]; present: string[] } {
    const sent = this.sent.get(child);
    const out: Uint8Array[] = [];
    const present: string[] = [];
    let sentBytes = 0;
    let sentCount = 0;
    for (const bguid of bguids) {
      const hex = toHex(bguid);
      const atMs = sent?.get(hex);
      if (atMs !== undefined && nowMs - atMs < this.resendAfterMs) continue;
      const length = this.lengths.get(hex) ?? this.blocks.byteLengthOf(bguid, 'data');
      if (length !== undefined) {
        if (this.lengths.size >= 65_536) this.lengths.delete(this.lengths.keys().next().value as string);
        this.lengths.set(hex, length);
        if (sentCount > 0 && sentBytes + length > treeLimits.blocksReplyBytesMax) break;
        sentBytes += length;
        sentCount++;
        present.push(hex);
      }
      out.push(bguid); // an absent block stays in: the member reports it absent
    }
    return { bguids: out, present };
  }
}

export interface RingServerParts {
  /** The replica's service factory (object service with the tap). */
  readonly service: (store: KvStore) => ReplicatedService;
  /** Pass every replica output here. */
  readonly onRingOutput: (event: RingOutput) => void;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly bindings: Binding<any, any>[];
  readonly member: RingServerMember;
  status(): Record<string, unknown>;
  /** A later ring descriptor was taken: certificates are shared with, and blocks ranked over, its members. */
  onDescriptor(descriptor: RingDescriptor): void;
}

export function ringServerParts(ctx: RoleContext): RingServerParts {
  const ringId = fromHex(ctx.descriptor.ringId);
  const memberStore = new PrefixedKvStore(ctx.store, 'member/');
  const blocks = new CurrentBlockStore();
  // Key refresh (issue 10): a batch header names the epoch of the shares that signed it; the
  // replica's certificate outputs carry it, the member is told it with each certificate, and the
  // copies it shares with peer ring servers carry it too.
  let certificateEpoch = 0;
  let objects: ObjectService | null = null;
  /** The store the replica hands its service: execution's writes are held there (ring/deferred-writes.ts). */
  let executionStore: KvStore | null = null;
  const member = new RingServerMember(contextOf(ctx, memberStore), {
    crypto: ctx.crypto,
    // The replica builds its service (and block store) on every (re)start; reads go through it.
    blocks,
    store: memberStore,
    ringId,
    tree: { isTreeMember: treeMembersOf(ctx) },
    get epoch() {
      return certificateEpoch;
    },
    // Only a batch's f+1 combiners learn its signature: they share it so every root sees every version.
    // The ring now: after a membership change, the re-signed descriptor's list (onDescriptor follows later ones).
    peers: ringNamesOf(ctx.descriptor).filter((name) => name !== ctx.node.name),
    batchSignatures: blsBatchSignatures(fromHex(ctx.descriptor.ringPublicKey)),
    // A combined threshold signature is unique: f+1 identical copies need no pairing check.
    peerVouchersNeeded: ctx.config.f + 1,
    objectExists: (aguid) => objects?.headOf(aguid) !== undefined,
    executedVersion: (aguid) => objects?.headOf(aguid)?.version,
    // A certified version's record never reaches the disk before the execution that made its blocks.
    beforeRecord: () => {
      if (executionStore instanceof DeferredWrites) executionStore.stage();
    },
  });
  const { binding: archiveBinding, sliced } = ringArchiver(ctx, blocks);
  // Statement -> what its update made, until certified; then null (handed over), so a batch
  // certified twice is archived once. Bounded: an evicted entry is read back from the store.
  const executed = new Map<string, Executed | null>();
  const remember = (statementHex: string, done: Executed | null): void => {
    executed.delete(statementHex);
    if (executed.size >= 65_536) executed.delete(executed.keys().next().value as string);
    executed.set(statementHex, done);
  };
  const service = (store: KvStore): ReplicatedService => {
    executionStore = store;
    const recording = new RecordingBlockStore(new KvBlockStore(ctx.crypto, store));
    blocks.current = recording;
    const inner = new ObjectService({ crypto: ctx.crypto, store, blocks: recording, ringId });
    objects = inner;
    return new TappedObjectService(inner, recording, (statement, update, referenced, done) => {
      member.onExecuted(statement, update, referenced);
      remember(toHex(statement), done);
    });
  };
  const recovered = (vguid: Uint8Array): Executed | undefined => {
    const newBlocks = newBlocksOf(blocks, vguid);
    if (newBlocks) return { vguid, newBlocks };
    ctx.log.warn({ vguid: toHex(vguid) }, 'certified version not complete in this store: not archived by this server');
    return undefined;
  };
  const onRingOutput = (event: RingOutput): void => {
    if (event.kind !== 'certificate') return;
    certificateEpoch = (event as { epoch?: number }).epoch ?? 0;
    for (const c of member.onCertificate(event.seq, event.root, event.signature, event.statements, certificateEpoch)) {
      // Not in memory: the update ran before this server restarted (or long ago); its version's
      // new blocks are read back from the store, so a certificate made after a restart is archived too.
      const known = executed.get(c.statementHex);
      if (known === null) continue; // handed over already (a batch certified twice)
      const done = known ?? recovered(c.vguid);
      remember(c.statementHex, null);
      // Every ring server could archive; the archiver's ranking picks one per block, with fallback.
      // The view's certifiers are the servers that learn this certificate (and so archive the
      // version): ranked first, a block's rank 0 is one of them rather than, half the time at
      // f = 1, a server that never gets it, whose absence cost a fallback probe and store later.
      if (done) sliced.enqueue(done.newBlocks, done.vguid, c.certificate, event.certifiers);
    }
  };
  const memberBinding: Binding<TreeMessage, unknown> = { channel: channels.replica, ...countedTreeWire(ctx), machine: new TrimmedFetches(member, blocks), tickMs: 50 };
  return {
    service,
    onRingOutput,
    bindings: [memberBinding, archiveBinding],
    member,
    onDescriptor: (d) => {
      const ring = ringNamesOf(d);
      member.setPeers(ring.filter((name) => name !== ctx.node.name));
      sliced.archiver.setRingServers(ring);
    },
    status: () => ({ tree: { ...member.counters }, archiver: { queued: sliced.queuedCount(), pending: sliced.archiver.pendingCount(), stalled: sliced.archiver.stalledCount(), ...sliced.archiver.counters } }),
  };
}

export function secondaryParts(ctx: RoleContext): { binding: Binding<TreeMessage, unknown>; replica: SecondaryReplica } {
  const ring = ringNamesOf(ctx.descriptor);
  const others = ctx.descriptor.nodes.filter((n) => n.role === 'replica' && n.name !== ctx.node.name).map((n) => n.name);
  const trust = new CachingTrust(new RingTrust(ctx.crypto, fromHex(ctx.descriptor.ringId), blsBatchSignatures(fromHex(ctx.descriptor.ringPublicKey))));
  const replica = new SecondaryReplica(contextOf(ctx, new PrefixedKvStore(ctx.store, 'replica/')), {
    crypto: ctx.crypto,
    trust,
    executor: new CoreExecutor(ctx.crypto),
    // Tapestry finds tree members near this node; the configured list is the fallback.
    locator: ctx.treeLocator ?? new ConfigLocator(ring, others),
    cacheBytesMax: 512 * 2 ** 20,
    subscribeOnRead: true,
    isTreeMember: treeMembersOf(ctx),
  });
  const onOutput = (output: unknown): void => {
    const event = output as ReplicaEvent;
    if (event.kind === 'detached') ctx.log.info({ aguid: event.aguid, parent: event.parent, reason: event.reason }, 'tree parent left');
    else if (event.kind === 'attached') ctx.log.info({ aguid: event.aguid, parent: event.parent, depth: event.depth }, 'tree parent found');
    else if (event.kind === 'rejected') ctx.log.warn({ aguid: event.aguid, from: event.from, reason: event.reason }, 'tree input rejected');
  };
  return { binding: { channel: channels.replica, ...countedTreeWire(ctx), machine: replica, tickMs: 50, onOutput }, replica };
}

/**
 * Who may be a tree child here (and be named in a redirect): the cluster's configured nodes. A
 * client's name is derived from its key (runtime/handshake.ts clientNameOf) and can never be one
 * of them, so this is the transport's member/client split without asking the transport. The
 * descriptor's node list is the config's and does not change (a spare that joins keeps its entry).
 */
function treeMembersOf(ctx: RoleContext): (id: string) => boolean {
  const names = new Set(ctx.descriptor.nodes.map((n) => n.name));
  return (id) => names.has(id);
}

/**
 * The tree codec, counting reads: each request as it arrives (oceanstore_tree_read_requests_total{kind})
 * and each reply as it goes out (oceanstore_tree_reads_total{status}).
 */
function countedTreeWire(ctx: RoleContext): typeof treeWire {
  const decode = (bytes: Uint8Array): TreeMessage => {
    const message = treeWire.decode(bytes);
    if (message.type === 'read') ctx.metrics.treeReadRequests.inc({ kind: message.length === 0 ? 'probe' : 'data' });
    return message;
  };
  const encode = (message: TreeMessage): Uint8Array => {
    if (message.type === 'read-reply') ctx.metrics.treeReads.inc({ status: message.status });
    return treeWire.encode(message);
  };
  const encodeFrame = (message: TreeMessage, reservedBytes: number): Uint8Array => {
    if (message.type === 'read-reply') ctx.metrics.treeReads.inc({ status: message.status });
    return treeWire.encodeFrame(message, reservedBytes);
  };
  return { ...treeWire, decode, encode, encodeFrame };
}

/**
 * Only the f+1 ring servers that combine a batch's certificate learn it, and only they hand its
 * blocks to their archivers; so every rank (not just 0..f) may act as fallback, each after its
 * rank's delay, probing first so a block is stored once.
 */
function ringArchiver(ctx: RoleContext, blocks: BlockStore): { binding: Binding<unknown, unknown>; sliced: SlicedArchiver } {
  const archiveServers = ctx.descriptor.nodes.filter((n) => n.role === 'archive');
  const ringServers = ringNamesOf(ctx.descriptor);
  const { binding, sliced } = makeArchiverBinding(
    contextOf(ctx, new PrefixedKvStore(ctx.store, 'archive/')),
    {
      crypto: ctx.crypto,
      ringServers,
      archiveServers: archiveServers.map((n) => n.name),
      archiveServerKeys: new Map(archiveServers.map((n) => [n.name, fromHex(n.publicKey)])),
      k: ctx.config.erasure.k,
      m: ctx.config.erasure.m,
      fallbackTimeoutMs: 2_000,
      fallbackRanksMax: ringServers.length - 1,
      storeTimeoutMs: 5_000,
      attemptsMax: 10,
      // Bounded steps: ~1 MiB of coding per event-loop turn keeps reads and handshakes flowing
      // while a huge version is archived; 32 MiB awaiting receipts bounds memory and backlog.
      stepBytesMax: 2 ** 20,
      inFlightBytesMax: 32 * 2 ** 20,
      // Pending blocks are re-read from the ring's own store, so they survive a restart.
      blockBytesOf: (bguid) => blockBytesOf(blocks, bguid),
      fallbackBytesPerSecond: 8 * 2 ** 20,
      // Fallback ranks start on whole seconds: blocks handed over a few ticks apart share a probe.
      fallbackStartStepMs: 1_000,
    },
    (event) => {
      if (event.kind === 'incomplete') ctx.log.warn({ receipts: event.receiptCount, reason: event.reason }, 'block archived incompletely');
      // Once per server per minute at most (archive/archiver.ts): a server on another (k, m) says why here.
      else if (event.kind === 'refused') ctx.log.error({ server: event.server, count: event.count, reason: event.reason }, 'archive server refused stores');
    },
    100,
    // Small versions share a hand-over for up to half a second (archive/shell/archive-binding.ts:
    // each hand-over is an fsync and a receipt on every archive server); 1 MiB queued goes at once.
    { gatherMs: 500, gatherBytes: 2 ** 20 },
  );
  return { binding: binding as Binding<unknown, unknown>, sliced };
}

const blockKinds: readonly BlockKind[] = ['data', 'interior', 'root'];

/** A block's bytes whatever its kind (the archive codes bytes; the kind was hashed into the BGUID). */
function blockBytesOf(blocks: BlockStore, bguid: Uint8Array): Uint8Array | undefined {
  for (const kind of blockKinds) {
    const bytes = blocks.get(bguid, kind);
    if (bytes) return bytes;
  }
  return undefined;
}

function contextOf(ctx: RoleContext, store: KvStore): MachineContext {
  return { nodeId: ctx.node.name, store, random: secureRandom, nowMs: ctx.nowMs };
}

