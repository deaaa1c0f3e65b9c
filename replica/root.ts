/**
 * The ring server's side of the dissemination tree. Every ring server is a root of every tree of
 * its ring's objects: after the ring commits an update and the threshold certificate for its
 * batch exists, the ring server calls `publish` with the encoded update, the certificate and the
 * data blocks the update references; it calls `publishHeartbeat` with each new signed heartbeat.
 * The root keeps the certified log (for gap fills) and pushes down to its children; it does not
 * re-execute (the ring just did), and it answers no reads (the ring serves those itself).
 *
 * Hosting (for the ring/runtime): route every TreeMessage a ring server receives to
 * `onMessage`, call `onTick` every tick, and perform the returned effects like a Machine's.
 */
import { assert } from '../core/assert.ts';
import { ownedBytes, toHex } from '../core/bytes.ts';
import { checkArgument } from '../core/errors.ts';
import type { Machine, MachineContext, RandomSource } from '../core/machine.ts';
import { isGuid } from '../core/version/block.ts';
import { ChildSet, defaultChildSetOptions, type ChildSetOptions, type TreeEffect } from './children.ts';
import { ownedEntry, type LogEntry, type TreeMessage } from './messages.ts';
import { ObjectLog, boundedEntries, type GapSource, type Snapshot } from './object-log.ts';

export interface TreeRootOptions extends Partial<ChildSetOptions> {
  readonly nodeId: string;
  readonly random: RandomSource;
  /**
   * The object's latest version whole, for a child below the start of the log (a ring server's
   * log starts at its restart): without it such a child could never catch up from a root.
   */
  readonly snapshotOf?: (aguid: Uint8Array) => Snapshot | null;
}

/** What a root reports (metrics, checkers). */
export type TreeRootEvent = { readonly kind: 'child-expired'; readonly aguid: string; readonly child: string };

/** A root's log: every entry it published, replayed to children as they are; below it, the ring's stored head. */
class RootLog implements GapSource {
  readonly log = new ObjectLog<{ readonly version: number; readonly entry: LogEntry }>();

  constructor(private readonly storedHead: () => Snapshot | null) {}

  nextVersionHeld(): number {
    return this.log.nextVersion(0);
  }

  entriesFrom(fromVersion: number, countMax: number, bytesMax: number, bytesOf?: (entry: LogEntry) => number): LogEntry[] | null {
    const first = this.log.firstVersion;
    if (first === null || fromVersion < first) return null;
    return boundedEntries((i) => this.log.get(fromVersion + i)?.entry ?? null, countMax, bytesMax, bytesOf);
  }

  snapshot(): Snapshot | null {
    return this.storedHead();
  }
}

interface RootObject {
  readonly aguid: Uint8Array;
  readonly log: RootLog;
  readonly children: ChildSet;
  heartbeat: Uint8Array | null;
}

export class TreeRoot {
  private readonly objects = new Map<string, RootObject>();
  private readonly childOptions: ChildSetOptions;
  /** Messages from children about objects this root has never published: dropped and counted. */
  unknownObjectMessages = 0;

  constructor(private readonly options: TreeRootOptions) {
    checkArgument(typeof options?.nodeId === 'string' && options.nodeId.length > 0, 'options.nodeId', 'a non-empty node id');
    this.childOptions = { ...defaultChildSetOptions, ...options };
    checkArgument(Number.isSafeInteger(this.childOptions.fanOutMax) && this.childOptions.fanOutMax >= 1, 'options.fanOutMax', 'a positive integer');
  }

  /**
   * Pushes one certified update (version `version` of `aguid`) to the tree. Versions must be
   * published in order without gaps, starting anywhere (a root that starts late serves the
   * history from there).
   */
  publish(aguid: Uint8Array, version: number, entry: LogEntry): TreeEffect<TreeRootEvent>[] {
    checkArgument(isGuid(aguid), 'aguid', 'a 32-byte AGUID');
    checkArgument(Number.isSafeInteger(version) && version >= 0, 'version', 'a non-negative integer');
    const object = this.objectOf(aguid, true)!;
    const expected = object.log.log.nextVersion(version);
    checkArgument(version === expected, 'version', `the next version of this object (${expected})`);
    // The log keeps entries for as long as the root runs: not views into larger buffers (frames).
    const kept = ownedEntry(entry);
    object.log.log.append({ version, entry: kept });
    return object.children.forwardEntries([kept]);
  }

  /**
   * Publishes `version` past a gap this root will never fill (versions certified that it cannot
   * make entries of: their updates ran before this server restarted). Its log starts over at
   * `version`; a child still below it fetches, and gets the stored head whole (snapshotOf), as a
   * child below the start of a log that began late does.
   */
  publishAfterGap(aguid: Uint8Array, version: number, entry: LogEntry): TreeEffect<TreeRootEvent>[] {
    checkArgument(isGuid(aguid), 'aguid', 'a 32-byte AGUID');
    const object = this.objectOf(aguid, true)!;
    checkArgument(Number.isSafeInteger(version) && version >= object.log.log.nextVersion(0), 'version', 'a version after the last one published');
    const kept = ownedEntry(entry);
    object.log.log.reset({ version, entry: kept });
    return object.children.forwardEntries([kept]);
  }

