/**
 * Fragment placement: rendezvous (highest-random-weight) hashing of a block's BGUID over the
 * configured archive servers. Every party (archiver, repairer, restore tool) computes the same
 * ranking from the BGUID and the server list alone, so no placement table has to be stored,
 * replicated or trusted.
 *
 * A block's n fragments live on the first n servers of its ranking (fragment i on rank i when the
 * block is first archived). Repair puts a lost fragment on the next ranked server that holds
 * nothing of the block, so holders stay a prefix of the ranking with holes where servers failed,
 * and a reader that asks servers in ranking order finds them. Rendezvous hashing keeps the
 * relative order of two servers whatever else joins or leaves, so adding a server changes the
 * holder set of a block by at most one server (it enters the top n with probability n / (N + 1)),
 * and removing one moves only the fragments it held.
 *
 * The score is a fast integer mix, not a cryptographic hash: placement needs spread and
 * determinism, not unpredictability (BGUIDs are already uniform SHA-256 outputs), and the repair
 * simulation ranks millions of (block, server) pairs.
 */
import { assert } from '../core/assert.ts';

/** A server list prepared once: per-server seeds for the score. */
export interface ServerRing {
  readonly servers: readonly string[];
  readonly seedsLow: Uint32Array;
  readonly seedsHigh: Uint32Array;
}

function fnv1a32(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

export function serverRingOf(servers: readonly string[]): ServerRing {
  assert(servers.length > 0, 'placement needs at least one archive server');
  assert(new Set(servers).size === servers.length, 'archive server names must be distinct');
  const seedsLow = new Uint32Array(servers.length);
  const seedsHigh = new Uint32Array(servers.length);
  servers.forEach((s, i) => {
    seedsLow[i] = fnv1a32(s, 0x811c9dc5);
    seedsHigh[i] = fnv1a32(s, 0x9e3779b9);
  });
  return { servers: [...servers], seedsLow, seedsHigh };
}

function wordAt(bguid: Uint8Array, at: number): number {
  return ((bguid[at]! << 24) | (bguid[at + 1]! << 16) | (bguid[at + 2]! << 8) | bguid[at + 3]!) >>> 0;
}

/** The server's weight for this block: 53 bits so ties essentially never happen. */
function scoreOf(w0: number, w1: number, w2: number, w3: number, low: number, high: number): number {
  const a = fmix32(fmix32(w0 ^ low) ^ w1);
  const b = fmix32(fmix32(w2 ^ high) ^ w3 ^ a);
  return (a >>> 11) * 2 ** 32 + b;
}

/**
 * The rank of server `serverIndex` in the block's ranking when it is below `limit`, else -1.
 * O(N) without sorting: what the repair model uses to find blocks a given server holds.
 */
export function rankBelowOf(ring: ServerRing, bguid: Uint8Array, serverIndex: number, limit: number): number {
  assert(bguid.length >= 16, 'placement wants a BGUID of at least 16 bytes');
  const w0 = wordAt(bguid, 0);
  const w1 = wordAt(bguid, 4);
  const w2 = wordAt(bguid, 8);
  const w3 = wordAt(bguid, 12);
  const mine = scoreOf(w0, w1, w2, w3, ring.seedsLow[serverIndex]!, ring.seedsHigh[serverIndex]!);
  const name = ring.servers[serverIndex]!;
  let above = 0;
  for (let i = 0; i < ring.servers.length && above < limit; i++) {
    if (i === serverIndex) continue;
    const score = scoreOf(w0, w1, w2, w3, ring.seedsLow[i]!, ring.seedsHigh[i]!);
    if (score > mine || (score === mine && ring.servers[i]! < name)) above++;
  }
  return above < limit ? above : -1;
}

/** Indices into `ring.servers`, best first: the block's rendezvous ranking. */
export function rankingOf(ring: ServerRing, bguid: Uint8Array): number[] {
  assert(bguid.length >= 16, 'placement wants a BGUID of at least 16 bytes');
  const w0 = wordAt(bguid, 0);
  const w1 = wordAt(bguid, 4);
  const w2 = wordAt(bguid, 8);
  const w3 = wordAt(bguid, 12);
  const count = ring.servers.length;
  const scores = new Float64Array(count);
  const order: number[] = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    scores[i] = scoreOf(w0, w1, w2, w3, ring.seedsLow[i]!, ring.seedsHigh[i]!);
    order[i] = i;
  }
  order.sort((x, y) => scores[y]! - scores[x]! || (ring.servers[x]! < ring.servers[y]! ? -1 : 1));
  return order;
}

/** Server names in ranking order. */
export function rankedServersOf(ring: ServerRing, bguid: Uint8Array): string[] {
  return rankingOf(ring, bguid).map((i) => ring.servers[i]!);
}

/**
 * The first `count` servers of the block's ranking: where its fragments go at archive time
 * (fragment i on element i). With fewer servers than fragments the list wraps, so a server holds
 * two fragments only when there is no other choice.
 */
export function placementOf(ring: ServerRing, bguid: Uint8Array, count: number): string[] {
  assert(Number.isSafeInteger(count) && count > 0, 'placement count must be a positive integer');
  const ranked = rankedServersOf(ring, bguid);
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(ranked[i % ranked.length]!);
  return out;
}

/**
 * Where a lost fragment of a block goes: the best-ranked server that is usable (alive, not
 * excluded) and holds nothing of the block yet; when every usable server already holds a fragment,
 * the usable one holding the fewest. Undefined when no server is usable.
 */
export function repairTargetOf(
  ring: ServerRing,
  bguid: Uint8Array,
  usable: (server: string) => boolean,
  heldCountOf: (server: string) => number,
): string | undefined {
  let best: string | undefined;
  let bestHeld = Infinity;
  for (const server of rankedServersOf(ring, bguid)) {
    if (!usable(server)) continue;
    const held = heldCountOf(server);
    if (held === 0) return server;
    if (held < bestHeld) {
      best = server;
      bestHeld = held;
    }
  }
  return best;
}
