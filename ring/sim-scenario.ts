/**
 * The ring's randomized simulation scenario (`npm run sim -- ring --seed N`): a seed picks f (1 or
 * 2), clients, network faults (delay/reordering, loss, duplication), up to f Byzantine replicas
 * with their behaviours, and a schedule of crashes, restarts, disk losses, partitions, nonce
 * reuse and forged requests. The checkers in ring/sim-cluster.ts run after every event. A fault
 * phase is followed by a heal phase (network clean, partitions healed, crashed replicas restarted,
 * 2f+1 correct replicas connected) in which every submitted request must complete within a bound.
 */
import { toHex } from '../core/bytes.ts';
import { decode } from '../core/codec.ts';
import type { Crypto } from '../core/crypto.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { fakeCrypto } from '../sim/fake-crypto.ts';
import { Prng } from '../sim/prng.ts';
import type { ClientRequest } from './messages.ts';
import { kvKeyFor, kvOperation } from './kv-service.ts';
import { blsCertificates, buildCluster, secretKeyFor, type Cluster } from './sim-cluster.ts';
import { byzantineBehaviours, byzantineInterceptor, type ByzantineBehaviour } from './sim-faults.ts';
import { requestDigest, signMessage } from './signing.ts';
import { aguidOf, signerOf } from '../core/crypto.ts';
import { encodeUpdate } from '../core/update/update-codec.ts';
import { signUpdate } from '../core/update/update-signature.ts';
import type { Clause } from '../core/update/update.ts';

export interface ScenarioOptions {
  seed: number;
  f?: number;
  crypto?: 'fake' | 'node';
  certificates?: 'fake' | 'bls';
  /** The replicated service: versioned key-value (default) or Pond objects through applyUpdate. */
  service?: 'kv' | 'object';
  faultMs?: number;
  opsPerClient?: number;
  healMsMax?: number;
  /** How long after the heal phase every update that completed in it may take to be certified. */
  certifyMsMax?: number;
  log?: (line: string) => void;
  /** Called with the cluster when the run ends (debugging, tests that inspect state). */
  inspect?: (cluster: Cluster) => void;
  /** 1..f Byzantine replicas, each with exactly these behaviours (default: 0..f, drawn by seed). */
  byzantine?: readonly ByzantineBehaviour[];
}

export interface ScenarioResult {
  seed: number;
  f: number;
  ok: boolean;
  error: string | null;
  byzantine: string[];
  executedSeqs: number;
  completed: number;
  submitted: number;
  certificates: number;
  viewChanges: number;
  stateTransfers: number;
  badShares: number;
  virtualMs: number;
  traceHash: string;
}

class Workload {
  readonly submitted: number[];
  /** Object service: the next update nonce per client (its writer key). */
  private readonly writerNonces: number[];
  constructor(
    private readonly cluster: Cluster,
    private readonly random: Prng,
    private readonly opsPerClient: number,
    private readonly service: 'kv' | 'object',
  ) {
    this.submitted = cluster.clientIds.map(() => 0);
    this.writerNonces = cluster.clientIds.map(() => 1);
  }

