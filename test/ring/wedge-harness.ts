/**
 * Whole-ring crash / restart (possibly twice) while clients keep writing (object service with
 * uploaded blocks, or kv), in the simulator: reports writes that stop completing and completed
 * writes the ring never certifies (session 29: a helper's sweep of ~2,000 scenarios with it found
 * the certificate losses fixed in ring/replica-certificates.ts giveUpStale and skippedByTransfer).
 * Used by cert-loss-state-transfer.test.ts; a sweep runs runWedge(sweepOptions(seed)) over seeds
 * (wedge-options.ts).
 */
import { toHex } from '../../core/bytes.ts';
import { aguidOf } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { Prng } from '../../sim/prng.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';
import type { ProtocolParameters } from '../../ring/config.ts';
import { scenarioParameters } from '../../ring/sim-scenario.ts';
import { runtimeRingDefaults } from '../../runtime/cluster-config.ts';
import { decode } from '../../core/codec.ts';
import { certificateStatementFromTuple } from '../../core/threshold/statements.ts';
import { signerOf } from '../../core/crypto.ts';
import { byzantineInterceptor, type ByzantineBehaviour } from '../../ring/sim-faults.ts';
import { secretKeyFor } from '../../ring/sim-cluster.ts';

export type CrashWhen = 'random' | 'after-execute' | 'after-checkpoint-exec' | 'after-view-installed' | 'after-state-transfer' | 'after-block-data';

export interface WedgeOptions {
  seed: number;
  /** Faults tolerated (n = 3f + 1); 1 by default. */
  f?: number;
  service: 'object' | 'kv';
  params: 'sim' | 'runtime';
  clientCount?: number;
  crashes?: number;
  crashWhen?: CrashWhen;
  downMs?: number;
  stagger?: boolean;
  /** after the first restart: crash again once every client completed one more (like the real test) or at a random delay */
  secondAfter?: 'one-write' | 'random';
  lossRate?: number;
  delayMax?: number;
  blockBytes?: number;
  blocksMax?: number;
  skipPutProb?: number;
  liveMs?: number;
  /** give an outstanding operation up after this long (the SDK's write timeout), then write the next */
  abandonMs?: number;
  /** put-block resend period to members that have not acked */
  putResendMs?: number;
  /** 'real': client i%3 is small (4 KiB inline rewrite), large (64 KiB blocks, ~300 KiB), log (1000-byte appends) */
  workload?: 'mixed' | 'real';
  log?: (l: string) => void;
  onCluster?: (c: Cluster) => void;
  checkCertificates?: boolean;
  watch?: (from: string, to: string, m: RingMessage, nowMs: number) => void;
  /** One Byzantine replica: its code is correct, its messages pass through these behaviours (ring/sim-faults.ts). */
  liar?: { replica: number; behaviours: ByzantineBehaviour[] | 'withhold-shares' };
}

export interface WedgeResult {
  ok: boolean;
  detail: string;
  cluster: Cluster;
}

const simParams: Partial<ProtocolParameters> = scenarioParameters;
/** The runtime's (real processes), with a heartbeat batch every second. */
const runtimeParams: Partial<ProtocolParameters> = { ...runtimeRingDefaults, heartbeatIntervalMs: 1000 };

interface Writer {
  nonce: number; // next update nonce
  /** blocks being uploaded for the next op: bguid hex -> {bytes, acks} */
  uploading: Map<string, { bytes: Uint8Array; acks: Set<string>; sentMs: number }> | null;
  pendingOp: Uint8Array | null;
  done: number; // completed count at last look
  submitted: number;
  inFlightOp: Uint8Array | null;
  inFlightSinceMs: number;
  abandoned: number;
}

export function describeReplicas(c: Cluster): string {
  return c.replicaIds
    .map((id, i) => {
      const r = c.replica(i);
      if (!r) return `${id}:down`;
      return `${id}: v=${r.view}${r.viewActive ? '' : '*'} exec=${r.lastExecuted} stable=${r.stableSeq} next=${r.nextSeq} q=${r.queue.size}/w${r.queue.waitingSize} pend=${r.pending.size} inflight=${r.inFlight.size} wanted=${r.blockState.wanted.size} wby=${JSON.stringify(r.blockState.wantedBy)} blocked=${r.blockState.blocked} agNeed=${r.blockState.agreementNeed.size} slots=${[...r.slots.values()].filter((s) => s.seq > r.lastExecuted).map((s) => `${s.seq}${s.prePrepare ? 'P' : ''}${s.prepared ? 'p' : ''}${s.committed ? 'c' : ''}`).join(',')} drops=${JSON.stringify(Object.fromEntries(r.drops))}`;
    })
    .join('\n');
}

