/**
 * The downward half of a tree member, shared by ring roots and secondary replicas: admitting
 * children (bounded fan-out, no cycles), gap-filling them from the member's log, forwarding
 * certified updates and heartbeats, and forgetting children that went silent.
 *
 * Cycles: a member accepts a child only while it is itself attached, and never a node on its own
 * path from the root. A detached member's old descendants still carry it in their paths, so it
 * can never attach below itself; paths are refreshed at every renewal (Pond builds the tree
 * over Tapestry; we keep the same parent/child shape with an explicit path).
 */
import type { Effect } from '../core/machine.ts';
import type { RandomSource } from '../core/machine.ts';
import { treeLimits, type LogEntry, type TreeMessage } from './messages.ts';
import { entryBytesOf, type GapSource } from './object-log.ts';

export interface ChildSetOptions {
  readonly fanOutMax: number;
  /** A child that has not renewed for this long is dropped (it crashed or moved). */
  readonly childTimeoutMs: number;
  readonly entriesPerPushMax: number;
  /** Soft bound on one push's bytes (a single entry always goes). */
  readonly pushBytesMax: number;
  /**
   * Entries whose referenced blocks exceed this travel as block references: the push carries
   * the update and certificate only, and the child fetches the blocks it lacks by BGUID, in
   * requests sized to its link (BlockPacer). Default 256 KiB (askBytesMin): a larger entry inline
   * is one message the link must carry before anything behind it, heartbeats included; at 8 MiB
   * (sessions 1-25) a 4 MiB version made children on links under ~5 MiB/s leave honest parents
   * (docs/replica.md, "Slow tree links").
   */
  readonly inlineBlockBytesMax: number;
  /**
   * Whether `id` may be a child (and so fetch from us): the configured tree members, not any
   * authenticated client key. Anyone could hold every slot otherwise (session-22 review: four
   * client keys per ring server kept honest secondaries out of the tree). Default: anyone.
   */
  readonly isTreeMember: (id: string) => boolean;
  /**
   * A renewal brings a child no snapshot if one went to it less than this long ago (default 10 s),
   * and a fetch none if one went less than snapshotResendMs ago (default 1 s, under the child's
   * gapTimeoutMs: a lost snapshot, a restarted child or a newer head is served before the child
   * gives up on us). A child below the log (or asking from version 0) was sent the whole head at
   * every renewal and fetch while it was still installing the last one (session-22 second review).
   * A child asking again while the head has not moved waits twice as long at each snapshot, up to
   * snapshotRepeatMs (from whatever version below the log it asks: each gets the same head), and
   * its record is kept twice that long: a faulty member fetching from version 0 got the whole head
   * once a second, for ever (session 25; review: alternating versions, and a record pruned at the
   * cap, each started the back-off over).
   */
  readonly snapshotRepeatMs: number;
  readonly snapshotResendMs: number;
  /**
   * A renewal brings no gap fill if the child fetched less than this long ago (default 2 s, over
   * the child's renewal period of 1 s): its fetches bring the gap, each asked again after the
   * child's fetchReplyTimeoutMs (1.2 s) if its answer is lost. A renewal's gap fill as well was a
   * second copy of the same versions, which on a slow link queued in front of the next answer
   * (session 26). A join, or a child that stopped fetching, gets one.
   */
  readonly fetchQuietMs?: number;
}

export const defaultChildSetOptions: ChildSetOptions = {
  fanOutMax: 4,
  childTimeoutMs: 3_000,
  entriesPerPushMax: 32,
  pushBytesMax: 512 * 1024,
  inlineBlockBytesMax: 256 * 1024,
  isTreeMember: () => true,
  snapshotRepeatMs: 10_000,
  snapshotResendMs: 1_000,
  fetchQuietMs: 2_000,
};

/** Children remembered with when they were last sent a snapshot (kept past a detach: detaching and attaching again got one each time). */
const snapshotSentKeptMax = 1024;

export type TreeEffect<O> = Effect<TreeMessage, O>;

