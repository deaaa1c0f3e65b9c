/**
 * A ring of 3f+1 replicas and some clients inside the deterministic simulator (sim/simulation.ts),
 * running the versioned key-value service, with the safety checkers of issue 4 run after every
 * event: correct replicas execute the same batch at each sequence number; no two certificates for
 * one (key, version) with different VGUIDs; only signed requests execute.
 */
import { assert } from '../core/assert.ts';
import { toHex, u32be } from '../core/bytes.ts';
import { signerOf, type Crypto, type Signer } from '../core/crypto.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import { Simulation, type NetworkOptions } from '../sim/simulation.ts';
import { Prng } from '../sim/prng.ts';
import { dealRingKey } from '../core/threshold/dealer.ts';
import { RingKeyVerifier } from '../core/threshold/signing.ts';
import { blsCertificateSigner, blsCertificateVerifier } from './bls-certificate-signer.ts';
import { fakeCertificateSigner, fakeCertificateVerifier, type CertificateSigner, type CertificateVerifier } from './certificate-signer.ts';
import { RingClient, clientFactory } from './client.ts';
import { cloneRingMessage } from './codec.ts';
import type { ProtocolParameters, RingMember } from './config.ts';
import { KvService, parseKvStatement } from './kv-service.ts';
import { KvBlockStore } from './kv-block-store.ts';
import { ObjectService, objectCertificateBinding } from './object-service.ts';
import { decode } from '../core/codec.ts';
import { certificateStatementFromTuple } from '../core/threshold/statements.ts';

/** The ring id simulated rings put in statements and batch headers. */
export const simRingId = new Uint8Array(32).fill(7);
import type { RingMessage } from './messages.ts';
import type { CertificateWork, CertificateWorkResult, RingOutput } from './outputs.ts';
import { Replica, replicaFactory } from './replica.ts';

export interface CertificateScheme {
  signerFor(replica: number): CertificateSigner;
  verifier: CertificateVerifier;
  /** The ring's BLS public key (real scheme only). */
  publicKey?: Uint8Array;
}

/** Real threshold BLS: a dealer run seeded from the simulation seed. */
export function blsCertificates(seed: number, f: number): CertificateScheme {
  const n = 3 * f + 1;
  const key = dealRingKey(new Prng(seed).fork('dealer'), n, f + 1);
  const ring = new RingKeyVerifier(key, n);
  return { signerFor: (i) => blsCertificateSigner(key.shares[i]!, ring), verifier: blsCertificateVerifier(ring), publicKey: key.publicKey };
}

export interface ClusterOptions {
  seed: number;
  f: number;
  clientCount: number;
  crypto: Crypto;
  /** Real BLS or the fast fake (default). */
  certificates?: CertificateScheme;
  parameters?: Partial<ProtocolParameters>;
  network?: Partial<NetworkOptions>;
  tickMs?: number;
  /** Trace every delivered message as text (for scripted tests). */
  trace?: (line: string) => void;
  /** The replicated service: the versioned key-value test service (default) or Pond objects. */
  service?: 'kv' | 'object';
  /** ReplicaConfig.channelIntegrity (and the clients'): the simulated network does not alter messages. */
  channelIntegrity?: boolean;
  /**
   * ReplicaConfig.certificateWork. With 'host' the simulated host answers each piece (a share, a
   * combination, a check) 1-7 virtual ms later, as another thread would, so rounds and
   * span-certified messages change meanwhile.
   */
  certificateWork?: 'inline' | 'host';
}

export interface Cluster {
  readonly sim: Simulation<RingMessage, RingOutput>;
  readonly members: readonly RingMember[];
  readonly replicaIds: readonly string[];
  readonly clientIds: readonly string[];
  readonly clientSigners: readonly Signer[];
  /** Replicas the checkers treat as Byzantine (their own executions are not compared). */
  readonly byzantine: Set<number>;
  readonly crypto: Crypto;
  submit(clientIndex: number, operation: Uint8Array): void;
  replica(index: number): Replica | null;
  client(index: number): RingClient | null;
  /** Completed operations per client (f+1 matching replies seen). */
  readonly completed: number[];
  /** Per client: the nonce and seq its last completed operation's replies named. */
  readonly lastCompleted: ({ nonce: number; seq: number } | null)[];
  readonly certified: number[];
  /** (key, version) -> VGUID of every certificate seen. */
  readonly certifiedVersions: Map<string, string>;
  /** seq -> batch digest executed by the first correct replica. */
  readonly executedDigests: Map<number, string>;
  /** Digests of requests that must never execute (forged signatures). */
  readonly forbiddenRequests: Set<string>;
  /**
   * Object service: `clientKeyHex:nonce` -> digest of the update the client submitted with that
   * ring nonce. A certificate a client takes must carry that digest (a relabelled leaf must not).
   */
  readonly submittedUpdates: Map<string, string>;
  readonly events: { viewChanges: number; stateTransfers: number; badShares: number; certificates: number };
  /** Certificate work (certificateWork 'host') the cluster holds for a test instead of answering, as `node/op` ('ring-1/check'). */
  readonly holding: Set<string>;
  /** The work held, with its result: a test answers it with Replica.onCertificateWork. */
  readonly held: { node: string; op: CertificateWork['op']; token: object; result: CertificateWorkResult }[];
}

