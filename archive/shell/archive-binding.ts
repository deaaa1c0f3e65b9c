/**
 * Glue for the runtime (runtime/machine-host.ts): the archive server core and the archiver as
 * host bindings on the archive channel. An archive-role process adds archiveServerBinding; a ring
 * server adds archiverBinding and calls `archiver.archive(...)` through the host's `execute`
 * when its replica commits a version (the ring's output must carry the new blocks and the
 * certificate). Wire frames are the archive message codec (archive/messages.ts).
 */
import { signerOf, type Crypto } from '../../core/crypto.ts';
import { assert } from '../../core/assert.ts';
import type { Effect, Machine, MachineContext } from '../../core/machine.ts';
import { channels } from '../../runtime/roles.ts';
import type { Binding } from '../../runtime/machine-host.ts';
import { ArchiveServer, defaultArchiveTiming, type ArchiveOutput, type ArchiveServerOptions } from '../archive-server.ts';
import { Archiver } from '../archiver.ts';
import { certificateCheckOf } from '../certificate-check.ts';
import type { Coding } from '../fragment-store.ts';
import type { ArchiverOptions, ArchiverOutput, BlockRefToArchive, BlockToArchive, VersionToArchive } from '../archiver-types.ts';
import { archiveLimits, decodeArchiveMessage, encodeArchiveFrame, encodeArchiveMessage, type ArchiveMessage } from '../messages.ts';
import { defaultRepairOptions } from '../repairer.ts';

export interface ArchiveServerBindingOptions {
  context: MachineContext;
  crypto: Crypto;
  secretKey: Uint8Array;
  archiveServers: readonly string[];
  ringServers: readonly string[];
  /** The cluster's erasure code (ArchiveServerOptions.coding). */
  coding: Coding;
  /**
   * The ring public key: with it the server keeps only certificates that verify under it, commit,
   * and name the root block they sit beside (archive/certificate-check.ts). Real servers pass it.
   */
  ringPublicKey?: Uint8Array;
  tickMs?: number;
  overrides?: Partial<Omit<ArchiveServerOptions, 'crypto' | 'signer' | 'archiveServers' | 'ringServers'>>;
  onOutput?: (event: ArchiveOutput) => void;
}

export function archiveServerBinding(o: ArchiveServerBindingOptions): { binding: Binding<ArchiveMessage, ArchiveOutput>; server: ArchiveServer } {
  const server = new ArchiveServer(o.context, {
    crypto: o.crypto,
    signer: signerOf(o.crypto, o.secretKey),
    archiveServers: o.archiveServers,
    ringServers: o.ringServers,
    coding: o.coding,
    ...defaultArchiveTiming,
    repair: defaultRepairOptions,
    ...(o.ringPublicKey ? { certificateCheck: certificateCheckOf(o.crypto, o.ringPublicKey) } : {}),
    ...o.overrides,
  });
  const binding: Binding<ArchiveMessage, ArchiveOutput> = {
    channel: channels.archive,
    protocol: 'archive',
    machine: server,
    decode: (bytes) => decodeArchiveMessage(bytes),
    encode: encodeArchiveMessage,
    encodeFrame: encodeArchiveFrame,
    frameBytesMax: archiveLimits.messageBytesMax,
    tickMs: o.tickMs ?? 50,
    onOutput: o.onOutput,
  };
  return { binding, server };
}

/** A step to itself: "encode the next slice". Local only: the wire codec has no such message. */
export interface ArchiverContinue {
  type: 'continue';
}
export type ArchiverWireMessage = ArchiveMessage | ArchiverContinue;

/**
 * The archiver as the host runs it: after any step that leaves encoding queued (the archiver
 * encodes at most `stepBytesMax` per step), it sends itself `continue`. The host delivers a
 * message to itself on a later turn of the event loop (setImmediate), after the frames and
 * timers already waiting, so reads, handshakes and /metrics are served between slices.
 * Committed versions handed over from host callbacks (`enqueue`) start on the next step.
 */
/**
 * When the archiver hands queued versions to the archive. Every hand-over costs each of the k+m
 * archive servers a store message, an fsync and a signed receipt, and the ring server an fsync
 * before the messages leave; at a few updates per second, handing over every tick made archive
 * traffic most of the fsyncs on the disk the ring's own votes wait for. So small versions wait up
 * to `gatherMs` to share one hand-over; as soon as `gatherBytes` are queued they go at the next
 * tick, so large writes stream as before.
 */
export interface ArchiveGathering {
  readonly gatherMs: number;
  readonly gatherBytes: number;
}