  /** A Pond update: create the client's object first, then appends (sometimes under a version predicate). */
  private objectOperation(i: number): Uint8Array {
    const c = this.cluster;
    const signer = c.clientSigners[i]!;
    const nonce = this.writerNonces[i]!++;
    const aguid = aguidOf(c.crypto, signer.publicKey, 'obj');
    const bytes = this.random.bytes(1 + this.random.int(3000));
    const clause: Clause =
      nonce === 1
        ? { predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name: 'obj', blockBytes: 1024, fanoutMax: 4, writerPublicKeys: [] }] }
        : { predicates: [this.random.chance(0.2) ? { kind: 'version-is', version: this.random.int(nonce) } : { kind: 'always' }], actions: [{ kind: 'append', bytes }] };
    return encodeUpdate(signUpdate(c.crypto, signer, { aguid, writerPublicKey: signer.publicKey, nonce, clauses: [clause] }));
  }

  /** Each idle client sends its next operation: mostly its own keys, sometimes someone else's (refused). */
  step(): void {
    const c = this.cluster;
    c.clientIds.forEach((_, i) => {
      const client = c.client(i);
      if (!client || client.backlog > 0 || this.submitted[i]! >= this.opsPerClient) return;
      if (this.service === 'object') {
        c.submit(i, this.objectOperation(i));
        this.submitted[i]!++;
        return;
      }
      const owner = this.random.chance(0.1) ? this.random.pick(c.clientSigners) : c.clientSigners[i]!;
      const key = kvKeyFor(owner.publicKey, this.random.pick(['a', 'b', 'c']));
      const expected = this.random.chance(0.1) ? this.random.int(4) : -1;
      c.submit(i, kvOperation(key, expected, this.random.bytes(1 + this.random.int(64))));
      this.submitted[i]!++;
    });
  }

  get total(): number {
    return this.submitted.reduce((a, b) => a + b, 0);
  }
}

/**
 * Updates that completed in the heal phase with a statement (a kv write that took, a Pond commit),
 * whose client has not taken a certificate for them, and whose statement f+1 correct replicas
 * that are up still hold. A replica holds what it executed and has not seen certified, across
 * restarts too (ring/replica-certificates.ts), but not what it skipped by state transfer nor what
 * it gave up; with fewer than f+1 holders no certificate can be made any more. Holders that are
 * not certifiers of the view take over too, after rank x takeover period (thirteenth session;
 * before, statements that only they held were given up, in 6 of seeds 801-3200 and 1-600 at
 * f = 2).
 */
function certificateTracker(cluster: Cluster, f: number): { healed: boolean; uncertified(): string[] } {
  const awaited = new Map<string, number>();
  const certified = new Set<string>(); // a certificate may beat the f+1th reply
  const owed = (seq: number): boolean => {
    const correct = cluster.replicaIds.flatMap((_, i) => {
      const r = cluster.byzantine.has(i) ? null : cluster.replica(i);
      return r ? [{ i, r }] : [];
    });
    const holding = correct.filter(({ r }) => r.certificateState.leavesFloor <= seq);
    return holding.length >= f + 1;
  };
  const tracker = {
    healed: false,
    uncertified: () => [...awaited].filter(([, seq]) => owed(seq)).map(([key, seq]) => `${key}@${seq}`),
  };
  cluster.sim.onOutput((node, e) => {
    const key = `${node}:${'nonce' in e ? e.nonce : ''}`;
    if (e.kind === 'certified') {
      awaited.delete(key);
      certified.add(key);
    } else if (e.kind === 'completed' && tracker.healed && hasStatement(e.result) && !certified.has(key)) awaited.set(key, e.seq);
  });
  return tracker;
}

function hasStatement(result: Uint8Array): boolean {
  try {
    const t = decode(result, 4096) as unknown[];
    return t[0] === 'ok' || t[0] === 'commit';
  } catch {
    return false;
  }
}

function pickByzantine(cluster: Cluster, random: Prng, f: number, crypto: Crypto, seed: number, relabel: boolean, log: (l: string) => void, forced?: readonly ByzantineBehaviour[]): string[] {
  const count = forced ? 1 + random.int(f) : random.int(f + 1);
  const chosen = random.shuffle([...cluster.replicaIds.keys()]).slice(0, count);
  const described: string[] = [];
  for (const i of chosen) {
    const behaviours = forced ? [...forced] : (random.shuffle([...byzantineBehaviours]).slice(0, 1 + random.int(2)) as ByzantineBehaviour[]);
    // Drawn apart from the scenario's stream (which stays as it was before this behaviour existed).
    const prefixRandom = new Prng(seed).fork(`false-prefix-${i}`);
    // (Not with refuse-shares, which turns every share into a refusal first.)
    if (!forced && !behaviours.includes('refuse-shares') && prefixRandom.chance(0.3)) behaviours.push('false-prefix');
    const signer = signerOf(crypto, secretKeyFor(crypto, seed, 'replica', i));
    const options = { relabelCertificates: relabel, replica: () => cluster.replica(i), prefixRandom };
    cluster.sim.setInterceptor(cluster.replicaIds[i]!, byzantineInterceptor(behaviours, crypto, signer, options));
    cluster.byzantine.add(i);
    described.push(`ring-${i}:${behaviours.join('+')}`);
  }
  if (described.length > 0) log(`byzantine ${described.join(' ')}`);
  return described;
}

