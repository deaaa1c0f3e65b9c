/**
 * A Tapestry node's view of who is alive and how far (Zhao et al., IEEE JSAC 2004 §4.2): pings
 * and their round trips (which feed proximity neighbour selection), beacons that count a
 * neighbour's misses until it is declared failed, probes of backpointers that went silent, repair
 * of a slot whose neighbour is gone, and anti-entropy row queries. tapestry/node.ts owns one and
 * routes pings, pongs and departures to it.
 */
import type { RandomSource } from '../core/machine.ts';
import type { TapestryConfig } from './config.ts';
import { sharedPrefixLength, type NodeRef, type TapestryId } from './id.ts';
import type { Out } from './join.ts';
import type { TapestryMessage, TapestryStats } from './messages.ts';
import type { ObjectLocation } from './object-location.ts';
import type { RoutingTable } from './routing-table.ts';

/** What the watch needs from its node. */
export interface WatchHost {
  readonly self: NodeRef;
  readonly table: RoutingTable;
  readonly config: TapestryConfig;
  readonly stats: TapestryStats;
  send(out: Out, to: string, message: TapestryMessage): void;
  /** A node was measured (a pong arrived): the join in progress may be waiting for it. */
  onMeasured(out: Out, id: TapestryId, nowMs: number): void;
}

/** Longer than any round trip a node measures (the simulations' worst is ~300 ms). */
const roundTripMaxMs = 1_000;

export class NeighbourWatch {
  private readonly pendingPings = new Map<TapestryId, number>();
  /** Recent measurements (also of nodes not in the table): holder choice and ping suppression. */
  private readonly measured = new Map<TapestryId, { atMs: number; rttMs: number }>();
  /** Nodes heard from first-hand while a ping to them was pending: pinged again if it lapses. */
  private readonly revived = new Map<TapestryId, NodeRef>();
  /** Backpointers that went silent, probed once: retracted unless they answer. */
  private readonly suspects = new Map<TapestryId, { ref: NodeRef; sinceMs: number }>();
  private maintenanceLevel = 0;

  constructor(
    private readonly host: WatchHost,
    private readonly location: ObjectLocation,
    private readonly random: RandomSource,
  ) {}

  /**
   * Pings `candidate` unless it is us, a neighbour, already pinged or measured recently.
   * `alive`: we have first-hand news that it runs now (it pinged us, or it is joining), so an
   * earlier failure mark must not keep a restarted node out of our table for remeasureIntervalMs.
   */
  learn(out: Out, candidate: NodeRef, nowMs: number, alive = false): boolean {
    const { self, table, config } = this.host;
    const id = candidate.id;
    if (id === self.id || table.get(id)) return false;
    if (alive) {
      if (this.measured.get(id)?.rttMs === Number.MAX_VALUE) this.measured.delete(id);
      // A ping pending for longer than any round trip went to an old incarnation (or was lost):
      // ping again. A younger one may still be answered; if it is not, it is retried when it lapses.
      const sentAtMs = this.pendingPings.get(id);
      if (sentAtMs !== undefined && nowMs - sentAtMs > roundTripMaxMs) this.pendingPings.delete(id);
      else if (sentAtMs !== undefined && this.revived.size < config.pendingPingsMax) this.revived.set(id, candidate);
    }
    if (this.pendingPings.has(id)) return false;
    const measured = this.measured.get(id);
    if (measured !== undefined && nowMs - measured.atMs < config.remeasureIntervalMs) return false;
    if (this.pendingPings.size >= config.pendingPingsMax) return false;
    this.pendingPings.set(id, nowMs);
    this.host.send(out, candidate.name, { kind: 'ping', sender: self, sentAtMs: nowMs });
    return true;
  }

  /** A pong from `sender` (its claim already checked against the channel); false if unexpected. */
  onPong(out: Out, sender: NodeRef, sentAtMs: number, nowMs: number): boolean {
    if (this.pendingPings.get(sender.id) !== sentAtMs || sentAtMs > nowMs) return false;
    this.pendingPings.delete(sender.id);
    this.revived.delete(sender.id);
    this.suspects.delete(sender.id);
    // A zero round trip (same host, or a coarse clock) still has to sort after nothing real.
    const rttMs = Math.max(nowMs - sentAtMs, 0.001);
    this.measured.delete(sender.id);
    this.measured.set(sender.id, { atMs: nowMs, rttMs });
    if (this.measured.size > 8192) this.measured.delete(this.measured.keys().next().value!);
    const result = this.host.table.consider(sender, rttMs, nowMs);
    if (result.inserted) this.host.send(out, sender.name, { kind: 'backpointer', sender: this.host.self, add: true });
    if (result.evicted) this.host.send(out, result.evicted.name, { kind: 'backpointer', sender: this.host.self, add: false });
    this.host.onMeasured(out, sender.id, nowMs);
    return true;
  }

  /** First-hand news from a neighbour: its beacon misses start again. */
  heard(id: TapestryId): void {
    const n = this.host.table.get(id);
    if (n) n.beaconMisses = 0;
  }