export class ChildSet {
  /** Child -> when it last renewed or fetched, and when it last fetched. */
  private readonly children = new Map<string, { lastHeardMs: number; lastFetchMs: number }>();
  /**
   * Child -> when it was last sent a snapshot, oldest first, with the head's next version then and
   * how many went in a row for that head (the back-off).
   */
  private readonly snapshotSent = new Map<string, { atMs: number; headNext: number; inRow: number }>();

  constructor(
    private readonly selfId: string,
    private readonly aguid: Uint8Array,
    private readonly options: ChildSetOptions,
    private readonly random: RandomSource,
  ) {}

  ids(): string[] {
    return [...this.children.keys()];
  }

  get size(): number {
    return this.children.size;
  }

  /**
   * A join or a renewal. `ownPath` is this member's path from the root (root: []; its last known
   * one while it re-attaches). `acceptNew` is false while the member is not attached: it keeps
   * its subtree (children renew) but takes no new children. Accepted children get their path and
   * a gap fill from `nextVersion`.
   */
  onAttach<O>(from: string, nextVersion: number, nowMs: number, ownPath: readonly string[], acceptNew: boolean, log: GapSource): TreeEffect<O>[] {
    const known = this.children.has(from);
    const refuse = (redirect: string[]): TreeEffect<O>[] => {
      if (known) this.children.delete(from);
      return [{ kind: 'send', to: from, message: { type: 'attach-refused', aguid: this.aguid, redirect } }];
    };
    if (!known && (!acceptNew || !this.options.isTreeMember(from))) return refuse([]);
    if (from === this.selfId || ownPath.includes(from)) return refuse([]);
    if (ownPath.length + 1 >= treeLimits.pathLengthMax) return refuse([]);
    if (!known && this.children.size >= this.options.fanOutMax) return refuse(this.redirectList(from));
    const lastFetchMs = this.children.get(from)?.lastFetchMs ?? -Infinity;
    this.children.set(from, { lastHeardMs: nowMs, lastFetchMs });
    const effects: TreeEffect<O>[] = [
      { kind: 'send', to: from, message: { type: 'attach-ok', aguid: this.aguid, path: [...ownPath, this.selfId], nextVersion: log.nextVersionHeld() } },
    ];
    // A child fetching gets its gap from its fetches (fetchQuietMs).
    const quietMs = this.options.fetchQuietMs ?? defaultChildSetOptions.fetchQuietMs!;
    if (known && nowMs - lastFetchMs < quietMs && lastFetchMs <= nowMs) return effects;
    return effects.concat(this.gapFill(from, nextVersion, nowMs, this.options.snapshotRepeatMs, log));
  }

  onDetach(from: string): void {
    this.children.delete(from);
  }

  /** Certified updates from `fromVersion` on, for a child that found a gap. Non-children get nothing. */
  onFetch<O>(from: string, fromVersion: number, nowMs: number, log: GapSource): TreeEffect<O>[] {
    const child = this.children.get(from);
    if (!child) return [];
    child.lastHeardMs = nowMs;
    child.lastFetchMs = nowMs;
    return this.gapFill(from, fromVersion, nowMs, this.options.snapshotResendMs, log);
  }

  forwardEntries<O>(entries: readonly LogEntry[]): TreeEffect<O>[] {
    if (entries.length === 0 || this.children.size === 0) return [];
    const effects: TreeEffect<O>[] = [];
    for (const batch of this.pushBatches(entries)) {
      // One message object per batch: the host encodes it once for every child.
      const message: TreeMessage = { type: 'push', aguid: this.aguid, entries: batch };
      for (const to of this.ids()) effects.push({ kind: 'send', to, message });
    }
    return effects;
  }

