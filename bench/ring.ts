/**
 * `npm run bench -- ring [--quick]`: the inner ring alone, in one process. Four replicas (f = 1)
 * with real crypto (node:crypto ed25519, real threshold BLS12-381 certificates) and real
 * persistence (one lmdb environment per replica, fsync'd group commit through runtime/machine-host.ts,
 * the production host), joined by an in-memory transport that still encodes and decodes every frame.
 * Clients are ring/client.ts cores executing Pond updates through the object service.
 *
 * Measures: 4 KiB update latency (f+1 replies) p50/p99 and throughput at 1, 16 and 256 concurrent
 * clients; certificate-available latency; MB/s for 2 MiB updates (blocks pushed to every replica
 * off the agreement path, then one ordered update naming them); a per-phase breakdown like Pond's.
 * Baselines from the same run: one fsync'd 4 KiB lmdb write, ed25519 sign/verify, BLS share sign.
 * Everything shares one thread, so throughput here is bounded by the sum of all four replicas' CPU.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aguidOf, signerOf, type Signer } from '../core/crypto.ts';
import type { Effect } from '../core/machine.ts';
import { MemoryKvStore } from '../core/store.ts';
import { dealRingKey } from '../core/threshold/dealer.ts';
import { hashMessage } from '../core/threshold/points.ts';
import { RingKeyVerifier, signShare } from '../core/threshold/signing.ts';
import { encodeUpdate, decodeUpdate } from '../core/update/update-codec.ts';
import { signUpdate, verifyUpdateSignature } from '../core/update/update-signature.ts';
import type { Clause } from '../core/update/update.ts';
import { bguidOf } from '../core/version/block.ts';
import { blsCertificateSigner, blsCertificateVerifier, HashedCache } from '../ring/bls-certificate-signer.ts';
import { fakeCertificateSigner, fakeCertificateVerifier, type CertificateSigner } from '../ring/certificate-signer.ts';
import { RingClient } from '../ring/client.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../ring/codec.ts';
import type { RingMember } from '../ring/config.ts';
import { KvBlockStore } from '../ring/kv-block-store.ts';
import type { ClientRequest, RingMessage } from '../ring/messages.ts';
import { ObjectService } from '../ring/object-service.ts';
import type { RingOutput } from '../ring/outputs.ts';
import { Replica } from '../ring/replica.ts';
import { signMessage, verifyMessage } from '../ring/signing.ts';
import { CertificateThread } from '../runtime/certificate-thread.ts';
import { LmdbKvStore } from '../runtime/lmdb-kv-store.ts';
import { silentLogger } from '../runtime/log.ts';
import { MachineHost } from '../runtime/machine-host.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import type { Transport } from '../runtime/transport.ts';
import { Prng } from '../sim/prng.ts';
import { useMclBls } from '../runtime/mcl-bls.ts';
import { blsEngine } from '../core/threshold/accelerator.ts';
import { machineDescription } from './_machine.ts';

/**
 * Commits and replies count on their channel (Replica/ClientConfig.channelIntegrity) as in a
 * cluster, whose transport tags every frame: replies go unsigned. `--no-channel-integrity` (alias
 * `--check-every-commit`) turns that off: every commit's signature checked on arrival and every
 * reply signed and checked, as over bare connections. Passed to replica worker threads through
 * the environment.
 */
const noChannelIntegrityEnv = 'OCEANSTORE_BENCH_NO_CHANNEL_INTEGRITY';

/** ed25519 operations in this thread (all four replicas and the clients, in the one-thread rings). */
const cryptoCalls = { verifies: 0, signs: 0 };
const crypto: typeof nodeCrypto = {
  ...nodeCrypto,
  ed25519Verify: (publicKey, message, signature) => (cryptoCalls.verifies++, nodeCrypto.ed25519Verify(publicKey, message, signature)),
  ed25519Sign: (secretKey, message) => (cryptoCalls.signs++, nodeCrypto.ed25519Sign(secretKey, message)),
};
const ringId = new Uint8Array(32).fill(1);
const channel = 1;

