/**
 * A reconfigurable ring in the deterministic simulator (issue 10): 3f+1 ReconfiguringReplicas
 * over the versioned key-value service with real threshold BLS (resharing needs the real
 * scheme), writer clients, and an admin client that orders reconfigure records. Every
 * certificate a combiner emits is recorded with the epoch its batch header named, so tests can
 * check it against the ring public key on their own.
 */
import { assert } from '../core/assert.ts';
import { signerOf, type Crypto, type Signer } from '../core/crypto.ts';
import type { MachineContext, RandomSource } from '../core/machine.ts';
import { dealRingKey, type DealtRingKey } from '../core/threshold/dealer.ts';
import { RingKeyVerifier } from '../core/threshold/signing.ts';
import { Simulation, type NetworkOptions } from '../sim/simulation.ts';
import { Prng } from '../sim/prng.ts';
import { blsCertificateVerifier } from './bls-certificate-signer.ts';
import { clientFactory, type RingClient } from './client.ts';
import { cloneRingMessage } from './codec.ts';
import type { ProtocolParameters, RingMember } from './config.ts';
import { KvService } from './kv-service.ts';
import type { RingMessage } from './messages.ts';
import type { DealerBehaviour, ReconfigurationOutput } from './reconfiguration-agent.ts';
import { encodeReconfigurationRecord, type ReconfigurationAction, type SubShareCipher } from './reconfiguration-codec.ts';
import { ReconfiguringReplica, type ReconfiguringOutput } from './reconfiguration-replica.ts';
import { describeRingMessage, hostWorkDelayMs, secretKeyFor, simRingId } from './sim-cluster.ts';

export interface ReconfigurationSimOptions {
  readonly seed: number;
  readonly f: number;
  readonly writerCount: number;
  readonly crypto: Crypto;
  /** Builds a member's sub-share cipher from its ed25519 secret (runtime/reconfiguration-cipher.ts in tests). */
  readonly cipherFor: (secretKey: Uint8Array, random: RandomSource) => SubShareCipher;
  /** Replica index → misbehaviour as a dealer. */
  readonly dealers?: ReadonlyMap<number, DealerBehaviour>;
  readonly phaseMs?: number;
  /** Also run `ring-<n>`, a spare that can replace a member (membership change switched on everywhere). */
  readonly spare?: boolean;
  /** The member index (0-based) the spare is built to replace (default: the last). */
  readonly spareReplaces?: number;
  /** Also run `ring-<n+1>`, a second spare built to replace this member index after the first spare's replacement. */
  readonly secondSpareReplaces?: number;
  readonly parameters?: Partial<ProtocolParameters>;
  readonly network?: Partial<NetworkOptions>;
  /** ReplicaConfig.certificateWork; with 'host' each piece is answered 1-7 virtual ms later, across switches too. */
  readonly certificateWork?: 'inline' | 'host';
}

export interface CertificateSeen {
  readonly replica: number;
  readonly seq: number;
  readonly root: Uint8Array;
  readonly leafCount: number;
  readonly signature: Uint8Array;
  /** The epoch the combiner's batch header named. */
  readonly epoch: number;
}

export interface ReconfigurationSim {
  readonly sim: Simulation<RingMessage, ReconfiguringOutput>;
  readonly members: readonly RingMember[];
  readonly key: DealtRingKey;
  readonly admin: Signer;
  /** The spare's member entry (with `spare`). */
  readonly spareMember: RingMember | null;
  /** The second spare's member entry (with `secondSpareReplaces`). */
  readonly secondSpareMember: RingMember | null;
  readonly writers: readonly Signer[];
  /** Writes completed (f+1 matching replies) per writer. */
  readonly completed: number[];
  readonly certificates: CertificateSeen[];
  readonly agentOutputs: ReconfigurationOutput[];
  replica(index: number): ReconfiguringReplica | null;
  writer(index: number): RingClient | null;
  /** Submits an operation from writer `index` (or the admin, index -1). */
  submit(index: number, operation: Uint8Array): void;
  /** The admin orders a reconfiguration that starts `epoch`. */
  reconfigure(epoch: number, action: ReconfigurationAction): void;
  /** Every client that is up takes `members` as the ring (as runtime clients take a re-signed descriptor). */
  setClientMembers(members: readonly RingMember[]): void;
}

const adminId = 'admin';