/**
 * A client that signs a second, different request under a nonce it already used (one that has
 * completed, so the honest workload's own liveness is not what is being broken).
 */
function reuseNonce(cluster: Cluster, random: Prng): void {
  const i = random.int(cluster.clientIds.length);
  const done = cluster.completed[i]!;
  if (done === 0) return;
  const signer = cluster.clientSigners[i]!;
  const request = signMessage<ClientRequest>(cluster.crypto, signer, {
    kind: 'request',
    clientKey: signer.publicKey,
    nonce: 1 + random.int(done),
    replyTo: cluster.clientIds[i]!,
    operation: kvOperation(kvKeyFor(signer.publicKey, 'a'), -1, random.bytes(8)),
  });
  cluster.sim.send(cluster.clientIds[i]!, random.pick(cluster.replicaIds), request);
}

/** The protocol parameters of the scenarios (small batches and windows, short timeouts: many view changes and checkpoints per run). */
export const scenarioParameters = {
  batchSizeMax: 8,
  pipelineDepthMax: 3,
  batchDelayMs: 2,
  checkpointInterval: 4,
  watermarkWindow: 16,
  requestTimeoutMs: 250,
  viewChangeTimeoutMs: 300,
  statusIntervalMs: 50,
} as const;

/** A request claiming to be a client's, with a signature that does not verify: must never execute. */
function forgeRequest(cluster: Cluster, random: Prng): void {
  const i = random.int(cluster.clientIds.length);
  const signer = cluster.clientSigners[i]!;
  const request: ClientRequest = {
    kind: 'request',
    clientKey: signer.publicKey,
    nonce: 1_000_000 + random.int(1_000_000),
    replyTo: 'forger',
    operation: kvOperation(kvKeyFor(signer.publicKey, 'a'), -1, random.bytes(8)),
    signature: random.bytes(64),
  };
  cluster.forbiddenRequests.add(toHex(requestDigest(cluster.crypto, request)));
  cluster.sim.send('forger', random.pick(cluster.replicaIds), request);
}

function faultEvent(cluster: Cluster, random: Prng, state: { crashed: Set<string>; wipesLeft: number }, log: (l: string) => void): void {
  const sim = cluster.sim;
  const f = (cluster.replicaIds.length - 1) / 3;
  const up = cluster.replicaIds.filter((id) => sim.isUp(id));
  switch (random.int(8)) {
    case 0:
    case 1:
      if (state.crashed.size < f && up.length > 0) {
        const id = random.pick(up);
        sim.crash(id);
        state.crashed.add(id);
        log(`crash ${id}`);
      }
      return;
    case 2:
      if (state.crashed.size > 0) {
        const id = random.pick([...state.crashed]);
        sim.restart(id);
        state.crashed.delete(id);
        log(`restart ${id}`);
      }
      return;
    case 3:
      if (state.wipesLeft > 0 && state.crashed.size < f && up.length > 0) {
        const id = random.pick(up.filter((u) => !cluster.byzantine.has(cluster.replicaIds.indexOf(u))).concat(up).slice(0, 1));
        sim.crash(id);
        const store = sim.store(id);
        for (const k of store.keys('')) store.delete(k);
        sim.restart(id);
        state.wipesLeft--;
        log(`disk loss ${id}`);
      }
      return;
    case 4: {
      const ids = random.shuffle([...cluster.replicaIds]);
      const cut = 1 + random.int(ids.length - 1);
      sim.partition([[...ids.slice(0, cut), ...cluster.clientIds], ids.slice(cut)]);
      log(`partition ${ids.slice(0, cut).join(',')} | ${ids.slice(cut).join(',')}`);
      return;
    }
    case 5:
      sim.heal();
      log('heal');
      return;
    case 6:
      reuseNonce(cluster, random);
      return;
    default:
      forgeRequest(cluster, random);
  }
}