/** Frames between in-process nodes, delivered on the next macrotask (like a socket would). */
class MemoryBus {
  private readonly handlers = new Map<string, (from: string, frame: Uint8Array) => void>();
  private readonly workers = new Map<string, Worker>();
  frames = 0;
  bytes = 0;

  transportFor(name: string): Transport {
    const bus = this;
    return {
      onFrame: (handler: (from: string, frame: Uint8Array) => void) => bus.handlers.set(name, handler),
      send: (to: string, frame: Uint8Array) => bus.deliver(name, to, frame),
    } as unknown as Transport;
  }

  deliver(from: string, to: string, frame: Uint8Array): void {
    (globalThis as { __benchTrace?: (f: string, t: string, b: Uint8Array) => void }).__benchTrace?.(from, to, frame);
    this.frames++;
    this.bytes += frame.length;
    const worker = this.workers.get(to);
    if (worker) worker.postMessage({ kind: 'frame', from, frame });
    else setImmediate(() => this.handlers.get(to)?.(from, frame));
  }

  attachWorker(name: string, worker: Worker): void {
    this.workers.set(name, worker);
    worker.on('message', (m: { kind: string; from: string; to: string; frame: Uint8Array }) => {
      if (m.kind === 'frame') this.deliver(m.from, m.to, m.frame);
    });
  }
}

interface PhaseTimers {
  applyMs: number[];
  signMs: number[];
  combineMs: number[];
}

function timedService(service: ObjectService, timers: PhaseTimers): ObjectService {
  const execute = service.execute.bind(service);
  service.execute = (clientKey, operation, context) => {
    const t = performance.now();
    const out = execute(clientKey, operation, context);
    timers.applyMs.push(performance.now() - t);
    return out;
  };
  return service;
}

function timedSigner(signer: CertificateSigner, timers: PhaseTimers): CertificateSigner {
  return {
    ...signer,
    signShare(message) {
      const t = performance.now();
      const out = signer.signShare(message);
      timers.signMs.push(performance.now() - t);
      return out;
    },
    combine(message, shares) {
      const t = performance.now();
      const out = signer.combine(message, shares);
      timers.combineMs.push(performance.now() - t);
      return out;
    },
  };
}

interface Ring {
  readonly label: string;
  readonly members: RingMember[];
  readonly hosts: MachineHost[];
  readonly stores: LmdbKvStore[];
  readonly replicas: Replica[];
  readonly bus: MemoryBus;
  readonly timers: PhaseTimers;
  readonly dir: string;
  readonly workers: Worker[];
  readonly certificateThreads: CertificateThread[];
}

const benchParameters = { batchSizeMax: 256, pipelineDepthMax: 2, batchDelayMs: 1, checkpointInterval: 128, watermarkWindow: 512, statusIntervalMs: 1000, requestTimeoutMs: 30_000, viewChangeTimeoutMs: 30_000 };

interface ReplicaSetup {
  readonly index: number;
  readonly members: RingMember[];
  readonly secretKey: Uint8Array;
  readonly certificates: 'bls' | 'fake';
  readonly share: { index: number; secretKey: Uint8Array };
  readonly key: { threshold: number; publicKey: Uint8Array; commitments: Uint8Array[] };
  readonly path: string;
  readonly referenceBls: boolean;
  /** Shares, combinations and pairing checks on a thread of their own (runtime/certificate-thread.ts), as ring servers run them. */
  readonly checkThread: boolean;
}