/** Hand over at every tick (tests and tools that archive one version and wait for it). */
export const archiveEveryTick: ArchiveGathering = { gatherMs: 0, gatherBytes: 0 };

function queuedBytesOf(version: VersionToArchive): number {
  let bytes = 0;
  for (const b of version.blocks) bytes += 'bytes' in b ? b.bytes.length : b.byteLength;
  return bytes;
}

export class SlicedArchiver implements Machine<ArchiverWireMessage, ArchiverOutput> {
  private continuing = false;
  private readonly queue: VersionToArchive[] = [];
  private queuedBytes = 0;
  /** The tick that first saw the oldest queued version (null: queue empty). */
  private queuedSinceMs: number | null = null;

  constructor(
    readonly archiver: Archiver,
    private readonly self: string,
    private readonly gathering: ArchiveGathering = archiveEveryTick,
  ) {}

  /** A committed version; `archivers` are the ring servers handed it too (VersionToArchive.archivers). */
  enqueue(blocks: (BlockToArchive | BlockRefToArchive)[], root: Uint8Array | null, certificate: Uint8Array | null, archivers?: readonly string[]): void {
    const version: VersionToArchive = archivers ? { blocks, rootBguid: root, certificate, archivers } : { blocks, rootBguid: root, certificate };
    this.queue.push(version);
    this.queuedBytes += queuedBytesOf(version);
    // Kept in the store while it waits here, so a crash before the hand-over does not lose it.
    this.archiver.keepWaiting(version);
  }

  /** Versions handed over by the host and not yet given to the archiver. */
  queuedCount(): number {
    return this.queue.length;
  }

  onMessage(from: string, message: ArchiverWireMessage, nowMs: number): Effect<ArchiverWireMessage, ArchiverOutput>[] {
    if (message.type === 'continue') {
      if (from !== this.self) return [];
      this.continuing = false;
      return this.more(this.archiver.continue(nowMs));
    }
    return this.more(this.archiver.onMessage(from, message, nowMs));
  }

  onTick(nowMs: number): Effect<ArchiverWireMessage, ArchiverOutput>[] {
    const out: Effect<ArchiverWireMessage, ArchiverOutput>[] = [];
    // All versions gathered since the last hand-over in one step: one store message (and one
    // signed receipt) per archive server for all of them.
    if (this.queue.length > 0) {
      this.queuedSinceMs ??= nowMs;
      if (this.queuedBytes >= this.gathering.gatherBytes || nowMs - this.queuedSinceMs >= this.gathering.gatherMs) {
        out.push(...this.archiver.archiveAll(this.queue.splice(0), nowMs));
        this.queuedBytes = 0;
        this.queuedSinceMs = null;
      }
    }
    out.push(...this.archiver.onTick(nowMs));
    // A continue in flight is delivered within a turn or two; a tick finding the flag still set means it was dropped (host stopping).
    this.continuing = false;
    return this.more(out);
  }

  private more(effects: Effect<ArchiverWireMessage, ArchiverOutput>[]): Effect<ArchiverWireMessage, ArchiverOutput>[] {
    if (!this.continuing && this.archiver.ready()) {
      this.continuing = true;
      effects.push({ kind: 'send', to: this.self, message: { type: 'continue' } });
    }
    return effects;
  }
}

export function archiverBinding(
  context: MachineContext,
  options: ArchiverOptions,
  onOutput?: (event: ArchiverOutput) => void,
  tickMs = 50,
  gathering: ArchiveGathering = archiveEveryTick,
): { binding: Binding<ArchiverWireMessage, ArchiverOutput>; archiver: Archiver; sliced: SlicedArchiver } {
  const archiver = new Archiver(context, options);
  const sliced = new SlicedArchiver(archiver, context.nodeId, gathering);
  const binding: Binding<ArchiverWireMessage, ArchiverOutput> = {
    channel: channels.archive,
    protocol: 'archive',
    machine: sliced,
    decode: (bytes) => decodeArchiveMessage(bytes),
    encode: (message) => {
      assert(message.type !== 'continue', 'a continue message never leaves its node');
      return encodeArchiveMessage(message);
    },
    encodeFrame: (message, reservedBytes) => {
      assert(message.type !== 'continue', 'a continue message never leaves its node');
      return encodeArchiveFrame(message, reservedBytes);
    },
    frameBytesMax: archiveLimits.messageBytesMax,
    tickMs,
    onOutput,
  };
  return { binding, archiver, sliced };
}