export function runScenario(options: ScenarioOptions): ScenarioResult {
  const seed = options.seed;
  const log = options.log ?? (() => {});
  const random = new Prng(seed).fork('scenario');
  const f = options.f ?? (random.chance(0.25) ? 2 : 1);
  const crypto = options.crypto === 'node' ? nodeCrypto : fakeCrypto;
  const certificates = options.certificates === 'bls' ? blsCertificates(seed, f) : undefined;
  const network = {
    delayMsMin: 1,
    delayMsMax: 3 + random.int(20),
    lossRate: random.chance(0.5) ? random.float() * 0.1 : 0,
    duplicateRate: random.chance(0.5) ? random.float() * 0.1 : 0,
  };
  const cluster = buildCluster({
    seed,
    f,
    clientCount: 2 + random.int(3),
    crypto,
    certificates,
    network,
    service: options.service ?? 'kv',
    // Both ways of taking commits, by seed (not by a draw: the random stream of every seed stays as it was).
    channelIntegrity: seed % 2 === 0,
    // Certificate cryptography inline, or by the host a few ms later (a thread of its own), by seed
    // as well: seeds 4k and 4k+1 (both ways of taking commits) run the latter.
    certificateWork: seed % 4 < 2 ? 'host' : 'inline',
    parameters: { ...scenarioParameters, heartbeatIntervalMs: random.chance(0.3) ? 400 : 0 },
  });
  log(`seed ${seed} f=${f} clients=${cluster.clientIds.length} network=${JSON.stringify(network)} commits=${seed % 2 === 0 ? 'on-channel' : 'checked'} checks=${seed % 4 < 2 ? 'host' : 'inline'}`);
  const byzantine = pickByzantine(cluster, random, f, crypto, seed, options.service === 'object', log, options.byzantine);
  const awaitedCertificates = certificateTracker(cluster, f);
  const workload = new Workload(cluster, random.fork('workload'), options.opsPerClient ?? 12, options.service ?? 'kv');
  const state = { crashed: new Set<string>(), wipesLeft: f - byzantine.length };
  let error: string | null = null;
  try {
    const faultEndMs = options.faultMs ?? 2_000;
    while (cluster.sim.nowMs < faultEndMs) {
      cluster.sim.runFor(10 + random.int(60));
      workload.step();
      if (random.chance(0.25)) faultEvent(cluster, random, state, log);
    }
    // Heal: 2f+1 correct replicas connected on a clean network; every pending request must commit.
    cluster.sim.heal();
    cluster.sim.setNetwork({ lossRate: 0, duplicateRate: 0 });
    for (const id of state.crashed) cluster.sim.restart(id);
    log(`heal phase at ${cluster.sim.nowMs.toFixed(0)} ms`);
    awaitedCertificates.healed = true;
    const healMsMax = options.healMsMax ?? 30_000;
    const finished = cluster.sim.runUntil(() => {
      workload.step();
      return cluster.completed.reduce((a, b) => a + b, 0) === workload.total;
    }, healMsMax);
    if (!finished) {
      error = `liveness: ${cluster.completed.reduce((a, b) => a + b, 0)} of ${workload.total} requests completed ${healMsMax} ms after healing`;
    } else {
      const certifyMsMax = options.certifyMsMax ?? 10_000;
      const certifiedAll = cluster.sim.runUntil(() => awaitedCertificates.uncertified().length === 0, certifyMsMax);
      if (!certifiedAll) error = `certificate liveness: ${awaitedCertificates.uncertified().slice(0, 4).join(' ')} completed after healing, not certified ${certifyMsMax} ms after`;
    }
  } catch (e) {
    error = `safety: ${(e as Error).stack ?? String(e)}`;
  }
  options.inspect?.(cluster);
  return {
    seed,
    f,
    ok: error === null,
    error,
    byzantine,
    executedSeqs: cluster.executedDigests.size,
    completed: cluster.completed.reduce((a, b) => a + b, 0),
    submitted: workload.total,
    certificates: cluster.events.certificates,
    viewChanges: cluster.events.viewChanges,
    stateTransfers: cluster.events.stateTransfers,
    badShares: cluster.events.badShares,
    virtualMs: Math.round(cluster.sim.nowMs),
    traceHash: cluster.sim.traceHash(),
  };
}

