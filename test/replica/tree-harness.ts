/**
 * A dissemination-tree world in the deterministic simulator: `rootCount` test ring roots publish
 * a precomputed certified history (each version at a fixed time) and heartbeats; `replicaCount`
 * secondary replicas subscribe, build the tree and follow. Safety is checked at every acceptance
 * (a correct replica may only accept the ring's exact version), and the harness records when
 * every version reached every replica.
 */
import { bytesEqual, toHex } from '../../core/bytes.ts';
import type { Effect, Machine, MachineContext } from '../../core/machine.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { CachingTrust } from '../../replica/caching-trust.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import type { ReplicaEvent } from '../../replica/events.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import type { ParentTiming } from '../../replica/parent-link.ts';
import { TreeRoot, type TreeRootEvent } from '../../replica/root.ts';
import { SecondaryReplica, blocksReply } from '../../replica/secondary.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import type { ReplicaExecutor } from '../../replica/types.ts';
import { Simulation, type NetworkOptions } from '../../sim/simulation.ts';
import { TestRingSigner, buildHistory, makeHeartbeat, testObject, type HistoryVersion, type ObjectModel, type SignerKind } from './test-ring.ts';

export type HarnessEvent = ReplicaEvent | TreeRootEvent;

export interface TreeSimOptions {
  readonly seed: number;
  readonly replicaCount: number;
  readonly fanOutMax?: number;
  readonly rootCount?: number;
  readonly versionCount: number;
  readonly startMs?: number;
  readonly updateIntervalMs?: number;
  readonly heartbeatMs?: number;
  readonly network?: Partial<NetworkOptions>;
  readonly cacheBytesMax?: number;
  readonly signer?: SignerKind;
  /** 'core' (default): real Pond updates through applyUpdate; 'toy': the append-only stand-in. */
  readonly model?: ObjectModel;
  readonly appendBytes?: number;
  readonly referenceEvery?: number;
  readonly timing?: Partial<ParentTiming>;
  readonly logEntriesMax?: number;
  /** Entries whose referenced blocks exceed this go down as block references (children fetch them). */
  readonly inlineBlockBytesMax?: number;
}

/** Timing scaled to the simulator's 1–10 ms links and 100 ms heartbeats. */
export const simTiming: ParentTiming = {
  renewMs: 150,
  parentTimeoutMs: 450,
  // Production's 30 s / 120 s scaled like the rest (a root that crashes before its children have
  // seen two heartbeats is left after this long).
  parentSilenceUnknownMs: 3_000,
  parentSilenceMaxMs: 12_000,
  attachTimeoutMs: 100,
  gapTimeoutMs: 300,
  parentBehindTimeoutMs: 1_200,
  fetchRetryMs: 50,
  fetchReplyTimeoutMs: 200,
  retryBackoffMs: 50,
  distrustSilentMs: 2_000,
  distrustLiarMs: 1_000_000_000,
  heartbeatSlackMs: 3_000,
};

/**
 * Snapshot resend limits and the renewal's quiet time after a fetch scaled alike (production: 10 s,
 * 1 s and 2 s; the resend stays under gapTimeoutMs).
 */
export const simSnapshotTiming = { snapshotRepeatMs: 1_000, snapshotResendMs: 100, fetchQuietMs: 300 };

class TestRingRoot implements Machine<TreeMessage, HarnessEvent> {
  readonly root: TreeRoot;
  private published = 0;
  private lastHeartbeatMs = -Infinity;
  private heartbeatSequence = 1_000_000;

  constructor(
    context: MachineContext,
    private readonly world: TreeSim,
    fanOutMax: number,
  ) {
    const inline = world.options.inlineBlockBytesMax;
    this.root = new TreeRoot({ nodeId: context.nodeId, random: context.random, fanOutMax, childTimeoutMs: 500, ...simSnapshotTiming, ...(inline === undefined ? {} : { inlineBlockBytesMax: inline }) });
  }

  onMessage(from: string, message: TreeMessage, nowMs: number): Effect<TreeMessage, HarnessEvent>[] {
    // Like a ring server: blocks of entries that went down as references come from the ring's store.
    if (message.type === 'fetch-blocks') {
      if (!this.root.childrenOf(message.aguid).includes(from)) return [];
      this.world.blockFetches++;
      return [{ kind: 'send', to: from, message: blocksReply(this.world.ringBlocks, message.aguid, message.bguids) }];
    }
    return this.root.onMessage(from, message, nowMs);
  }