  /** Entries as they go on the wire (large ones as block references), split into bounded pushes. */
  private pushBatches(entries: readonly LogEntry[]): LogEntry[][] {
    const batches: LogEntry[][] = [];
    let batch: LogEntry[] = [];
    let bytes = 0;
    for (const entry of entries) {
      const wire = this.onWire(entry);
      const wireBytes = entryBytesOf(wire);
      if (batch.length > 0 && (bytes + wireBytes > this.options.pushBytesMax || batch.length >= this.options.entriesPerPushMax)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(wire);
      bytes += wireBytes;
    }
    if (batch.length > 0) batches.push(batch);
    return batches;
  }

  private onWire(entry: LogEntry): LogEntry {
    let blockBytes = 0;
    for (const b of entry.blocks) blockBytes += b.length;
    return blockBytes > this.options.inlineBlockBytesMax ? { update: entry.update, certificate: entry.certificate, blocks: [] } : entry;
  }

  forwardHeartbeat<O>(heartbeat: Uint8Array): TreeEffect<O>[] {
    return this.ids().map((to) => ({ kind: 'send', to, message: { type: 'heartbeat', aguid: this.aguid, heartbeat } }));
  }

  /** Drops silent children; returns their ids. */
  expire(nowMs: number): string[] {
    const gone: string[] = [];
    for (const [id, child] of this.children) {
      if (nowMs - child.lastHeardMs > this.options.childTimeoutMs) gone.push(id);
    }
    for (const id of gone) this.children.delete(id);
    // Snapshot times past twice both limits say nothing any more (a root keeps a ChildSet per object
    // it ever published); kept only to the back-off's cap, a record was gone before the capped wait ran out.
    const keepMs = 2 * Math.max(this.options.snapshotRepeatMs, this.options.snapshotResendMs);
    for (const [id, sent] of this.snapshotSent) if (nowMs - sent.atMs >= keepMs || sent.atMs > nowMs) this.snapshotSent.delete(id);
    return gone;
  }

  /** Versions from `fromVersion` on; a snapshot of the current version first if we can no longer replay from there. */
  private gapFill<O>(to: string, fromVersion: number, nowMs: number, snapshotAfterMs: number, log: GapSource): TreeEffect<O>[] {
    if (fromVersion >= log.nextVersionHeld()) return [];
    const { entriesPerPushMax, pushBytesMax } = this.options;
    // Weighed as they go on the wire: a large version by reference is its update only (weighed
    // whole, each gap fill held one such version: session-26 review).
    const entries = log.entriesFrom(fromVersion, entriesPerPushMax, pushBytesMax, (e) => entryBytesOf(this.onWire(e)));
    if (entries) return this.pushBatches(entries).map((batch) => ({ kind: 'send', to, message: { type: 'push', aguid: this.aguid, entries: batch } }));
    // Asked again while the head stands still: twice the wait at each snapshot, up to snapshotRepeatMs.
    const sent = this.snapshotSent.get(to);
    const headNext = log.nextVersionHeld();
    const inRow = sent && sent.headNext === headNext ? sent.inRow : 0;
    const waitMs = inRow === 0 ? snapshotAfterMs : Math.min(snapshotAfterMs * 2 ** Math.min(inRow - 1, 30), Math.max(snapshotAfterMs, this.options.snapshotRepeatMs));
    // A time ahead of now is a wall clock stepped back: it must not hold snapshots back until it is caught up.
    if (sent && sent.atMs <= nowMs && nowMs - sent.atMs < waitMs) return [];
    const snapshot = log.snapshot();
    if (!snapshot) return [];
    this.snapshotSent.delete(to);
    this.snapshotSent.set(to, { atMs: nowMs, headNext, inRow: inRow + 1 });
    for (const [id] of this.snapshotSent) {
      if (this.snapshotSent.size <= snapshotSentKeptMax) break;
      this.snapshotSent.delete(id);
    }
    // A large version goes without its data blocks (root and interior blocks only): the child
    // walks the tree and fetches the leaves it lacks by BGUID, as for a large update.
    let dataBytes = 0;
    for (const b of snapshot.blocks) if (b.kind === 'data') dataBytes += b.bytes.length;
    const blocks = dataBytes > this.options.inlineBlockBytesMax ? snapshot.blocks.filter((b) => b.kind !== 'data') : snapshot.blocks;
    return [{ kind: 'send', to, message: { type: 'snapshot', aguid: this.aguid, certificate: snapshot.certificate, blocks } }];
  }

  /** Children in random order, so joiners spread over the subtrees instead of piling onto one. */
  private redirectList(joiner: string): string[] {
    const ids = this.ids().filter((id) => id !== joiner);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = this.random.int(i + 1);
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    return ids.slice(0, treeLimits.redirectCountMax);
  }
}
