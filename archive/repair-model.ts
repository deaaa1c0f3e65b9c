/**
 * A flow model of re-protecting one lost archive server's fragments, to answer "how long until
 * full redundancy again, and how does that change with the number of servers?" (Flat Datacenter
 * Storage, OSDI 2012, section 3.3: because tracts are spread over all disks, every disk takes part
 * in recovery and recovery time falls as disks are added).
 *
 * For each lost fragment (placed with the real rendezvous placement), the repair coordinator (the
 * best-ranked live holder, as in archive/repairer.ts) reads k fragments from k live holders (its
 * own from disk), decodes, and writes the regenerated fragment to the repair target (the next
 * ranked server holding nothing of the block). Every byte is charged to the disks, links and CPUs
 * it crosses; servers work in parallel and each resource streams at its bandwidth, so a server's
 * busy time is its most loaded resource and the repair time is the busiest server's. This is a
 * lower bound that ignores queueing and stragglers (FDS measured within ~2x of it).
 *
 * The baseline, measured in the same model, is the classic rebuild: one replacement server
 * fetches k fragments per lost block and writes every regenerated fragment to its own disk.
 */
import { assert } from '../core/assert.ts';
import type { RandomSource } from '../core/machine.ts';
import { rankBelowOf, rankingOf, serverRingOf } from './placement.ts';

export interface RepairModelOptions {
  serverCount: number;
  k: number;
  m: number;
  /** Bytes of fragments the lost server held. */
  lostBytes: number;
  /** Lost fragments actually placed; each stands for lostBytes / sampleCount bytes. */
  sampleCount: number;
  diskBytesPerSecond: number;
  /** Per direction (full-duplex links). */
  networkBytesPerSecond: number;
  /** Decode throughput of one server (bytes of input fragments per second). */
  decodeBytesPerSecond: number;
}

export interface RepairModelResult {
  serverCount: number;
  /** Seconds until every lost fragment is regenerated, all servers repairing in parallel. */
  spreadSeconds: number;
  /** Seconds for the one-replacement-server rebuild. */
  singleSeconds: number;
  /** Which resource bounds the busiest server in the spread repair. */
  bottleneck: 'disk' | 'network-in' | 'network-out' | 'decode';
  /** Servers that did coordinator work (decoded at least one block). */
  coordinatorCount: number;
  /** Aggregate repair throughput (lost bytes per second) of the spread repair. */
  spreadBytesPerSecond: number;
}

interface Load {
  disk: number;
  netIn: number;
  netOut: number;
  decode: number;
}

const lostServer = 0;

/** Ranks of one block whose top n contains the lost server, found by rejection sampling. */
function sampleLostBlock(ring: ReturnType<typeof serverRingOf>, n: number, random: RandomSource): number[] {
  for (;;) {
    const bguid = random.bytes(32);
    if (rankBelowOf(ring, bguid, lostServer, n) >= 0) return rankingOf(ring, bguid);
  }
}

function busySeconds(load: Load, o: RepairModelOptions): { seconds: number; bottleneck: RepairModelResult['bottleneck'] } {
  const parts: [RepairModelResult['bottleneck'], number][] = [
    ['disk', load.disk / o.diskBytesPerSecond],
    ['network-in', load.netIn / o.networkBytesPerSecond],
    ['network-out', load.netOut / o.networkBytesPerSecond],
    ['decode', load.decode / o.decodeBytesPerSecond],
  ];
  let best = parts[0]!;
  for (const p of parts) if (p[1] > best[1]) best = p;
  return { seconds: best[1], bottleneck: best[0] };
}

export function modelRepair(options: RepairModelOptions, random: RandomSource): RepairModelResult {
  const { serverCount, k, m, sampleCount } = options;
  const n = k + m;
  assert(serverCount >= n, 'the model needs at least k + m servers');
  assert(sampleCount > 0 && options.lostBytes > 0, 'the model needs lost fragments');
  const ring = serverRingOf(Array.from({ length: serverCount }, (_, i) => `archive-${i}`));
  const fragmentBytes = options.lostBytes / sampleCount;
  const loads: Load[] = Array.from({ length: serverCount }, () => ({ disk: 0, netIn: 0, netOut: 0, decode: 0 }));
  const single: Load = { disk: 0, netIn: 0, netOut: 0, decode: 0 };
  const coordinators = new Set<number>();
  for (let s = 0; s < sampleCount; s++) {
    const ranking = sampleLostBlock(ring, n, random);
    const holders = ranking.slice(0, n).filter((server) => server !== lostServer);
    const coordinator = holders[0]!;
    // With no spare server the fragment goes back onto a holder (the coordinator: repairTargetOf's rule).
    const target = ranking[n] ?? coordinator;
    coordinators.add(coordinator);
    // The coordinator reads its own fragment and k-1 others (the next-ranked holders).
    for (const source of holders.slice(0, k)) {
      loads[source]!.disk += fragmentBytes;
      if (source !== coordinator) {
        loads[source]!.netOut += fragmentBytes;
        loads[coordinator]!.netIn += fragmentBytes;
      }
      // The single replacement server pulls the same k fragments over the network.
      single.netIn += fragmentBytes;
    }
    loads[coordinator]!.decode += k * fragmentBytes;
    if (target !== coordinator) {
      loads[coordinator]!.netOut += fragmentBytes;
      loads[target]!.netIn += fragmentBytes;
    }
    loads[target]!.disk += fragmentBytes;
    single.decode += k * fragmentBytes;
    single.disk += fragmentBytes;
  }
  let spread = { seconds: 0, bottleneck: 'disk' as RepairModelResult['bottleneck'] };
  for (const load of loads) {
    const b = busySeconds(load, options);
    if (b.seconds > spread.seconds) spread = b;
  }
  return {
    serverCount,
    spreadSeconds: spread.seconds,
    singleSeconds: busySeconds(single, options).seconds,
    bottleneck: spread.bottleneck,
    coordinatorCount: coordinators.size,
    spreadBytesPerSecond: options.lostBytes / spread.seconds,
  };
}
