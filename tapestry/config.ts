/** Tunables of a Tapestry node, with the defaults the simulations and the runtime use. */
import { checkArgument } from '../core/errors.ts';

export interface TapestryConfig {
  /** c: nodes per routing slot, primary plus backups, sorted by round trip. */
  readonly slotSize: number;
  /** Soft-state lifetime of an object pointer. */
  readonly pointerTtlMs: number;
  /** A server re-sends publish for its objects this often (well under pointerTtlMs). */
  readonly republishIntervalMs: number;
  /**
   * How far members' clocks may disagree: a pointer is aged from the time its server signed it
   * (pointer-auth.ts), and one stamped further than this in the future is dropped.
   */
  readonly clockSkewMaxMs: number;
  /** Pings to every neighbour this often; 0 turns beacons (and failure detection) off. */
  readonly beaconIntervalMs: number;
  /** A neighbour that misses this many beacons in a row is declared failed and replaced. */
  readonly beaconMissesMax: number;
  /** A probe ping to a non-neighbour is forgotten after this long. */
  readonly pingTimeoutMs: number;
  /** route/locate requests not answered within this report failure. */
  readonly requestTimeoutMs: number;
  /** Joiner side: longest wait for the root's joinDone and for each nearest-neighbour step. */
  readonly joinStepTimeoutMs: number;
  /** Multicast member: longest wait for its subtree's acks before acking anyway. */
  readonly multicastTimeoutMs: number;
  /** k: how many closest nodes the nearest-neighbour search queries per level. */
  readonly nearestCount: number;
  /** Anti-entropy: every interval ask one neighbour for one row (0 = off). */
  readonly maintenanceIntervalMs: number;
  /** A node measured this recently is not pinged again just because it contacted us. */
  readonly remeasureIntervalMs: number;
  /** Also leave pointers at each publish hop's backups (§3.3); 0 = off, 1 = on. */
  readonly publishToBackups: number;
  /**
   * Also leave pointers at each publish hop's this-many closest neighbours that share the prefix
   * resolved so far ("publishing to nearest neighbours", §3.3); 0 = off.
   */
  readonly publishToNearestCount: number;
  /**
   * Pointers a node stores (and, separately, withdrawals it remembers). ~900 bytes each; when full,
   * a server under its quota (pointerShares) takes the oldest of the server holding the most, if
   * that one is over its quota, else the newcomer is refused (pointer-store.ts).
   */
  readonly pointersMax: number;
  /**
   * A full store guarantees each server pointersMax / pointerShares of its pointers: only a server
   * under that evicts, and only from one over it (pointer-store.ts).
   */
  readonly pointerShares: number;
  readonly pendingPingsMax: number;
  readonly pendingRequestsMax: number;
}

export const defaultTapestryConfig: TapestryConfig = {
  slotSize: 3,
  pointerTtlMs: 90_000,
  republishIntervalMs: 30_000,
  clockSkewMaxMs: 10_000,
  beaconIntervalMs: 5_000,
  beaconMissesMax: 3,
  pingTimeoutMs: 20_000,
  requestTimeoutMs: 10_000,
  joinStepTimeoutMs: 4_000,
  multicastTimeoutMs: 8_000,
  nearestCount: 8,
  maintenanceIntervalMs: 10_000,
  remeasureIntervalMs: 60_000,
  publishToBackups: 1,
  publishToNearestCount: 4,
  pointersMax: 100_000,
  pointerShares: 16,
  pendingPingsMax: 4_096,
  pendingRequestsMax: 65_536,
};

/** Merges overrides onto the defaults and checks ranges (InvalidArgumentError naming the field). */
export function tapestryConfig(overrides: Partial<TapestryConfig> = {}): TapestryConfig {
  const c = { ...defaultTapestryConfig, ...overrides };
  for (const [key, value] of Object.entries(c)) {
    checkArgument(Number.isSafeInteger(value) && value >= 0, `config.${key}`, 'a non-negative integer');
  }
  checkArgument(c.slotSize >= 1 && c.slotSize <= 8, 'config.slotSize', '1..8');
  checkArgument(c.nearestCount >= 1, 'config.nearestCount', 'at least 1');
  checkArgument(c.republishIntervalMs > 0 && c.republishIntervalMs < c.pointerTtlMs, 'config.republishIntervalMs', 'positive and below pointerTtlMs');
  checkArgument(c.beaconMissesMax >= 1, 'config.beaconMissesMax', 'at least 1');
  checkArgument(c.pointerShares >= 1, 'config.pointerShares', 'at least 1');
  return c;
}