export function secretKeyFor(crypto: Crypto, seed: number, role: string, index: number): Uint8Array {
  return crypto.sha256([new TextEncoder().encode(`ring-sim-key:${role}`), u32be(seed >>> 0), u32be(index)]);
}

export function fakeCertificates(crypto: Crypto, f: number): CertificateScheme {
  return { signerFor: (i) => fakeCertificateSigner(crypto, i, f + 1), verifier: fakeCertificateVerifier(crypto) };
}

export function describeRingMessage(m: RingMessage): string {
  switch (m.kind) {
    case 'request':
      return `request n=${m.nonce}`;
    case 'pre-prepare':
      return `pre-prepare v=${m.view} s=${m.seq} d=${toHex(m.digest).slice(0, 8)} reqs=${m.batch?.requests.length ?? '-'}`;
    case 'prepare':
    case 'commit':
      return `${m.kind} v=${m.view} s=${m.seq} d=${toHex(m.digest).slice(0, 8)} r=${m.replica}`;
    case 'checkpoint':
      return `checkpoint s=${m.seq} d=${toHex(m.stateDigest).slice(0, 8)} r=${m.replica}`;
    case 'view-change':
      return `view-change v=${m.newView} stable=${m.stableSeq} prepared=${m.prepared.map((p) => p.prePrepare.seq).join(',')} r=${m.replica}`;
    case 'new-view':
      return `new-view v=${m.view} vcs=${m.viewChanges.map((v) => v.replica).join(',')} pps=${m.prePrepares.map((p) => p.seq).join(',')}`;
    case 'status':
      return `status v=${m.view}${m.viewActive ? '' : '*'} exec=${m.lastExecuted} stable=${m.stableSeq}`;
    case 'commit-proof':
      return `commit-proof s=${m.prePrepare.seq}`;
    case 'checkpoint-proof':
      return `checkpoint-proof s=${m.checkpoints[0]?.seq ?? '-'}`;
    case 'state-request':
      return `state-request s=${m.seq}`;
    case 'state-reply':
      return `state-reply s=${m.seq} bytes=${m.snapshot.length}`;
    case 'share':
      return `share s=${m.seq} r=${m.replica}`;
    case 'sign-request':
      return `sign-request s=${m.from}..${m.to} leaves=${m.leafCount} r=${m.replica}`;
    case 'span-certified':
      return `span-certified s=${m.from}..${m.to} leaves=${m.leafCount} r=${m.replica}`;
    case 'reply':
      return `reply s=${m.seq} n=${m.nonce} r=${m.replica}`;
    case 'nonce-passed':
      return `nonce-passed n=${m.nonce} executed=${m.executedNonce} r=${m.replica}`;
    case 'certificate':
      return `certificate s=${m.seq} n=${m.nonce}`;
    case 'certificate-request':
      return `certificate-request n=${m.nonce}`;
    case 'share-refused':
      return `share-refused s=${m.to} floor=${m.floor} r=${m.replica}`;
    case 'put-block':
      return `put-block ${m.block.length}B`;
    case 'block-stored':
      return `block-stored r=${m.replica}`;
    case 'fetch-blocks':
      return `fetch-blocks n=${m.bguids.length}`;
    case 'block-data':
      return `block-data ${m.blockKind} ${m.bytes.length}B`;
  }
}

/** Wraps a core so every delivered message is printed (scripted interaction tests). */
class TracedMachine implements Machine<RingMessage, RingOutput> {
  constructor(
    readonly inner: Machine<RingMessage, RingOutput>,
    private readonly id: string,
    private readonly trace: (line: string) => void,
  ) {}

  onMessage(from: string, message: RingMessage, nowMs: number): Effect<RingMessage, RingOutput>[] {
    this.trace(`${nowMs.toFixed(1).padStart(7)} ${from} -> ${this.id}: ${describeRingMessage(message)}`);
    return this.inner.onMessage(from, message, nowMs);
  }

