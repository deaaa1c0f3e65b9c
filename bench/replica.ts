/**
 * `npm run bench -- replica [--quick] [--processes-only]`: the dissemination tree and secondary-replica reads.
 *
 * 0. 4 KiB reads against real node processes on loopback (bench/replica-processes.ts): from a
 *    secondary, from a ring server, decoded from the archive, through the SDK, and a local file.
 * 1. 4 KiB read latency from an in-process secondary core: request and reply through the wire
 *    codec, the member's serveRead, and the reader's full verification (certificate, every block
 *    hash up to the VGUID); with the certificate verdict cached (a reader keeps verified
 *    certificates) and cold (fake and real BLS signatures). Baseline in the same run: a 4 KiB
 *    pread from a local file (page cache) and open+read+close.
 * 2. A member's cost to verify and apply one pushed update (re-execution + certificate).
 * 3. Time for an update to reach all of 50 replicas in simulation (1–10 ms links) against tree
 *    depth (fan-out 1..50), and against replica count at fan-out 4.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemoryKvStore } from '../core/store.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { BlockCache } from '../replica/block-cache.ts';
import { CachingTrust } from '../replica/caching-trust.ts';
import { ConfigLocator } from '../replica/config-locator.ts';
import { decodeTreeMessage, encodeTreeMessage, type TreeMessage } from '../replica/messages.ts';
import { ObjectCopy } from '../replica/object-copy.ts';
import { SecondaryReplica } from '../replica/secondary.ts';
import type { ReplicaTrust } from '../replica/types.ts';
import { verifyReadReply } from '../replica/verify-read.ts';
import { rootBlockOf } from '../replica/version-walk.ts';
import { Prng } from '../sim/prng.ts';
import { TestRingSigner, buildHistory, makeHeartbeat, testObject, type HistoryVersion, type TestObject } from '../test/replica/test-ring.ts';
import { TreeSim } from '../test/replica/tree-harness.ts';
import { startLoopbackCluster } from '../test/replica/loopback-cluster.ts';
import { machineDescription } from './_machine.ts';
import { processReads } from './replica-processes.ts';

const crypto = nodeCrypto;
const readBytes = 4096;

interface LatencyRow {
  path: string;
  p50Us: number;
  p99Us: number;
  samples: number;
  note: string;
}

function percentile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function time(path: string, samples: number, fn: (i: number) => void, note = '', warmups = Math.min(50, samples)): LatencyRow {
  for (let i = 0; i < warmups; i++) fn(i);
  const us: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    fn(i);
    us.push((performance.now() - t0) * 1000);
  }
  us.sort((a, b) => a - b);
  return { path, p50Us: round(percentile(us, 0.5)), p99Us: round(percentile(us, 0.99)), samples, note };
}

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** A member that followed the whole history of a `sizeBytes` object made of `blockBytes` blocks. */
function member(object: TestObject, signer: TestRingSigner, history: HistoryVersion[], trust: ReplicaTrust): SecondaryReplica {
  const m = new SecondaryReplica(
    { nodeId: 'replica', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust, executor: object.executor, locator: new ConfigLocator(['ring-0']), cacheBytesMax: 64 << 20, subscriptions: [object.aguid] },
  );
  m.onTick(0);
  m.onMessage('ring-0', { type: 'attach-ok', aguid: object.aguid, path: ['ring-0'], nextVersion: history.length }, 1);
  for (let i = 0; i < history.length; i += 8) {
    m.onMessage('ring-0', { type: 'push', aguid: object.aguid, entries: history.slice(i, i + 8).map((h) => h.entry) }, 2);
  }
  const heartbeat = makeHeartbeat(crypto, signer, object.aguid, history[history.length - 1]!, 10, 1 << 30);
  m.onMessage('ring-0', { type: 'heartbeat', aguid: object.aguid, heartbeat }, 3);
  return m;
}

/** One read the way a client would do it, minus the socket: encode, serve, encode, decode, verify. */
function readOnce(m: SecondaryReplica, object: TestObject, readerTrust: ReplicaTrust, offset: number, requestId: number): void {
  const request: Extract<TreeMessage, { type: 'read' }> = { type: 'read', requestId, aguid: object.aguid, version: null, offset, length: readBytes, maxAgeMs: 0 };
  const effects = m.onMessage('client', decodeTreeMessage(encodeTreeMessage(request)), 20);
  const sent = effects.find((e) => e.kind === 'send');
  if (!sent || sent.kind !== 'send') throw new Error('member sent no reply');
  const reply = decodeTreeMessage(encodeTreeMessage(sent.message));
  if (reply.type !== 'read-reply') throw new Error('not a read reply');
  const check = verifyReadReply({ crypto, trust: readerTrust, executor: object.executor }, request, reply, 20);
  if (!check.ok || check.read.bytes.length !== readBytes) throw new Error(`read failed: ${check.ok ? 'short' : check.reason}`);
}