function parseArgs(args: string[]): { seeds: number[]; options: Omit<ScenarioOptions, 'seed'>; verbose: boolean } {
  let seeds = [1];
  const options: Omit<ScenarioOptions, 'seed'> = {};
  let verbose = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = (): string => args[++i] ?? '';
    if (a === '--seed') seeds = [Number(next())];
    else if (a === '--seeds') {
      const [from, to] = next().split('..').map(Number);
      seeds = Array.from({ length: to! - from! + 1 }, (_, k) => from! + k);
    } else if (a === '--f') options.f = Number(next());
    else if (a === '--real-crypto') options.crypto = 'node';
    else if (a === '--bls') options.certificates = 'bls';
    else if (a === '--objects') options.service = 'object';
    else if (a === '--byzantine') options.byzantine = next().split(',') as ByzantineBehaviour[];
    else if (a === '--verbose' || a === '-v') verbose = true;
    else if (a !== 'ring') throw new Error(`unknown argument ${a} (use --seed N | --seeds A..B, --f 1|2, --real-crypto, --bls, --objects, --byzantine B1,B2, --verbose)`);
  }
  return { seeds, options, verbose };
}

/** `npm run sim -- ring --seed N [--f 2] [--real-crypto] [--bls] [--objects] [--byzantine B1,B2] [--verbose]`, or `--seeds A..B`. */
export async function run(args: string[]): Promise<void> {
  const { seeds, options, verbose } = parseArgs(args);
  let failures = 0;
  for (const seed of seeds) {
    const result = runScenario({ ...options, seed, log: verbose ? (l) => console.log(`  ${l}`) : undefined });
    const summary = `seed ${seed} f=${result.f} ${result.ok ? 'ok' : 'FAIL'} seqs=${result.executedSeqs} done=${result.completed}/${result.submitted} certs=${result.certificates} viewChanges=${result.viewChanges} stateTransfers=${result.stateTransfers} badShares=${result.badShares} byz=[${result.byzantine.join(' ')}] t=${result.virtualMs}ms trace=${result.traceHash.slice(0, 12)}`;
    console.log(summary);
    if (!result.ok) {
      failures++;
      console.log(`  ${result.error}\n  reproduce: npm run sim -- ring --seed ${seed}${options.f ? ` --f ${options.f}` : ''}${options.crypto === 'node' ? ' --real-crypto' : ''}${options.certificates === 'bls' ? ' --bls' : ''}${options.service === 'object' ? ' --objects' : ''}${options.byzantine ? ` --byzantine ${options.byzantine.join(',')}` : ''} --verbose`);
    }
  }
  if (failures > 0) {
    console.log(`${failures} of ${seeds.length} seeds failed`);
    process.exitCode = 1;
  }
}