export function runWedge(o: WedgeOptions): WedgeResult {
  const log = o.log ?? (() => {});
  const random = new Prng(o.seed).fork('wedge');
  const clientCount = o.clientCount ?? 3;
  const c = buildCluster({
    seed: o.seed,
    f: o.f ?? 1,
    clientCount,
    crypto: fakeCrypto,
    service: o.service,
    parameters: o.params === 'sim' ? simParams : runtimeParams,
    network: { delayMsMin: 1, delayMsMax: o.delayMax ?? 5, lossRate: o.lossRate ?? 0 },
    tickMs: o.params === 'sim' ? 5 : 10,
    channelIntegrity: o.seed % 2 === 0,
    certificateWork: o.seed % 4 < 2 ? 'host' : 'inline',
  });
  const sim = c.sim;
  o.onCluster?.(c);
  // ring-level certification: update digests any replica emitted a certificate for
  const ringCertified = new Set<string>();
  const completedOps = new Map<string, { seq: number; atMs: number }>();
  sim.onOutput((node, e) => {
    if (e.kind === 'certificate') {
      for (const st of e.statements) {
        try {
          ringCertified.add(toHex(certificateStatementFromTuple(decode(st, 4096)).updateDigest));
        } catch {
          /* heartbeat */
        }
      }
    } else if (e.kind === 'completed') {
      const d = c.submittedUpdates.get(`${e.clientKeyHex}:${e.nonce}`);
      if (d) completedOps.set(d, { seq: e.seq, atMs: sim.nowMs });
    }
  });
  const writers: Writer[] = c.clientIds.map(() => ({ nonce: 1, uploading: null, pendingOp: null, done: 0, submitted: 0, inFlightOp: null, inFlightSinceMs: 0, abandoned: 0 }));
  // block-stored acks, watched on the replicas' way out
  const liar = o.liar;
  const lie = liar?.behaviours === 'withhold-shares'
    ? (m: RingMessage): RingMessage[] => (m.kind === 'share' ? [] : [m])
    : liar
    ? byzantineInterceptor(liar.behaviours, c.crypto, signerOf(c.crypto, secretKeyFor(c.crypto, o.seed, 'replica', liar.replica)), {
        replica: () => c.replica(liar.replica),
        prefixRandom: new Prng(o.seed).fork('liar'),
      })
    : null;
  for (const id of c.replicaIds) {
    const lies = lie !== null && id === c.replicaIds[liar!.replica];
    sim.setInterceptor(id, (m: RingMessage, to: string, messageRandom) => {
      if (lies) return lie(m, to, messageRandom).flatMap((out) => honest(out, to));
      return honest(m, to);
    });
    const honest = (m: RingMessage, to: string): RingMessage[] => {
      o.watch?.(id, to, m, sim.nowMs);
      if (armed === 'after-block-data' && m.kind === 'block-data') crashNow = true;
      if (m.kind === 'block-stored') {
        const i = c.clientIds.indexOf(to);
        const u = i >= 0 ? writers[i]!.uploading?.get(toHex(m.bguid)) : undefined;
        if (u) u.acks.add(id);
      }
      return [m];
    };
  }
  const blockBytes = o.blockBytes ?? 4096;
  const blocksMax = o.blocksMax ?? 6;
  let salt = 0;
  const makeOp = (i: number): { op: Uint8Array; blocks: Uint8Array[] } => {
    const w = writers[i]!;
    const signer = c.clientSigners[i]!;
    if (o.service === 'kv') {
      const key = kvKeyFor(signer.publicKey, random.pick(['a', 'b', 'c']));
      return { op: kvOperation(key, random.chance(0.1) ? random.int(4) : -1, random.bytes(1 + random.int(64))), blocks: [] };
    }
    const nonce = w.nonce++;
    const aguid = aguidOf(c.crypto, signer.publicKey, 'obj');
    let clause: Clause;
    let blocks: Uint8Array[] = [];
    const real = o.workload === 'real' ? i % 3 : -1;
    const ifv = (): Clause['predicates'] => [random.chance(0.8) ? { kind: 'version-is', version: nonce - 1 } : { kind: 'always' }];
    if (nonce === 1) {
      clause = { predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name: 'obj', blockBytes: real === 1 ? 65536 : real >= 0 ? 4096 : blockBytes, fanoutMax: real >= 0 ? 16 : 4, writerPublicKeys: [] }] };
    } else if (real === 0) {
      clause = { predicates: ifv(), actions: [{ kind: 'truncate', sizeBytes: 0 }, { kind: 'append', bytes: random.bytes(4096) }] };
    } else if (real === 2) {
      clause = { predicates: ifv(), actions: [{ kind: 'append', bytes: random.bytes(1000) }] };
    } else if (real === 1) {
      blocks = Array.from({ length: 5 }, (_, k) => {
        const b = random.bytes(k === 4 ? 300 * 1024 - 4 * 65536 : 65536);
        new DataView(b.buffer).setUint32(0, salt++);
        return b;
      });
      clause = {
        predicates: ifv(),
        actions: [{ kind: 'truncate', sizeBytes: 0 }, { kind: 'append-blocks', blocks: blocks.map((b) => ({ kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: b.length })) }],
      };
    } else if (random.chance(0.7)) {
      const k = 1 + random.int(blocksMax);
      blocks = Array.from({ length: k }, () => {
        const b = random.bytes(8 + random.int(blockBytes - 8));
        new DataView(b.buffer).setUint32(0, salt++);
        return b;
      });
      clause = {
        predicates: [random.chance(0.2) ? { kind: 'version-is', version: random.int(nonce) } : { kind: 'always' }],
        actions: [{ kind: 'append-blocks', blocks: blocks.map((b) => ({ kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: b.length })) }],
      };
    } else {
      clause = { predicates: [{ kind: 'always' }], actions: [{ kind: 'append', bytes: random.bytes(1 + random.int(3000)) }] };
    }
    return { op: encodeUpdate(signUpdate(c.crypto, signer, { aguid, writerPublicKey: signer.publicKey, nonce, clauses: [clause] })), blocks };
  };
  const skipPut = o.skipPutProb ?? 0.3;
  const putAll = (i: number, bytes: Uint8Array, to: readonly string[]) => {
    for (const id of to) sim.send(c.clientIds[i]!, id, { kind: 'put-block', block: bytes });
  };
  let stopWriting = false;
  const drive = () => {
    c.clientIds.forEach((_, i) => {
      const w = writers[i]!;
      const client = c.client(i)!;
      if (c.completed[i]! > w.done) w.inFlightOp = null;
      w.done = c.completed[i]!;
      if (w.inFlightOp && o.abandonMs && sim.nowMs - w.inFlightSinceMs >= o.abandonMs) {
        const effects = client.abandon(w.inFlightOp, sim.nowMs);
        for (const e of effects ?? []) if (e.kind === 'send') sim.send(c.clientIds[i]!, e.to, e.message);
        w.inFlightOp = null;
        w.abandoned++;
        log(`${sim.nowMs.toFixed(0)} client ${i} abandons op (completed ${c.completed[i]})`);
      }
      if (w.uploading && o.abandonMs && sim.nowMs - w.inFlightSinceMs >= o.abandonMs) {
        log(`${sim.nowMs.toFixed(0)} client ${i} abandons upload acks ${[...w.uploading.values()].map((u) => u.acks.size).join('/')}`);
        w.uploading = null;
        w.pendingOp = null;
        w.abandoned++;
      }
      if (w.uploading) {
        const acks = [...w.uploading.values()].every((u) => u.acks.size >= 2 * (o.f ?? 1) + 1);
        if (acks) {
          w.inFlightOp = w.pendingOp;
          w.inFlightSinceMs = sim.nowMs;
          c.submit(i, w.pendingOp!);
          w.submitted++;
          w.uploading = null;
          w.pendingOp = null;
          return;
        }
        for (const u of w.uploading.values()) {
          if (u.acks.size < 2 * (o.f ?? 1) + 1 && sim.nowMs - u.sentMs >= (o.putResendMs ?? 500)) {
            u.sentMs = sim.nowMs;
            putAll(i, u.bytes, c.replicaIds.filter((id) => !u.acks.has(id)));
          }
        }
        return;
      }
      if (stopWriting || client.backlog > 0) return;
      const { op, blocks } = makeOp(i);
      w.inFlightSinceMs = sim.nowMs;
      if (blocks.length === 0) {
        w.inFlightOp = op;
        c.submit(i, op);
        w.submitted++;
        return;
      }
      w.pendingOp = op;
      w.uploading = new Map();
      for (const b of blocks) {
        w.uploading.set(toHex(bguidOf(c.crypto, 'data', b)), { bytes: b, acks: new Set(), sentMs: sim.nowMs });
        // sometimes one replica misses the first upload (it is acked by the other three)
        const skip = random.chance(skipPut) ? random.pick(c.replicaIds) : null;
        putAll(i, b, c.replicaIds.filter((id) => id !== skip));
      }
    });
  };
  const step = (ms: number) => {
    const end = sim.nowMs + ms;
    while (sim.nowMs < end) {
      sim.runFor(5);
      drive();
    }
  };
  const runUntil = (cond: () => boolean, maxMs: number): boolean => {
    const end = sim.nowMs + maxMs;
    while (sim.nowMs < end) {
      if (cond()) return true;
      sim.runFor(5);
      drive();
    }
    return cond();
  };
  const total = () => c.completed.reduce((a, b) => a + b, 0);

  // crash machinery
  let crashNow = false;
  let armed: CrashWhen | null = null;
  sim.onOutput((_node, e) => {
    if (!armed) return;
    if (armed === 'after-view-installed' && e.kind === 'view-installed') crashNow = true;
    if (armed === 'after-state-transfer' && e.kind === 'state-transferred') crashNow = true;
    if (e.kind !== 'executed') return;
    if (armed === 'after-execute' || (armed === 'after-checkpoint-exec' && e.seq % (o.params === 'sim' ? 4 : 16) === 0)) crashNow = true;
  });
  let crashedAt = -1;
  sim.onStep(() => {
    if (!crashNow) return;
    crashNow = false;
    armed = null;
    crashAll();
  });
  const crashAll = () => {
    crashedAt = sim.nowMs;
    for (const id of c.replicaIds) if (sim.isUp(id)) sim.crash(id);
  };
  const restartAll = () => {
    if (o.stagger) {
      const order = random.shuffle([...c.replicaIds]);
      for (const id of order) {
        if (!sim.isUp(id)) sim.restart(id);
        step(random.int(300));
      }
    } else for (const id of c.replicaIds) if (!sim.isUp(id)) sim.restart(id);
  };
  const doCrash = (when: CrashWhen, label: string): boolean => {
    if (when === 'random') {
      crashAll();
    } else {
      armed = when;
      const up = runUntil(() => crashedAt >= 0 && !sim.isUp(c.replicaIds[0]!), o.params === 'sim' ? 3000 : 10000);
      if (!up) {
        armed = null;
        crashAll();
      }
    }
    crashedAt = -1;
    log(`${label} at ${sim.nowMs.toFixed(1)} total=${total()}`);
    step(o.downMs ?? 100);
    restartAll();
    log(`restarted at ${sim.nowMs.toFixed(1)}`);
    return true;
  };

  const warm = o.params === 'sim' ? 200 + random.int(1500) : 1000 + random.int(6000);
  const okWarm = runUntil(() => sim.nowMs >= warm && total() >= clientCount, 30_000);
  if (!okWarm) return { ok: false, detail: `no progress before any crash\n${describeReplicas(c)}`, cluster: c };
  const crashes = o.crashes ?? 2;
  const when = o.crashWhen ?? 'random';
  if (crashes > 0) doCrash(when, 'crash 1');
  for (let k = 2; k <= crashes; k++) {
    if (o.secondAfter === 'one-write') {
      const before = [...c.completed];
      runUntil(() => c.completed.every((n, i) => n > before[i]!), 60_000);
    } else step(random.int(o.params === 'sim' ? 1000 : 4000));
    doCrash(when, `crash ${k}`);
  }
  // liveness: every client completes 5 more, within liveMs
  const liveMs = o.liveMs ?? (o.params === 'sim' ? 20_000 : 90_000);
  const target = c.completed.map((n) => n + 5);
  const live = runUntil(() => c.completed.every((n, i) => n >= target[i]!), liveMs);
  stopWriting = true;
  if (!live) {
    return {
      ok: false,
      detail: `liveness: completed ${c.completed.join(',')} target ${target.join(',')} at ${sim.nowMs.toFixed(0)}\n${describeReplicas(c)}\nclients: ${c.clientIds.map((_, i) => `${i}: abandoned=${writers[i]!.abandoned} backlog=${c.client(i)!.backlog} uploading=${writers[i]!.uploading ? [...writers[i]!.uploading!.values()].map((u) => u.acks.size).join('/') : '-'}`).join('; ')}`,
      cluster: c,
    };
  }
  if (o.checkCertificates !== false && o.service !== 'kv') {
    const uncertified = () => [...completedOps].filter(([d]) => !ringCertified.has(d));
    const certifiedAll = runUntil(() => uncertified().length === 0, 30_000);
    if (!certifiedAll) {
      const u = uncertified();
      return {
        ok: false,
        detail: `certificates: ring never certified ${u.length} completed updates: ${u.slice(0, 8).map(([, v]) => `seq ${v.seq} @${v.atMs.toFixed(0)}`).join(' ')}; clients completed ${c.completed.join(',')} certified ${c.certified.join(',')} at ${sim.nowMs.toFixed(0)}\n${describeReplicas(c)}\n${c.replicaIds.map((_, i) => { const r = c.replica(i)!; const cs = r.certificateState; return `r${i}: certifiedThrough=${cs.certifiedThrough} leavesFloor=${cs.leavesFloor} executed=${[...cs.executed.keys()].join(',')}`; }).join('\n')}`,
        cluster: c,
      };
    }
  }
  return { ok: true, detail: `ok completed=${c.completed.join(',')} certified=${c.certified.join(',')} t=${sim.nowMs.toFixed(0)}`, cluster: c };
}