  onTick(nowMs: number): Effect<TreeMessage, HarnessEvent>[] {
    const w = this.world;
    const effects: Effect<TreeMessage, HarnessEvent>[] = this.root.onTick(nowMs);
    while (this.published < w.history.length && nowMs >= w.startMs + this.published * w.updateIntervalMs) {
      const h = w.history[this.published]!;
      effects.push(...this.root.publish(w.aguid, h.version, h.entry));
      w.publishedAtMs[h.version] = Math.min(w.publishedAtMs[h.version] ?? Infinity, nowMs);
      this.published++;
    }
    if (this.published > 0 && nowMs - this.lastHeartbeatMs >= w.heartbeatMs) {
      this.lastHeartbeatMs = nowMs;
      const latest = w.history[this.published - 1]!;
      const heartbeat = makeHeartbeat(w.crypto, w.signer, w.aguid, latest, Math.floor(nowMs), this.heartbeatSequence++);
      effects.push(...this.root.publishHeartbeat(w.aguid, heartbeat));
    }
    return effects;
  }
}

export class TreeSim {
  readonly crypto = nodeCrypto;
  readonly sim: Simulation<TreeMessage, HarnessEvent>;
  readonly signer: TestRingSigner;
  readonly aguid: Uint8Array;
  readonly history: HistoryVersion[];
  readonly rootIds: string[];
  readonly replicaIds: string[];
  readonly startMs: number;
  readonly updateIntervalMs: number;
  readonly heartbeatMs: number;
  readonly executor: ReplicaExecutor;
  /** First time any root published each version. */
  readonly publishedAtMs: number[] = [];
  /** Per replica, when it accepted each version. */
  readonly acceptedAtMs = new Map<string, number[]>();
  /** Safety violations: a correct replica accepted something that is not the ring's version. */
  readonly violations: string[] = [];
  readonly byzantine = new Set<string>();
  /** Every block the test ring wrote or was given (what a ring server's store holds). */
  readonly ringBlocks = new MemoryBlockStore(nodeCrypto, { verifyOnGet: false });
  /** fetch-blocks requests the roots answered. */
  blockFetches = 0;
  readonly events: { nodeId: string; event: HarnessEvent; atMs: number }[] = [];

  constructor(readonly options: TreeSimOptions) {
    this.signer = new TestRingSigner(this.crypto, options.signer ?? 'fake', options.seed);
    const object = testObject(this.crypto, options.model ?? 'core', options.seed);
    this.aguid = object.aguid;
    this.executor = object.executor;
    this.history = buildHistory(this.crypto, this.signer, object, {
      versionCount: options.versionCount,
      appendBytes: options.appendBytes ?? 1000,
      referenceEvery: options.referenceEvery ?? 4,
      seed: options.seed,
      blocks: this.ringBlocks,
    });
    this.startMs = options.startMs ?? 200;
    this.updateIntervalMs = options.updateIntervalMs ?? 100;
    this.heartbeatMs = options.heartbeatMs ?? 100;
    this.sim = new Simulation<TreeMessage, HarnessEvent>({
      seed: options.seed,
      tickMs: 10,
      network: options.network ?? {},
      describeMessage: describe,
    });
    const fanOutMax = options.fanOutMax ?? 4;
    this.rootIds = Array.from({ length: options.rootCount ?? 1 }, (_, i) => `ring-${i}`);
    for (const id of this.rootIds) this.sim.addNode(id, (context) => new TestRingRoot(context, this, fanOutMax));
    this.replicaIds = [];
    for (let i = 0; i < options.replicaCount; i++) this.addReplica(`replica-${String(i).padStart(3, '0')}`);
    this.sim.onOutput((nodeId, event, atMs) => this.onOutput(nodeId, event, atMs));
  }

  /** Adds a secondary replica (now, or later in the run: a late joiner). */
  addReplica(id: string): void {
    const o = this.options;
    const locator = new ConfigLocator(this.rootIds);
    this.replicaIds.push(id);
    this.sim.addNode(id, (context) => {
      return new SecondaryReplica(context, {
        crypto: this.crypto,
        trust: new CachingTrust(this.signer.trust()),
        executor: this.executor,
        locator,
        cacheBytesMax: o.cacheBytesMax ?? 16 * 1024 * 1024,
        subscriptions: [this.aguid],
        fanOutMax: o.fanOutMax ?? 4,
        childTimeoutMs: 500,
        logEntriesMax: o.logEntriesMax,
        ...(o.inlineBlockBytesMax === undefined ? {} : { inlineBlockBytesMax: o.inlineBlockBytesMax }),
        ...simTiming,
        ...simSnapshotTiming,
        ...o.timing,
      });
    });
  }