export function buildReconfigurationSim(options: ReconfigurationSimOptions): ReconfigurationSim {
  const { f, crypto, seed } = options;
  const n = 3 * f + 1;
  const key = dealRingKey(new Prng(seed).fork('dealer'), n, f + 1);
  const ring = new RingKeyVerifier(key, n);
  const certificateVerifier = blsCertificateVerifier(ring);
  const secrets = Array.from({ length: n }, (_, i) => secretKeyFor(crypto, seed, 'replica', i));
  const signers = secrets.map((s) => signerOf(crypto, s));
  const members: RingMember[] = signers.map((s, i) => ({ id: `ring-${i}`, publicKey: s.publicKey }));
  const admin = signerOf(crypto, secretKeyFor(crypto, seed, 'admin', 0));
  const writers = Array.from({ length: options.writerCount }, (_, i) => signerOf(crypto, secretKeyFor(crypto, seed, 'client', i)));
  const sim = new Simulation<RingMessage, ReconfiguringOutput>({
    seed, tickMs: 5, network: options.network, cloneMessage: cloneRingMessage, describeMessage: describeRingMessage,
  });
  const parameters = { heartbeatIntervalMs: 200, ...options.parameters };
  members.forEach((m, i) => {
    sim.addNode(m.id, (ctx: MachineContext) => new ReconfiguringReplica(ctx, {
      members, f, crypto, signer: signers[i]!, certificateVerifier,
      service: (store) => new KvService(crypto, store),
      ringId: simRingId, parameters,
      adminPublicKey: admin.publicKey, initialKey: key, initialShare: key.shares[i]!,
      cipher: options.cipherFor(secrets[i]!, ctx.random), phaseMs: options.phaseMs ?? 1500, resubmitMs: 300,
      behaviour: options.dealers?.get(i) ?? 'honest', membershipChange: options.spare, certificateWork: options.certificateWork,
    }));
  });
  const spareSecret = secretKeyFor(crypto, seed, 'replica', n);
  const spareMember: RingMember | null = options.spare ? { id: `ring-${n}`, publicKey: signerOf(crypto, spareSecret).publicKey } : null;
  if (spareMember) {
    // It starts as the replacement of one member: that list is the one it will vote in.
    const replaced = options.spareReplaces ?? n - 1;
    const future = members.map((m, i) => (i === replaced ? spareMember : m));
    sim.addNode(spareMember.id, (ctx: MachineContext) => new ReconfiguringReplica(ctx, {
      members: future, initialMembers: members, f, crypto, signer: signerOf(crypto, spareSecret), certificateVerifier,
      service: (store) => new KvService(crypto, store), ringId: simRingId, parameters,
      adminPublicKey: admin.publicKey, initialKey: key, initialShare: null, membershipChange: true,
      cipher: options.cipherFor(spareSecret, ctx.random), phaseMs: options.phaseMs ?? 1500, resubmitMs: 300, certificateWork: options.certificateWork,
    }));
  }
  const secondSecret = secretKeyFor(crypto, seed, 'replica', n + 1);
  const secondSpareMember: RingMember | null = spareMember && options.secondSpareReplaces !== undefined ? { id: `ring-${n + 1}`, publicKey: signerOf(crypto, secondSecret).publicKey } : null;
  if (secondSpareMember) {
    const first = options.spareReplaces ?? n - 1;
    const future = members.map((m, i) => (i === options.secondSpareReplaces ? secondSpareMember : i === first ? spareMember! : m));
    sim.addNode(secondSpareMember.id, (ctx: MachineContext) => new ReconfiguringReplica(ctx, {
      members: future, initialMembers: members, f, crypto, signer: signerOf(crypto, secondSecret), certificateVerifier,
      service: (store) => new KvService(crypto, store), ringId: simRingId, parameters,
      adminPublicKey: admin.publicKey, initialKey: key, initialShare: null, membershipChange: true,
      cipher: options.cipherFor(secondSecret, ctx.random), phaseMs: options.phaseMs ?? 1500, resubmitMs: 300, certificateWork: options.certificateWork,
    }));
  }
  const clientIds = [adminId, ...writers.map((_, i) => `client-${i}`)];
  [admin, ...writers].forEach((signer, i) => {
    sim.addNode(clientIds[i]!, clientFactory({ members, f, crypto, signer, certificateVerifier, retransmitMs: 300, ringId: simRingId }) as never);
  });
  const out: ReconfigurationSim = {
    sim, members, key, admin, writers, spareMember, secondSpareMember,
    completed: writers.map(() => 0),
    certificates: [],
    agentOutputs: [],
    replica: (i) => sim.machine(i === n && spareMember ? spareMember.id : i === n + 1 && secondSpareMember ? secondSpareMember.id : members[i]!.id) as ReconfiguringReplica | null,
    writer: (i) => sim.machine(clientIds[i + 1]!) as unknown as RingClient | null,
    submit(index, operation) {
      const id = clientIds[index + 1]!;
      const client = sim.machine(id) as unknown as RingClient | null;
      assert(client, `${id} is down`);
      for (const e of client.submit(operation, sim.nowMs)) if (e.kind === 'send') sim.send(id, e.to, e.message);
    },
    reconfigure(epoch, action) {
      out.submit(-1, encodeReconfigurationRecord({ kind: 'reconfigure', epoch, action }));
    },
    setClientMembers(next) {
      for (const id of clientIds) {
        const client = sim.machine(id) as unknown as RingClient | null;
        if (client) for (const e of client.setMembers([...next])) if (e.kind === 'send') sim.send(id, e.to, e.message);
      }
    },
  };
  let jobs = 0;
  sim.onOutput((node, event) => {
    if (event.kind === 'completed') {
      const i = clientIds.indexOf(node) - 1;
      if (i >= 0) out.completed[i]!++;
    } else if (event.kind === 'certificate') {
      const r = out.replica(event.replica);
      out.certificates.push({
        replica: event.replica, seq: event.seq, root: event.root, leafCount: event.statements.length, signature: event.signature,
        epoch: r ? r.state.epochAt(event.seq) : -1,
      });
    } else if (event.kind === 'share-installed' || event.kind === 'old-share-deleted' || event.kind === 'retired') {
      out.agentOutputs.push(event);
    } else if (event.kind === 'certificate-work') {
      const result = event.run();
      sim.later(node, hostWorkDelayMs(jobs++), `certificate-${event.work.op}`, (machine, nowMs) => (machine as ReconfiguringReplica).onCertificateWork(event.token, result, nowMs));
    }
  });
  return out;
}