  /** Pushes a new signed heartbeat of `aguid` to the tree. */
  publishHeartbeat(aguid: Uint8Array, heartbeat: Uint8Array): TreeEffect<TreeRootEvent>[] {
    checkArgument(isGuid(aguid), 'aguid', 'a 32-byte AGUID');
    const object = this.objectOf(aguid, true)!;
    object.heartbeat = ownedBytes(heartbeat);
    return object.children.forwardHeartbeat(object.heartbeat);
  }

  onMessage(from: string, message: TreeMessage, nowMs: number): TreeEffect<TreeRootEvent>[] {
    if (message.type === 'read' || message.type === 'read-reply' || message.type === 'batch-certificate') return [];
    const object = this.objectOf(message.aguid, false);
    if (!object) {
      this.unknownObjectMessages++;
      if (message.type !== 'attach') return [];
      return [{ kind: 'send', to: from, message: { type: 'attach-refused', aguid: message.aguid, redirect: [] } }];
    }
    switch (message.type) {
      case 'attach': {
        const effects = object.children.onAttach<TreeRootEvent>(from, message.nextVersion, nowMs, [], true, object.log);
        // A fresh child learns the freshness of what it just got at once, not a heartbeat period later.
        if (object.heartbeat && object.children.ids().includes(from)) {
          effects.push({ kind: 'send', to: from, message: { type: 'heartbeat', aguid: object.aguid, heartbeat: object.heartbeat } });
        }
        return effects;
      }
      case 'detach':
        object.children.onDetach(from);
        return [];
      case 'fetch':
        return object.children.onFetch(from, message.fromVersion, nowMs, object.log);
      default:
        return []; // pushes, heartbeats and replies are for members below a root, never for it
    }
  }

  onTick(nowMs: number): TreeEffect<TreeRootEvent>[] {
    const effects: TreeEffect<TreeRootEvent>[] = [];
    for (const [key, object] of this.objects) {
      for (const child of object.children.expire(nowMs)) {
        effects.push({ kind: 'output', event: { kind: 'child-expired', aguid: key, child } });
      }
    }
    return effects;
  }

  childrenOf(aguid: Uint8Array): string[] {
    return this.objectOf(aguid, false)?.children.ids() ?? [];
  }

  /** The next version this root expects to publish (null if it has published nothing for aguid). */
  nextVersion(aguid: Uint8Array): number | null {
    const log = this.objectOf(aguid, false)?.log.log;
    return log && log.length > 0 ? log.nextVersion(0) : null;
  }

  private objectOf(aguid: Uint8Array, create: boolean): RootObject | undefined {
    const key = toHex(aguid);
    let object = this.objects.get(key);
    if (!object && create) {
      // A copy: aguid is often a view into a statement of a batch (a frame).
      const own = new Uint8Array(aguid);
      const snapshotOf = this.options.snapshotOf;
      object = { aguid: own, log: new RootLog(() => snapshotOf?.(own) ?? null), children: new ChildSet(this.options.nodeId, own, this.childOptions, this.options.random), heartbeat: null };
      this.objects.set(key, object);
    }
    assert(!object || object.aguid.length === aguid.length, 'one object per AGUID');
    return object;
  }
}

/**
 * TreeRoot as a Machine, for hosts that deliver ring outputs outside a step (MachineHost's
 * onOutput): `publish` and `publishHeartbeat` queue their sends, and the next tick releases them.
 * Bind it on the replica channel of every ring server; call `publish` from the ring core's
 * certificate output for each committed update of an object, in version order.
 */
export class TreeRootMachine implements Machine<TreeMessage, TreeRootEvent> {
  readonly root: TreeRoot;
  private queued: TreeEffect<TreeRootEvent>[] = [];

  constructor(context: MachineContext, options: Partial<ChildSetOptions> & Pick<TreeRootOptions, 'snapshotOf'> = {}) {
    this.root = new TreeRoot({ ...options, nodeId: context.nodeId, random: context.random });
  }

  publish(aguid: Uint8Array, version: number, entry: LogEntry): void {
    this.queued.push(...this.root.publish(aguid, version, entry));
  }

  publishAfterGap(aguid: Uint8Array, version: number, entry: LogEntry): void {
    this.queued.push(...this.root.publishAfterGap(aguid, version, entry));
  }

  publishHeartbeat(aguid: Uint8Array, heartbeat: Uint8Array): void {
    this.queued.push(...this.root.publishHeartbeat(aguid, heartbeat));
  }

  onMessage(from: string, message: TreeMessage, nowMs: number): TreeEffect<TreeRootEvent>[] {
    return this.root.onMessage(from, message, nowMs);
  }

  onTick(nowMs: number): TreeEffect<TreeRootEvent>[] {
    const out = this.queued.concat(this.root.onTick(nowMs));
    this.queued = [];
    return out;
  }
}
