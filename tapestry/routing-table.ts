/**
 * The routing table of one Tapestry node (Zhao et al., JSAC 2004, §3.1): 40 levels x 16 digits;
 * slot (l, d) holds up to `slotSize` nodes (primary + backups, c = 3 by default) whose ids share
 * exactly l leading digits with ours and have digit d at position l, sorted by measured round trip
 * (proximity neighbour selection, §3.2). Backpointers record who holds us, per level (shared
 * prefix length is symmetric, so a node that holds us at level l is at level l for us too).
 *
 * Next-hop choice is Tapestry's deterministic surrogate routing (§3.1.1): at level l look for the
 * wanted digit; if its slot is empty try digit+1, +2, ... (mod 16). Our own digit's slot always
 * counts as filled (by us), in which case routing moves on to level l+1 locally. With consistent
 * tables (a slot is empty only if no such node exists) every start node ends at the same root.
 */
import { assert } from '../core/assert.ts';
import { digitAt, digitBase, idDigits, sharedPrefixLength } from './id.ts';
import type { NodeRef, TapestryId } from './id.ts';

export interface Neighbour extends NodeRef {
  rttMs: number;
  /** Beacons sent since it last answered (failure detection). */
  beaconMisses: number;
  /** When it entered the table (a member held since long before is not joining now). */
  readonly addedAtMs: number;
}

export interface NextHop {
  readonly hop: Neighbour;
  /** The level the next node resumes at (the digits resolved so far). */
  readonly level: number;
  /** The whole slot the hop came from (hop first, then its backups). */
  readonly slot: readonly Neighbour[];
}

/** What changed when a candidate was offered to the table. */
export interface ConsiderResult {
  readonly inserted: boolean;
  /** A neighbour pushed out of a full slot by a closer one (it loses its backpointer). */
  readonly evicted: Neighbour | null;
}

export class RoutingTable {
  /** Bumped on every membership change; pointer maintenance compares it. */
  version = 0;
  private readonly slots: (Neighbour[] | undefined)[] = new Array(idDigits * digitBase);
  private readonly byId = new Map<TapestryId, Neighbour>();
  /** Per level: who holds us, and when their last beacon (ping) reached us. */
  private readonly backpointers: Map<TapestryId, { name: string; heardAtMs: number }>[] = [];
  private readonly selfDigits: number[] = [];
  /** Count of neighbours per level, so "anything at or above level l" is cheap. */
  private readonly levelCounts = new Array<number>(idDigits).fill(0);

  constructor(
    readonly self: NodeRef,
    readonly slotSize: number,
  ) {
    assert(slotSize >= 1 && slotSize <= 8, 'slot size is 1..8');
    for (let l = 0; l < idDigits; l++) {
      this.selfDigits.push(digitAt(self.id, l));
      this.backpointers.push(new Map());
    }
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: TapestryId): Neighbour | undefined {
    return this.byId.get(id);
  }

  neighbours(): IterableIterator<Neighbour> {
    return this.byId.values();
  }

  slot(level: number, digit: number): readonly Neighbour[] {
    return this.slots[level * digitBase + digit] ?? [];
  }

  /** Every neighbour at `level` (the nodes sharing exactly `level` digits with us). */
  row(level: number): Neighbour[] {
    const out: Neighbour[] = [];
    for (let d = 0; d < digitBase; d++) out.push(...this.slot(level, d));
    return out;
  }

  /** The `count` closest neighbours sharing at least `levelMin` digits with us. */
  closest(levelMin: number, count: number): Neighbour[] {
    const all: Neighbour[] = [];
    for (const n of this.byId.values()) if (sharedPrefixLength(n.id, this.self.id) >= levelMin) all.push(n);
    all.sort((a, b) => a.rttMs - b.rttMs);
    return all.slice(0, count);
  }

  /**
   * Offers a measured candidate. It enters its slot if the slot has room or it is closer than the
   * slot's farthest member; a known neighbour just gets its round trip updated and is re-sorted.
   * `nowMs` stamps a new entry (0, "long ago", for tables built by hand).
   */
  consider(ref: NodeRef, rttMs: number, nowMs = 0): ConsiderResult {
    if (ref.id === this.self.id) return { inserted: false, evicted: null };
    const known = this.byId.get(ref.id);
    const level = sharedPrefixLength(ref.id, this.self.id);
    const index = level * digitBase + digitAt(ref.id, level);
    const slot = (this.slots[index] ??= []);
    if (known) {
      known.rttMs = rttMs;
      known.beaconMisses = 0;
      slot.sort(byRtt);
      return { inserted: false, evicted: null };
    }
    let evicted: Neighbour | null = null;
    if (slot.length >= this.slotSize) {
      const worst = slot[slot.length - 1]!;
      if (worst.rttMs <= rttMs) return { inserted: false, evicted: null };
      slot.pop();
      this.byId.delete(worst.id);
      this.levelCounts[level]!--;
      evicted = worst;
    }
    const neighbour: Neighbour = { id: ref.id, name: ref.name, rttMs, beaconMisses: 0, addedAtMs: nowMs };
    slot.push(neighbour);
    slot.sort(byRtt);
    this.byId.set(ref.id, neighbour);
    this.levelCounts[level]!++;
    this.version++;
    return { inserted: true, evicted };
  }