/** One replica on the production host over lmdb; `transport` decides where its frames go. */
function hostReplica(setup: ReplicaSetup, transport: Transport, timers: PhaseTimers, sharedThread?: CertificateThread): { host: MachineHost; store: LmdbKvStore; replica: Replica; certificateThread: CertificateThread | null } {
  const { index: i, members } = setup;
  const ringKey = new RingKeyVerifier(setup.key, members.length);
  const hashedCache = new HashedCache();
  const bls = setup.certificates === 'bls';
  const certificateThread = bls && setup.checkThread ? (sharedThread ?? new CertificateThread(setup.key.publicKey)) : null;
  const store = new LmdbKvStore({ path: setup.path, mapBytes: 2 ** 30 });
  const replica = new Replica(
    { nodeId: members[i]!.id, store, random: new Prng(i), nowMs: Date.now() },
    {
      members,
      f: 1,
      crypto,
      signer: signerOf(crypto, setup.secretKey),
      // One hash cache per replica (as each ring server process has), shared by its signer and verifier.
      certificateSigner: timedSigner(bls ? blsCertificateSigner(setup.share, ringKey, hashedCache) : fakeCertificateSigner(crypto, i, 2), timers),
      certificateVerifier: bls ? blsCertificateVerifier(ringKey, hashedCache) : fakeCertificateVerifier(crypto),
      service: (s) => timedService(new ObjectService({ crypto, store: s, blocks: new KvBlockStore(crypto, s), ringId }), timers),
      ringId,
      parameters: benchParameters,
      // The in-memory bus cannot alter frames, and a cluster's transport tags them: on, as a cluster runs.
      channelIntegrity: process.env[noChannelIntegrityEnv] !== '1',
      certificateWork: certificateThread ? 'host' : 'inline',
    },
  );
  const host = new MachineHost(members[i]!.id, transport, store, silentLogger());
  host.add<RingMessage, RingOutput>({
    channel, protocol: 'ring', machine: replica, decode: decodeRingMessage, encode: encodeRingMessage, frameBytesMax: ringFrameBytesMax, tickMs: 10,
    onOutput: (event) => {
      if (event.kind === 'certificate-work') certificateThread!.forward(event, () => replica, (run) => host.execute(channel, run as never), hashedCache.peek(event.work.message)?.bytes);
    },
  });
  host.start();
  return { host, store, replica, certificateThread: sharedThread ? null : certificateThread };
}

/** Worker-thread entry: one replica per thread, frames through the parent's bus. */
function replicaWorker(setup: ReplicaSetup): void {
  const port = parentPort!;
  const name = setup.members[setup.index]!.id;
  const timers: PhaseTimers = { applyMs: [], signMs: [], combineMs: [] };
  const transport = {
    onFrame: (handler: (from: string, frame: Uint8Array) => void) =>
      port.on('message', (m: { kind: string; from: string; frame: Uint8Array }) => {
        if (m.kind === 'frame') handler(m.from, m.frame);
      }),
    send: (to: string, frame: Uint8Array) => port.postMessage({ kind: 'frame', from: name, to, frame }),
  } as unknown as Transport;
  const { host, store, certificateThread } = hostReplica(setup, transport, timers);
  port.postMessage({ kind: 'ready' });
  port.on('message', (m: { kind: string }) => {
    if (m.kind !== 'stop') return;
    void (async () => {
      await host.stop();
      await store.close();
      await certificateThread?.close();
      port.postMessage({ kind: 'stopped', apply: median(timers.applyMs), sign: median(timers.signMs), combine: median(timers.combineMs) });
    })();
  });
}

if (!isMainThread && (workerData as { ringBenchReplica?: ReplicaSetup } | null)?.ringBenchReplica) {
  const setup = (workerData as { ringBenchReplica: ReplicaSetup }).ringBenchReplica;
  void (setup.referenceBls ? Promise.resolve() : useMclBls()).then(() => replicaWorker(setup));
}