  /**
   * A neighbour in our table since `sinceMs` or before that answered its last beacon: a member
   * that has been running all along (join.ts: a multicast naming it is not a real join).
   */
  settled(id: TapestryId, sinceMs: number): boolean {
    const n = this.host.table.get(id);
    return n !== undefined && n.addedAtMs <= sinceMs && n.beaconMisses === 0 && !this.pendingPings.has(id);
  }

  /** 0 for ourselves, the table's or a recent measurement, else Number.MAX_VALUE. */
  rttOf(id: TapestryId): number {
    if (id === this.host.self.id) return 0;
    return this.host.table.get(id)?.rttMs ?? this.measured.get(id)?.rttMs ?? Number.MAX_VALUE;
  }

  /**
   * Every beacon interval: pings every neighbour. A neighbour whose previous beacon is still
   * unanswered counts a miss; after beaconMissesMax in a row it is declared failed and removed.
   */
  beacon(out: Out, nowMs: number): void {
    const { table, config, self } = this.host;
    // Backpointers beacon us: one silent for as long as a neighbour may be has failed (or dropped
    // us without saying). Its pointers here are retracted toward the root.
    const silentSinceMs = nowMs - (config.beaconMissesMax + 1) * config.beaconIntervalMs;
    // It may only have dropped us without a word, so it is probed once before its pointers go.
    for (const [id, suspect] of this.suspects) {
      if (nowMs - suspect.sinceMs < config.beaconIntervalMs) continue;
      this.suspects.delete(id);
      if (!table.get(id)) this.pendingPings.delete(id);
      this.location.retractServer(out, suspect.ref, nowMs, suspect.sinceMs);
    }
    for (const silent of table.takeSilentBackpointers(silentSinceMs)) {
      if (table.get(silent.id) || this.suspects.size >= config.pendingPingsMax) continue;
      this.suspects.set(silent.id, { ref: silent, sinceMs: nowMs });
      this.pendingPings.set(silent.id, nowMs);
      this.host.send(out, silent.name, { kind: 'ping', sender: self, sentAtMs: nowMs });
    }
    // Every beacon says we hold the neighbour (`holding`), so it records our backpointer again
    // whenever it lost it: after our own silence (a paused process, a blocked event loop), its
    // silence, or its restart under its old id. Before, a dropped backpointer was never restored.
    for (const n of [...table.neighbours()]) {
      if (this.pendingPings.has(n.id) && ++n.beaconMisses >= config.beaconMissesMax) {
        this.host.stats.neighboursFailed++;
        out.push({ kind: 'output', event: { kind: 'neighbourFailed', neighbour: { id: n.id, name: n.name } } });
        this.forget(out, n, true, nowMs);
        continue;
      }
      this.pendingPings.set(n.id, nowMs);
      this.host.send(out, n.name, { kind: 'ping', sender: self, sentAtMs: nowMs, holding: true });
    }
  }

  /** Removes a failed or departed node; its slot's backups move up and the slot is refilled. */
  forget(out: Out, gone: NodeRef, failed: boolean, nowMs: number): void {
    const { table, config, self } = this.host;
    // Silent since its first missed beacon; a departing node's pointers all go.
    const silentSinceMs = failed ? nowMs - config.beaconMissesMax * config.beaconIntervalMs : nowMs;
    this.location.retractServer(out, gone, nowMs, silentSinceMs);
    this.pendingPings.delete(gone.id);
    if (failed) this.measured.set(gone.id, { atMs: nowMs, rttMs: Number.MAX_VALUE });
    const level = table.remove(gone.id);
    if (level < 0) return;
    // Ask the nearest nodes that share this level (they hold the same prefix region) for their row.
    let helpers = table.closest(level, 2);
    if (helpers.length === 0) helpers = table.closest(0, 2);
    for (const h of helpers) this.host.send(out, h.name, { kind: 'neighbourQuery', level: Math.min(level, sharedPrefixLength(h.id, self.id)) });
  }

  /** Anti-entropy: one row from one neighbour per interval, cycling through the levels in use. */
  maintain(out: Out): void {
    const { table, self } = this.host;
    const levelsInUse: number[] = [];
    for (const n of table.neighbours()) {
      const l = sharedPrefixLength(n.id, self.id);
      if (!levelsInUse.includes(l)) levelsInUse.push(l);
    }
    if (levelsInUse.length === 0) return;
    levelsInUse.sort((a, b) => a - b);
    const level = levelsInUse[this.maintenanceLevel++ % levelsInUse.length]!;
    const row = table.row(level);
    const peer = row[this.random.int(row.length)]!;
    this.host.send(out, peer.name, { kind: 'neighbourQuery', level });
  }

  /** Every tick: lapsed pings are forgotten, and nodes that showed signs of life meanwhile pinged again. */
  expirePings(out: Out, nowMs: number): void {
    for (const [id, sentAtMs] of this.pendingPings) {
      // A neighbour's beacon stays pending until answered: that is how misses are counted.
      if (nowMs - sentAtMs > this.host.config.pingTimeoutMs && !this.host.table.get(id)) this.pendingPings.delete(id);
    }
    for (const [id, candidate] of this.revived) {
      if (this.pendingPings.has(id)) continue;
      this.revived.delete(id);
      this.learn(out, candidate, nowMs, true);
    }
  }
}