  /** Removes a neighbour (failed or left); its backups move up. Returns its level, or -1. */
  remove(id: TapestryId): number {
    const known = this.byId.get(id);
    if (!known) return -1;
    const level = sharedPrefixLength(id, this.self.id);
    const slot = this.slots[level * digitBase + digitAt(id, level)]!;
    slot.splice(slot.indexOf(known), 1);
    this.byId.delete(id);
    this.levelCounts[level]!--;
    this.version++;
    return level;
  }

  /** Would this candidate enter the table if it turned out close enough? (Saves useless pings.) */
  hasRoomFor(id: TapestryId): boolean {
    if (id === this.self.id || this.byId.has(id)) return false;
    const level = sharedPrefixLength(id, this.self.id);
    return this.slot(level, digitAt(id, level)).length < this.slotSize;
  }

  addBackpointer(ref: NodeRef, nowMs: number): void {
    if (ref.id === this.self.id) return;
    this.backpointers[sharedPrefixLength(ref.id, this.self.id)]!.set(ref.id, { name: ref.name, heardAtMs: nowMs });
  }

  /** A ping from a backpointer is its beacon: it is alive. */
  heardFromBackpointer(id: TapestryId, nowMs: number): void {
    const known = this.backpointers[sharedPrefixLength(id, this.self.id)]?.get(id);
    if (known) known.heardAtMs = nowMs;
  }

  /**
   * Every backpointer counts as heard at `nowMs`: for a host that starts beacons only now (the
   * simulator's tick-less build), so silence is measured from when beacons could be heard.
   */
  heardFromAllBackpointers(nowMs: number): void {
    for (const level of this.backpointers) for (const b of level.values()) b.heardAtMs = nowMs;
  }

  /** Removes and returns backpointers whose beacons stopped before `silentSinceMs`. */
  takeSilentBackpointers(silentSinceMs: number): NodeRef[] {
    const out: NodeRef[] = [];
    for (const level of this.backpointers) {
      for (const [id, b] of level) {
        if (b.heardAtMs >= silentSinceMs) continue;
        level.delete(id);
        out.push({ id, name: b.name });
      }
    }
    return out;
  }

  removeBackpointer(id: TapestryId): void {
    if (id === this.self.id) return;
    this.backpointers[sharedPrefixLength(id, this.self.id)]!.delete(id);
  }

  backpointersAt(level: number): NodeRef[] {
    const out: NodeRef[] = [];
    for (const [id, b] of this.backpointers[level]!) out.push({ id, name: b.name });
    return out;
  }

  allBackpointers(): NodeRef[] {
    const out: NodeRef[] = [];
    for (let l = 0; l < idDigits; l++) out.push(...this.backpointersAt(l));
    return out;
  }

  /**
   * The next hop toward `target` resuming at `levelFrom`, or null when we are its root.
   * With `excludeSelf` it answers "where would this go if we were gone" (graceful leave hands
   * pointers to the next root): our own digit counts as filled only if some other node shares
   * that longer prefix with us. With `skip`, that node's entry is passed over as if absent ("where
   * would this go without the node of that id": a join's root is the joiner's root without it).
   */
  nextHop(target: TapestryId, levelFrom: number, excludeSelf = false, skip?: TapestryId): NextHop | null {
    for (let level = levelFrom; level < idDigits; level++) {
      const wanted = digitAt(target, level);
      const own = this.selfDigits[level]!;
      let continueHere = false;
      for (let k = 0; k < digitBase; k++) {
        const d = (wanted + k) & (digitBase - 1);
        if (d === own) {
          if (!excludeSelf || this.anyAbove(level)) {
            continueHere = true;
            break;
          }
          continue;
        }
        const stored = this.slots[level * digitBase + d];
        const slot = skip === undefined || !stored ? stored : stored.filter((n) => n.id !== skip);
        if (slot && slot.length > 0) return { hop: answering(slot), level: level + 1, slot };
      }
      if (!continueHere) return null;
    }
    return null;
  }

  private anyAbove(level: number): boolean {
    for (let l = level + 1; l < idDigits; l++) if (this.levelCounts[l]! > 0) return true;
    return false;
  }
}

/**
 * The closest slot member that answered its last beacon: a neighbour that just went silent is
 * routed around through its backup (same prefix, so the root does not change) while beacons
 * decide whether it failed. With every member silent, the primary is still the best guess.
 */
function answering(slot: readonly Neighbour[]): Neighbour {
  for (const n of slot) if (n.beaconMisses === 0) return n;
  return slot[0]!;
}

function byRtt(a: Neighbour, b: Neighbour): number {
  return a.rttMs - b.rttMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