async function startRing(certificates: 'bls' | 'fake', threads: boolean, checkThread = false): Promise<Ring> {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-ring-'));
  const bus = new MemoryBus();
  const key = dealRingKey(new Prng(1).fork('dealer'), 4, 2);
  const secrets = [0, 1, 2, 3].map((i) => crypto.sha256([new TextEncoder().encode(`bench-replica-${i}`)]));
  const members = secrets.map((secret, i) => ({ id: `ring-${i}`, publicKey: signerOf(crypto, secret).publicKey }));
  const timers: PhaseTimers = { applyMs: [], signMs: [], combineMs: [] };
  const label = `${certificates}${threads ? ', a thread per replica' : ', one thread'}${checkThread && certificates === 'bls' ? (threads ? ' + a certificate thread each' : ' + one certificate thread') : ''}`;
  const ring: Ring = { label, members, hosts: [], stores: [], replicas: [], bus, timers, dir, workers: [], certificateThreads: [] };
  // One process's replicas share one certificate thread (a ring server process has one of its own).
  const shared = checkThread && certificates === 'bls' && !threads ? new CertificateThread(key.publicKey) : undefined;
  if (shared) ring.certificateThreads.push(shared);
  members.forEach((m, i) => {
    const setup: ReplicaSetup = {
      index: i,
      members,
      secretKey: secrets[i]!,
      certificates,
      share: key.shares[i]!,
      key: { threshold: key.threshold, publicKey: key.publicKey, commitments: [...key.commitments] },
      path: join(dir, m.id),
      referenceBls: blsEngine() === null,
      checkThread,
    };
    if (threads) {
      // tsx is not active in workers by default: register it, then load this module as the worker.
      const url = JSON.stringify(new URL(import.meta.url).href);
      const worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${url}); })`, {
        eval: true,
        workerData: { ringBenchReplica: setup },
      });
      bus.attachWorker(m.id, worker);
      ring.workers.push(worker);
      return;
    }
    const { host, store, replica } = hostReplica(setup, bus.transportFor(m.id), timers, shared);
    ring.hosts.push(host);
    ring.stores.push(store);
    ring.replicas.push(replica);
  });
  // Workers compile this module on start: wait until every replica is up before measuring.
  await Promise.all(ring.workers.map((w) => new Promise<void>((resolve) => w.on('message', (m: { kind: string }) => m.kind === 'ready' && resolve()))));
  return ring;
}

async function stopRing(ring: Ring): Promise<void> {
  for (const h of ring.hosts) await h.stop();
  for (const s of ring.stores) await s.close();
  for (const c of ring.certificateThreads) await c.close();
  const stopped = ring.workers.map(
    (w) =>
      new Promise<void>((resolve) => {
        w.on('message', (m: { kind: string; apply: number; sign: number; combine: number }) => {
          if (m.kind !== 'stopped') return;
          ring.timers.applyMs.push(m.apply);
          ring.timers.signMs.push(m.sign);
          ring.timers.combineMs.push(m.combine);
          resolve();
        });
        w.postMessage({ kind: 'stop' });
      }),
  );
  await Promise.all(stopped);
  for (const w of ring.workers) await w.terminate();
  rmSync(ring.dir, { recursive: true, force: true });
}

/** A client core driven directly (no durability needed): frames over the bus, outputs to callbacks. */
class BenchClient {
  readonly core: RingClient;
  readonly signer: Signer;
  private readonly waiting = new Map<number, { startMs: number; done: (ms: number) => void; certified: (ms: number) => void }>();
  private nonceNext = 1;

  constructor(
    readonly name: string,
    private readonly ring: Ring,
    index: number,
  ) {
    this.signer = signerOf(crypto, crypto.sha256([new TextEncoder().encode(`bench-client-${index}`)]));
    this.core = new RingClient(
      { nodeId: name, store: new MemoryKvStore(), random: new Prng(1000 + index), nowMs: Date.now() },
      { members: ring.members, f: 1, crypto, signer: this.signer, certificateVerifier: { verify: () => true }, retransmitMs: 2000, ringId, channelIntegrity: process.env[noChannelIntegrityEnv] !== '1' },
    );
    ring.bus.transportFor(name).onFrame((from, frame) => this.perform(this.core.onMessage(from, decodeRingMessage(frame.subarray(1)), Date.now())));
    setInterval(() => this.perform(this.core.onTick(Date.now())), 50).unref();
  }

  private perform(effects: Effect<RingMessage, RingOutput>[]): void {
    for (const e of effects) {
      if (e.kind === 'send') {
        const body = encodeRingMessage(e.message);
        const frame = new Uint8Array(body.length + 1);
        frame[0] = channel;
        frame.set(body, 1);
        this.ring.bus.deliver(this.name, e.to, frame);
      } else if (e.event.kind === 'completed') {
        const w = this.waiting.get(e.event.nonce);
        w?.done(performance.now() - w.startMs);
      } else if (e.event.kind === 'certified') {
        const w = this.waiting.get(e.event.nonce);
        w?.certified(performance.now() - w.startMs);
        this.waiting.delete(e.event.nonce);
      }
    }
  }

  /** Sends one operation; resolves with the reply latency, and calls onCertified later. */
  submit(operation: Uint8Array, onCertified: (ms: number) => void): Promise<number> {
    return new Promise((resolve) => {
      const nonce = this.nonceNext++;
      this.waiting.set(nonce, { startMs: performance.now(), done: resolve, certified: onCertified });
      this.perform(this.core.submit(operation, Date.now()));
    });
  }

  putBlockEverywhere(block: Uint8Array): void {
    const body = encodeRingMessage({ kind: 'put-block', block });
    const frame = new Uint8Array(body.length + 1);
    frame[0] = channel;
    frame.set(body, 1);
    for (const m of this.ring.members) this.ring.bus.deliver(this.name, m.id, frame);
  }
}

function update(signer: Signer, nonce: number, name: string, clauses: Clause[]): Uint8Array {
  return encodeUpdate(signUpdate(crypto, signer, { aguid: aguidOf(crypto, signer.publicKey, name), writerPublicKey: signer.publicKey, nonce, clauses }));
}

const always = [{ kind: 'always' } as const];

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const median = (xs: number[]): number => percentile([...xs].sort((a, b) => a - b), 50);

interface Row {
  certificates: string;
  workload: string;
  clients: number;
  operations: number;
  p50Ms: number;
  p99Ms: number;
  perSecond: number;
  mbPerSecond: number;
  certificateP50Ms: number;
  /** Process CPU (all four replicas and the clients) per update, ms. */
  cpuMsPerUpdate: number;
  /** ed25519 verifications and signatures per update, all replicas and clients (one-thread rings only). */
  verifiesPerUpdate?: number;
  signsPerUpdate?: number;
}

async function measured(f: () => Promise<Omit<Row, 'cpuMsPerUpdate' | 'certificates'>>, certificates: string): Promise<Row> {
  const before = process.cpuUsage();
  const calls = { ...cryptoCalls };
  const row = await f();
  const used = process.cpuUsage(before);
  const operations = Math.max(1, row.operations);
  // With a thread per replica, the replicas' calls happen in their workers: not counted here.
  const counted = certificates.endsWith('one thread');
  return {
    certificates, ...row, cpuMsPerUpdate: (used.user + used.system) / 1000 / operations,
    verifiesPerUpdate: counted ? (cryptoCalls.verifies - calls.verifies) / operations : undefined,
    signsPerUpdate: counted ? (cryptoCalls.signs - calls.signs) / operations : undefined,
  };
}

/** Each client creates its object, then loops 4 KiB appends for `durationMs`. */
async function run4k(_ring: Ring, clients: BenchClient[], durationMs: number): Promise<Omit<Row, 'cpuMsPerUpdate' | 'certificates'>> {
  const writerNonce = new Map<BenchClient, number>();
  await Promise.all(
    clients.map(async (c) => {
      writerNonce.set(c, 2);
      await c.submit(update(c.signer, 1, 'bench', [{ predicates: always, actions: [{ kind: 'create', name: 'bench', blockBytes: 65536, fanoutMax: 64, writerPublicKeys: [] }] }]), () => {});
    }),
  );
  const latencies: number[] = [];
  const certificates: number[] = [];
  const payload = new Uint8Array(4096).fill(7);
  const startMs = performance.now();
  const endMs = startMs + durationMs;
  await Promise.all(
    clients.map(async (c) => {
      while (performance.now() < endMs) {
        const nonce = writerNonce.get(c)!;
        writerNonce.set(c, nonce + 1);
        const op = update(c.signer, nonce, 'bench', [{ predicates: always, actions: [{ kind: 'append', bytes: payload }] }]);
        latencies.push(await c.submit(op, (ms) => certificates.push(ms)));
      }
    }),
  );
  const wallMs = performance.now() - startMs;
  await new Promise((r) => setTimeout(r, 300)); // let trailing certificates land
  const sorted = [...latencies].sort((a, b) => a - b);
  const perSecond = latencies.length / (wallMs / 1000);
  return {
    workload: '4 KiB append',
    clients: clients.length,
    operations: latencies.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    perSecond,
    mbPerSecond: (perSecond * 4096) / 2 ** 20,
    certificateP50Ms: median(certificates),
  };
}

/** 2 MiB per update: 32 blocks of 64 KiB pushed to every replica, then one update naming them. */
async function run2m(_ring: Ring, clients: BenchClient[], durationMs: number): Promise<Omit<Row, 'cpuMsPerUpdate' | 'certificates'>> {
  const blockBytes = 64 * 1024;
  const latencies: number[] = [];
  const certificates: number[] = [];
  const random = new Prng(7);
  const startMs = performance.now();
  const endMs = startMs + durationMs;
  await Promise.all(
    clients.map(async (c, ci) => {
      const name = `big-${ci}`;
      await c.submit(update(c.signer, 1, name, [{ predicates: always, actions: [{ kind: 'create', name, blockBytes, fanoutMax: 64, writerPublicKeys: [] }] }]), () => {});
      for (let nonce = 2; performance.now() < endMs; nonce++) {
        const t = performance.now();
        const refs = [];
        for (let b = 0; b < 32; b++) {
          const block = random.bytes(blockBytes);
          c.putBlockEverywhere(block);
          refs.push({ kind: 'ref' as const, bguid: bguidOf(crypto, 'data', block), length: blockBytes });
        }
        const op = update(c.signer, nonce, name, [{ predicates: always, actions: [{ kind: 'append-blocks', blocks: refs }] }]);
        await c.submit(op, (ms) => certificates.push(ms));
        latencies.push(performance.now() - t);
      }
    }),
  );
  const wallMs = performance.now() - startMs;
  await new Promise((r) => setTimeout(r, 300));
  const sorted = [...latencies].sort((a, b) => a - b);
  const perSecond = latencies.length / (wallMs / 1000);
  return {
    workload: '2 MiB (32 x 64 KiB blocks)',
    clients: clients.length,
    operations: latencies.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    perSecond,
    mbPerSecond: (perSecond * 2 * 2 ** 20) / 2 ** 20,
    certificateP50Ms: median(certificates),
  };
}

function timeIt(count: number, f: () => void): number {
  const t = performance.now();
  for (let i = 0; i < count; i++) f();
  return (performance.now() - t) / count;
}

async function baselines(dir: string): Promise<Record<string, number>> {
  const store = new LmdbKvStore({ path: join(dir, 'baseline') });
  const value = new Uint8Array(4096).fill(3);
  const fsyncMs: number[] = [];
  for (let i = 0; i < 30; i++) {
    store.put(`k${i}`, value);
    const t = performance.now();
    await store.flush();
    fsyncMs.push(performance.now() - t);
  }
  await store.close?.();
  const signer = signerOf(crypto, new Uint8Array(32).fill(9));
  const message = new Uint8Array(220);
  const sig = signer.sign(message);
  const key = dealRingKey(new Prng(3), 4, 2);
  const hashed = hashMessage(message);
  // Validity as each replica does it for one 4 KiB request: envelope signature, update decode and signature.
  const op = update(signer, 1, 'x', [{ predicates: always, actions: [{ kind: 'append', bytes: new Uint8Array(4096) }] }]);
  const request = signMessage<ClientRequest>(crypto, signer, { kind: 'request', clientKey: signer.publicKey, nonce: 1, replyTo: 'c', operation: op });
  return {
    lmdb4KiBFsyncP50Ms: median(fsyncMs),
    ed25519SignMs: timeIt(300, () => signer.sign(message)),
    ed25519VerifyMs: timeIt(300, () => crypto.ed25519Verify(signer.publicKey, message, sig)),
    blsShareSignMs: timeIt(5, () => signShare(key.shares[0]!, hashed)),
    blsHashToCurveMs: timeIt(5, () => hashMessage(message)),
    validityPerReplicaMs: timeIt(200, () => {
      verifyMessage(crypto, signer.publicKey, request);
      verifyUpdateSignature(crypto, decodeUpdate(request.operation));
    }),
  };
}

async function runAll(certificates: 'bls' | 'fake', threads: boolean, seconds: number, quick: boolean, checkThread = false): Promise<{ rows: Row[]; phases: Record<string, number>; ring: Ring }> {
  const ring = await startRing(certificates, threads, checkThread);
  const rows: Row[] = [];
  let nextClient = 0;
  const clientsFor = (count: number): BenchClient[] => Array.from({ length: count }, () => new BenchClient(`client-${nextClient}`, ring, nextClient++));
  try {
    rows.push(await measured(() => run4k(ring, clientsFor(1), seconds * 1000), ring.label));
    const phases = { applyMs: median(ring.timers.applyMs), certificateShareSignMs: median(ring.timers.signMs), certificateCombineMs: median(ring.timers.combineMs) };
    rows.push(await measured(() => run4k(ring, clientsFor(16), seconds * 1000), ring.label));
    rows.push(await measured(() => run4k(ring, clientsFor(256), seconds * 1500), ring.label));
    rows.push(await measured(() => run2m(ring, clientsFor(quick ? 1 : 2), seconds * 1500), ring.label));
    return { rows, phases, ring };
  } finally {
    await stopRing(ring);
  }
}

/** One 4 KiB row (for profiling one load level). */
async function runOne(certificates: 'bls' | 'fake', clientCount: number, seconds: number, threads: boolean, checkThread: boolean): Promise<{ rows: Row[]; phases: Record<string, number>; ring: Ring }> {
  const ring = await startRing(certificates, threads, checkThread);
  try {
    const clients = Array.from({ length: clientCount }, (_, i) => new BenchClient(`client-${i}`, ring, i));
    const rows = [await measured(() => run4k(ring, clients, seconds * 1000), ring.label)];
    return { rows, phases: { applyMs: median(ring.timers.applyMs) }, ring };
  } finally {
    await stopRing(ring);
  }
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const seconds = quick ? 1.5 : 4;
  // The production BLS engine (as nodes run it); --reference-bls measures pure @noble/curves.
  if (!args.includes('--reference-bls')) await useMclBls();
  if (args.includes('--no-channel-integrity') || args.includes('--check-every-commit')) process.env[noChannelIntegrityEnv] = '1';
  if (args.includes('--fake-only') || args.includes('--bls-only')) {
    // For profiling one ring: fake certificates (the protocol alone) or BLS, optionally one load level.
    const certificates = args.includes('--bls-only') ? 'bls' : 'fake';
    const clientsArg = args.indexOf('--clients');
    const threads = args.includes('--threads');
    // Certificate cryptography on a thread of its own, as ring servers run it; --inline-checks for all of it inline.
    const checkThread = !args.includes('--inline-checks');
    const one = clientsArg >= 0 ? await runOne(certificates, Number(args[clientsArg + 1]), seconds, threads, checkThread) : await runAll(certificates, threads, seconds, quick, checkThread);
    const base = { ed25519VerifyMs: timeIt(300, () => crypto.ed25519Verify(new Uint8Array(32), new Uint8Array(8), new Uint8Array(64))) };
    print(one.rows, one.phases, base, [one.ring]);
    process.exit(0);
  }
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-bench-ring-base-'));
  const base = await baselines(dir);
  rmSync(dir, { recursive: true, force: true });
  // Baseline ring: the same protocol with a free stand-in for the threshold signature.
  const fake = await runAll('fake', false, seconds, quick);
  // BLS with every pairing check inline (the way before the thirteenth session), then on one
  // thread of their own beside the replicas' (as each ring server process runs them).
  const bls = await runAll('bls', false, seconds, quick);
  const checked = await runAll('bls', false, seconds, quick, true);
  // The deployment shape inside one process: each replica on its own thread (and core, if free), with its own certificate thread.
  const threaded = await runAll('bls', true, seconds, quick, true);
  const phases = {
    validityMs: base.validityPerReplicaMs!,
    applyMs: bls.phases.applyMs!,
    agreementMs: fake.rows[0]!.p50Ms - base.validityPerReplicaMs! - fake.phases.applyMs!,
    certificateShareSignMs: bls.phases.certificateShareSignMs!,
    certificateCombineMs: bls.phases.certificateCombineMs!,
  };
  const rows = [...fake.rows, ...bls.rows, ...checked.rows, ...threaded.rows];
  print(rows, phases, base, [fake.ring, bls.ring]);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/ring.json', JSON.stringify({ machine: machineDescription(), rows, phases, baselines: base }, null, 2));
  process.exit(0);
}

function print(rows: Row[], phases: Record<string, number>, base: Record<string, number>, rings: Ring[]): void {
  const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');
  console.log('\nring: 4 replicas (f=1), node ed25519, lmdb fsync group commit, all in one thread; certificates: fake (baseline) then threshold BLS12-381');
  console.log(
    process.env[noChannelIntegrityEnv] === '1'
      ? 'no channel integrity (--no-channel-integrity): every commit signature checked on arrival, every reply signed and checked\n'
      : 'commits and replies counted on their channel, as in a cluster (tagged frames): replies unsigned\n',
  );
  // CPU per update in units of one ed25519 verification measured in the same run: a figure that
  // survives a loaded machine better than milliseconds do.
  const verifyMs = base.ed25519VerifyMs!;
  console.log('| certificates | workload | clients | ops | reply p50 ms | reply p99 ms | updates/s | MB/s | certificate p50 ms | CPU ms/update | CPU/update in ed25519 verifies | ed25519 verifies / signs per update |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const calls = r.verifiesPerUpdate === undefined ? '-' : `${f(r.verifiesPerUpdate)} / ${f(r.signsPerUpdate ?? NaN)}`;
    console.log(`| ${r.certificates} | ${r.workload} | ${r.clients} | ${r.operations} | ${f(r.p50Ms)} | ${f(r.p99Ms)} | ${f(r.perSecond, 0)} | ${f(r.mbPerSecond)} | ${f(r.certificateP50Ms)} | ${f(r.cpuMsPerUpdate, 2)} | ${f(r.cpuMsPerUpdate / verifyMs, 1)} | ${calls} |`);
  }
  console.log('\nper-phase, 1 client (ms): ' + Object.entries(phases).map(([k, v]) => `${k} ${f(v, 2)}`).join(', '));
  console.log('baselines (ms): ' + Object.entries(base).map(([k, v]) => `${k} ${f(v, 3)}`).join(', '));
  for (const ring of rings) {
    const steps = ring.hosts.map((h) => `${h.counters.steps}/${h.counters.flushes}`).join(' ');
    console.log(`host steps/flushes per replica: ${steps}; bus frames ${ring.bus.frames}, ${(ring.bus.bytes / 2 ** 20).toFixed(1)} MiB`);
  }
  console.log('goals: 4 KiB p50 <= 10 ms at 1 client; >= 2,000 updates/s at 256 clients; certificate p50 <= 60 ms');
  console.log('machine:', JSON.stringify(machineDescription()));
}