  onTick(nowMs: number): Effect<RingMessage, RingOutput>[] {
    return this.inner.onTick(nowMs);
  }
}

function unwrap(m: Machine<RingMessage, RingOutput> | null): unknown {
  return m instanceof TracedMachine ? m.inner : m;
}

/**
 * Crashes replica `index` and restarts it without its kept statements (ring/replica-store.ts
 * `ring/leaves/`), as a replica that reached its state by transfer, or whose records are gone, holds
 * none below where it executed: for tests of how the ring certifies what fewer replicas hold.
 */
export function restartWithoutStatements(c: Cluster, index: number): void {
  const id = c.replicaIds[index]!;
  c.sim.crash(id);
  const store = c.sim.store(id);
  for (const key of store.keys('ring/leaves/')) store.delete(key);
  c.sim.restart(id);
}

/** How long the simulated host takes to answer its `n`-th piece of certificate work: 1-7 virtual ms, in turn. */
export function hostWorkDelayMs(n: number): number {
  return 1 + (n % 7);
}

export function buildCluster(options: ClusterOptions): Cluster {
  const { f, crypto, seed } = options;
  const n = 3 * f + 1;
  const certificates = options.certificates ?? fakeCertificates(crypto, f);
  const secrets = Array.from({ length: n }, (_, i) => secretKeyFor(crypto, seed, 'replica', i));
  const signers = secrets.map((s) => signerOf(crypto, s));
  const members: RingMember[] = signers.map((s, i) => ({ id: `ring-${i}`, publicKey: s.publicKey }));
  const clientSigners = Array.from({ length: options.clientCount }, (_, i) => signerOf(crypto, secretKeyFor(crypto, seed, 'client', i)));
  const clientIds = clientSigners.map((_, i) => `client-${i}`);
  const trace = options.trace;
  const sim = new Simulation<RingMessage, RingOutput>({
    seed,
    tickMs: options.tickMs ?? 5,
    network: options.network,
    cloneMessage: cloneRingMessage,
    describeMessage: describeRingMessage,
  });
  const updateBinding = options.service === 'object' ? objectCertificateBinding(crypto) : null;
  const cluster: Cluster = {
    sim,
    members,
    replicaIds: members.map((m) => m.id),
    clientIds,
    clientSigners,
    byzantine: new Set(),
    crypto,
    submit(clientIndex, operation) {
      const c = cluster.client(clientIndex);
      assert(c, `client ${clientIndex} is down`);
      const digest = updateBinding?.operationKey(operation);
      if (digest) cluster.submittedUpdates.set(`${toHex(clientSigners[clientIndex]!.publicKey)}:${c.nextNonce}`, toHex(digest));
      for (const e of c.submit(operation, sim.nowMs)) if (e.kind === 'send') sim.send(clientIds[clientIndex]!, e.to, e.message);
    },
    replica: (i) => unwrap(sim.machine(members[i]!.id)) as Replica | null,
    client: (i) => unwrap(sim.machine(clientIds[i]!)) as RingClient | null,
    completed: clientIds.map(() => 0),
    lastCompleted: clientIds.map(() => null),
    certified: clientIds.map(() => 0),
    certifiedVersions: new Map(),
    executedDigests: new Map(),
    forbiddenRequests: new Set(),
    submittedUpdates: new Map(),
    events: { viewChanges: 0, stateTransfers: 0, badShares: 0, certificates: 0 },
    holding: new Set(),
    held: [],
  };
  const traced = <T extends Machine<RingMessage, RingOutput>>(id: string, make: (ctx: MachineContext) => T) =>
    trace ? (ctx: MachineContext) => new TracedMachine(make(ctx), id, trace) : make;
  members.forEach((m, i) => {
    sim.addNode(
      m.id,
      traced(m.id, replicaFactory({
        members,
        f,
        crypto,
        signer: signers[i]!,
        certificateSigner: certificates.signerFor(i),
        certificateVerifier: certificates.verifier,
        service:
          options.service === 'object'
            ? (store) => new ObjectService({ crypto, store, blocks: new KvBlockStore(crypto, store), ringId: simRingId })
            : (store) => new KvService(crypto, store),
        ringId: simRingId,
        parameters: options.parameters,
        channelIntegrity: options.channelIntegrity,
        certificateWork: options.certificateWork,
      })),
    );
  });
  clientSigners.forEach((signer, i) => {
    const id = clientIds[i]!;
    sim.addNode(id, traced(id, clientFactory({
      members, f, crypto, signer, certificateVerifier: certificates.verifier, retransmitMs: 300, ringId: simRingId, channelIntegrity: options.channelIntegrity,
      // Pond updates: a certificate counts only for the update whose digest its statement carries (as in the SDK).
      ...(options.service === 'object' ? { certificateBinding: objectCertificateBinding(crypto) } : {}),
    })));
  });
  if (trace) {
    const original = sim.send.bind(sim);
    sim.send = (from, to, message) => {
      trace(`${sim.nowMs.toFixed(1).padStart(7)} inject ${from} -> ${to}: ${describeRingMessage(message)}`);
      original(from, to, message);
    };
  }
  sim.onOutput((node, event) => observe(cluster, node, event));
  let jobs = 0;
  sim.onOutput((node, event) => {
    if (event.kind !== 'certificate-work') return;
    // Done now, with what the replica handed over (a thread gets the same), and answered later.
    const result = event.run();
    if (cluster.holding.has(`${node}/${event.work.op}`)) return void cluster.held.push({ node, op: event.work.op, token: event.token, result });
    sim.later(node, hostWorkDelayMs(jobs++), `certificate-${event.work.op}`, (machine, nowMs) => (unwrap(machine) as Replica).onCertificateWork(event.token, result, nowMs));
  });
  return cluster;
}