function readLatencies(quick: boolean): LatencyRow[] {
  const rows: LatencyRow[] = [];
  const samples = quick ? 500 : 3000;
  const objectBytes = 4 << 20;
  const random = new Prng(3);
  for (const blockBytes of [8 * 1024, 64 * 1024]) {
    const signer = new TestRingSigner(crypto, 'fake', 8);
    const object = testObject(crypto, 'core', 8, blockBytes);
    const history = buildHistory(crypto, signer, object, { versionCount: 17, appendBytes: objectBytes / 16, seed: 8 });
    const m = member(object, signer, history, new CachingTrust(signer.trust()));
    const warm = new CachingTrust(signer.trust());
    const sizeBytes = rootBlockOf(m.cache, history[history.length - 1]!.vguid)!.sizeBytes;
    const offsets = Array.from({ length: samples + 50 }, () => random.int(sizeBytes - readBytes));
    rows.push(time(`secondary, ${blockBytes / 1024} KiB blocks, certificate cached`, samples, (i) => readOnce(m, object, warm, offsets[i % offsets.length]!, i), 'codec + serve + re-hash path to VGUID'));
    rows.push(time(`secondary, ${blockBytes / 1024} KiB blocks, fake certificate verified`, samples, (i) => readOnce(m, object, signer.trust(), offsets[i % offsets.length]!, i), 'as above + Merkle path + keyed-hash "signature"'));
  }
  // Cold read with a real BLS certificate: the first read of each version pays one pairing check.
  const bls = new TestRingSigner(crypto, 'bls', 9);
  const object = testObject(crypto, 'core', 9, 8 * 1024);
  const history = buildHistory(crypto, bls, object, { versionCount: 4, appendBytes: 64 * 1024, seed: 9 });
  const m = member(object, bls, history, new CachingTrust(bls.trust()));
  rows.push(time('secondary, 8 KiB blocks, real BLS certificate verified', quick ? 5 : 20, (i) => readOnce(m, object, bls.trust(), (i * 4096) % (200 * 1024), i), 'first read of a version: one BLS pairing check'));
  // Baseline: the same 4 KiB from a local file.
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-replica-'));
  try {
    const file = join(dir, 'object.bin');
    writeFileSync(file, new Prng(4).bytes(objectBytes));
    const buffer = new Uint8Array(readBytes);
    const fd = openSync(file, 'r');
    const offsets = Array.from({ length: samples + 50 }, () => random.int(objectBytes - readBytes));
    rows.push(time('local file, pread of an open file', samples, (i) => readSync(fd, buffer, 0, readBytes, offsets[i % offsets.length]!), 'page cache, no verification'));
    closeSync(fd);
    rows.push(
      time('local file, open + pread + close', samples, (i) => {
        const f = openSync(file, 'r');
        readSync(f, buffer, 0, readBytes, offsets[i % offsets.length]!);
        closeSync(f);
      }, 'page cache, no verification'),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The same read through the real runtime: authenticated ws on 127.0.0.1, MachineHost, full verification. */
async function loopbackReads(quick: boolean): Promise<LatencyRow[]> {
  const signer = new TestRingSigner(crypto, 'fake', 11);
  const object = testObject(crypto, 'core', 11, 8 * 1024);
  const history = buildHistory(crypto, signer, object, { versionCount: 17, appendBytes: (4 << 20) / 16, seed: 11 });
  const cluster = await startLoopbackCluster(signer, object);
  try {
    for (const h of history) cluster.root.publish(object.aguid, h.version, h.entry);
    const last = history[history.length - 1]!;
    cluster.root.publishHeartbeat(object.aguid, makeHeartbeat(crypto, signer, object.aguid, last, Date.now(), 1 << 20));
    for (let i = 0; i < 1000 && cluster.replica.copyOf(object.aguid)?.head?.version !== last.version; i++) await new Promise((r) => setTimeout(r, 20));
    const copy = cluster.replica.copyOf(object.aguid);
    if (copy?.head?.version !== last.version) throw new Error('the secondary did not catch up');
    const sizeBytes = rootBlockOf(cluster.replica.cache, last.vguid)!.sizeBytes;
    const trust = new CachingTrust(signer.trust());
    const random = new Prng(12);
    const samples = quick ? 300 : 2000;
    const us: number[] = [];
    for (let i = 0; i < samples + 50; i++) {
      const t0 = performance.now();
      const { request, reply } = await cluster.read({ aguid: object.aguid, version: null, offset: random.int(sizeBytes - readBytes), length: readBytes, maxAgeMs: 600_000 });
      const check = verifyReadReply({ crypto, trust, executor: object.executor }, request, reply, Date.now());
      if (!check.ok) throw new Error(`loopback read failed: ${check.reason}`);
      if (i >= 50) us.push((performance.now() - t0) * 1000);
    }
    us.sort((a, b) => a - b);
    return [{ path: 'secondary over loopback ws (8 KiB blocks, maxAgeMs, verified)', p50Us: round(percentile(us, 0.5)), p99Us: round(percentile(us, 0.99)), samples, note: 'real transport + MachineHost + codec + verify' }];
  } finally {
    await cluster.stop();
  }
}

function applyCosts(quick: boolean): LatencyRow[] {
  const rows: LatencyRow[] = [];
  for (const kind of ['fake', 'bls'] as const) {
    const signer = new TestRingSigner(crypto, kind, 10);
    const object = testObject(crypto, 'core', 10, 64 * 1024);
    const count = kind === 'bls' ? (quick ? 4 : 10) : quick ? 100 : 400;
    const history = buildHistory(crypto, signer, object, { versionCount: count + 1, appendBytes: 4096, seed: 10, batchSize: 1 });
    const copy = new ObjectCopy(object.aguid, signer.trust(), object.executor, new BlockCache(crypto, 64 << 20), { pendingEntriesMax: 16, pendingBytesMax: 1 << 30, logEntriesMax: 1000, logBytesMax: 1 << 30 }, () => {});
    copy.offer(history[0]!.entry, 'p');
    let next = 1;
    const warmups = kind === 'bls' ? 1 : 20;
    const row = time(
      `verify + apply one 4 KiB append, ${kind === 'bls' ? 'real BLS' : 'fake'} certificate`,
      count - warmups,
      () => {
        const result = copy.offer(history[next++]!.entry, 'p');
        if (result.kind !== 'accepted') throw new Error('update not accepted');
      },
      '',
      warmups,
    );
    rows.push({ ...row, note: 'per member per update: certificate + digest + applyUpdate + pin walk' });
  }
  return rows;
}

interface TreeRow {
  replicas: number;
  fanOutMax: number;
  depthMax: number;
  reachAllP50Ms: number;
  reachAllMaxMs: number;
  msPerLevel: number;
}

function treeLatency(replicas: number, fanOutMax: number, seed: number): TreeRow {
  const versionCount = 12;
  const world = new TreeSim({ seed, replicaCount: replicas, fanOutMax, versionCount, model: 'core', updateIntervalMs: 200, startMs: 500 });
  if (!world.runToConvergence(600_000)) throw new Error(`no convergence: ${replicas} replicas, fan-out ${fanOutMax}`);
  const latencies = Array.from({ length: versionCount - 4 }, (_, i) => world.latencyToAllMs(i + 4)).sort((a, b) => a - b);
  const depthMax = Math.max(...world.replicaIds.map((id) => world.depthOf(id)));
  const p50 = percentile(latencies, 0.5);
  return { replicas, fanOutMax, depthMax, reachAllP50Ms: round(p50), reachAllMaxMs: round(latencies[latencies.length - 1]!), msPerLevel: round(p50 / depthMax, 2) };
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const machine = machineDescription();
  console.log(`replica benchmark (${quick ? 'quick' : 'full'}); load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const processes = await processReads(quick);
  console.log('\n4 KiB reads against real node processes on loopback (local topology), µs per read');
  console.table(processes);
  if (args.includes('--processes-only')) {
    console.log('machine', machine);
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'replica-processes.json'), JSON.stringify({ machine, quick, loadavg: loadavg(), processes }, null, 2));
    console.log(`wrote ${join(out, 'replica-processes.json')}`);
    return;
  }

  const reads = [...(await loopbackReads(quick)), ...readLatencies(quick)];
  console.log('\n4 KiB reads (µs)');
  console.table(reads);
  const applies = applyCosts(quick);
  console.log('\nmember cost per pushed update (µs)');
  console.table(applies);

  const byDepth = (quick ? [2, 4, 50] : [2, 3, 4, 8, 16, 50]).map((f) => treeLatency(50, f, 100 + f));
  console.log('\ntime for an update to reach all 50 replicas (simulated 1–10 ms links) vs tree depth');
  console.table(byDepth);
  const byCount = (quick ? [10, 50] : [10, 25, 50, 100, 200]).map((n) => treeLatency(n, 4, 200 + n));
  console.log('\nsame at fan-out 4, vs replica count');
  console.table(byCount);
  console.log('machine', machine);

  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'replica.json'), JSON.stringify({ machine, quick, loadavg: loadavg(), processes, reads, applies, byDepth, byCount }, null, 2));
  console.log(`wrote ${join(out, 'replica.json')}`);
}