  replica(id: string): SecondaryReplica | null {
    return this.sim.machine(id) as SecondaryReplica | null;
  }

  root(id: string): TreeRoot | null {
    return (this.sim.machine(id) as TestRingRoot | null)?.root ?? null;
  }

  correctUpReplicas(): string[] {
    return this.replicaIds.filter((id) => !this.byzantine.has(id) && this.sim.isUp(id));
  }

  /** Every correct, up replica holds the newest version, and its whole log is the ring's history. */
  converged(ids = this.correctUpReplicas()): boolean {
    const last = this.history[this.history.length - 1]!;
    return ids.every((id) => {
      const head = this.replica(id)?.copyOf(this.aguid)?.head;
      return head !== null && head !== undefined && head.version === last.version && bytesEqual(head.vguid, last.vguid);
    });
  }

  /** The replica's log is the ring's history exactly: contiguous from version 0, same VGUIDs and certificates. */
  holdsExactHistory(id: string): boolean {
    const records = this.replica(id)?.copyOf(this.aguid)?.log.all() ?? [];
    return records.length === this.history.length && this.holdsExactSuffix(id);
  }

  /** Whatever versions the replica holds are a contiguous run of the ring's history, up to its head. */
  holdsExactSuffix(id: string): boolean {
    const records = this.replica(id)?.copyOf(this.aguid)?.log.all() ?? [];
    if (records.length === 0 || records[records.length - 1]!.version !== this.history.length - 1) return false;
    return records.every((r, i) => {
      const h = this.history[records[0]!.version + i]!;
      return r.version === h.version && bytesEqual(r.vguid, h.vguid) && bytesEqual(r.certificate, h.entry.certificate);
    });
  }

  depthOf(id: string): number {
    return this.replica(id)?.parentOf(this.aguid)?.path.length ?? 0;
  }

  /** Time from the first publish of `version` until the last of `ids` accepted it (Infinity if one never did). */
  latencyToAllMs(version: number, ids = this.correctUpReplicas()): number {
    const published = this.publishedAtMs[version];
    if (published === undefined) return Infinity;
    let worst = 0;
    for (const id of ids) worst = Math.max(worst, (this.acceptedAtMs.get(id)?.[version] ?? Infinity) - published);
    return worst;
  }

  /** Runs until the last version was published and every correct up replica converged. */
  runToConvergence(timeMsMax: number): boolean {
    const lastPublishMs = this.startMs + (this.history.length - 1) * this.updateIntervalMs;
    return this.sim.runUntil(() => this.sim.nowMs > lastPublishMs && this.converged(), timeMsMax);
  }

  private onOutput(nodeId: string, event: HarnessEvent, atMs: number): void {
    this.events.push({ nodeId, event, atMs });
    if (event.kind !== 'accepted' || this.byzantine.has(nodeId)) return;
    const expected = this.history[event.version];
    if (!expected || event.aguid !== toHex(this.aguid) || event.vguid !== toHex(expected.vguid)) {
      this.violations.push(`${nodeId} accepted version ${event.version} = ${event.vguid.slice(0, 12)} at ${atMs}`);
    }
    let times = this.acceptedAtMs.get(nodeId);
    if (!times) this.acceptedAtMs.set(nodeId, (times = []));
    times[event.version] ??= atMs;
  }
}

function describe(m: TreeMessage): string {
  switch (m.type) {
    case 'push':
      return `push ${m.entries.length} ${m.entries.map((e) => e.certificate.length).join(',')}`;
    case 'attach':
      return `attach ${m.nextVersion}`;
    case 'attach-ok':
      return `ok ${m.path.join('/')} ${m.nextVersion}`;
    case 'attach-refused':
      return `refused ${m.redirect.join(',')}`;
    case 'fetch':
      return `fetch ${m.fromVersion}`;
    case 'read':
      return `read ${m.requestId}`;
    case 'read-reply':
      return `reply ${m.requestId} ${m.status}`;
    default:
      return m.type;
  }
}