/** (object, version) -> VGUID of a certified commit, from either service's statement format. */
function certifiedVersion(statement: Uint8Array): { key: string; vguidHex: string } | null {
  const kv = parseKvStatement(statement);
  if (kv) return { key: `${kv.key}@${kv.version}`, vguidHex: kv.vguidHex };
  try {
    const s = certificateStatementFromTuple(decode(statement, 4096));
    return s.outcome === 'commit' ? { key: `${toHex(s.aguid)}@${s.version}`, vguidHex: toHex(s.vguid) } : null;
  } catch {
    return null;
  }
}

function recordCertificate(cluster: Cluster, statement: Uint8Array): void {
  const s = certifiedVersion(statement);
  if (!s) return;
  const held = cluster.certifiedVersions.get(s.key);
  assert(held === undefined || held === s.vguidHex, `two certificates for ${s.key} with different VGUIDs`);
  cluster.certifiedVersions.set(s.key, s.vguidHex);
}

function observe(cluster: Cluster, node: string, event: RingOutput): void {
  switch (event.kind) {
    case 'executed': {
      if (cluster.byzantine.has(event.replica)) return;
      const held = cluster.executedDigests.get(event.seq);
      assert(held === undefined || held === event.digestHex, `replica ${event.replica} executed ${event.digestHex} at seq ${event.seq}, another executed ${held}`);
      cluster.executedDigests.set(event.seq, event.digestHex);
      for (const r of event.requests) {
        assert(!cluster.forbiddenRequests.has(r.requestDigestHex), `a forged request executed at seq ${event.seq}`);
      }
      return;
    }
    case 'certificate':
      cluster.events.certificates++;
      for (const s of event.statements) recordCertificate(cluster, s);
      return;
    case 'certified': {
      recordCertificate(cluster, event.statement);
      // Authorisation: a client's update is certified only for keys it owns (kv) — others were refused.
      const kv = parseKvStatement(event.statement);
      if (kv) assert(event.clientKeyHex.startsWith(kv.key.slice(0, kv.key.indexOf('/'))), `client ${node} got a certificate for ${kv.key}, which it does not own`);
      const submitted = cluster.submittedUpdates.get(`${event.clientKeyHex}:${event.nonce}`);
      if (submitted !== undefined) {
        const taken = toHex(certificateStatementFromTuple(decode(event.statement, 4096)).updateDigest);
        assert(taken === submitted, `client ${node} took a certificate for update ${taken.slice(0, 12)} as its nonce ${event.nonce} (${submitted.slice(0, 12)})`);
      }
      const i = cluster.clientIds.indexOf(node);
      if (i >= 0) cluster.certified[i]!++;
      return;
    }
    case 'completed': {
      const i = cluster.clientIds.indexOf(node);
      if (i >= 0) {
        cluster.completed[i]!++;
        cluster.lastCompleted[i] = { nonce: event.nonce, seq: event.seq };
      }
      return;
    }
    case 'view-installed':
      cluster.events.viewChanges++;
      return;
    case 'state-transferred':
      cluster.events.stateTransfers++;
      return;
    case 'bad-share':
      cluster.events.badShares++;
      return;
    default:
      return;
  }
}
