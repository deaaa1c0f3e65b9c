/**
 * A ring replica that can be reconfigured (issue 10): the PBFT Replica running its service inside
 * a ReconfigurationService, certifying with an EpochCertificateSigner, and the member's
 * ReconfigurationAgent beside it. The agent's records are ordinary signed client requests sent to
 * every member (the primary batches them like any update); replies to them are not needed — the
 * agent watches the executed state — so the composite swallows replies addressed to it.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import type { KeyShare, RingKeyPublic } from '../core/threshold/dealer.ts';
import { resolveParameters, type ReplicaConfig, type RingMember } from './config.ts';
import type { Checkpoint, RingMessage } from './messages.ts';
import type { CertificateWorkResult, RingOutput } from './outputs.ts';
import { ReconfigurationAgent, type DealerBehaviour, type ReconfigurationOutput } from './reconfiguration-agent.ts';
import type { SubShareCipher } from './reconfiguration-codec.ts';
import type { HashedCache } from './bls-certificate-signer.ts';
import { EpochCertificateSigner } from './reconfiguration-signer.ts';
import { ReconfigurationService } from './reconfiguration-service.ts';
import { sameMembers, type EpochInfo, type ReconfigurationState } from './reconfiguration-state.ts';
import { Replica } from './replica.ts';
import { carryExecutionTimes, certifiedOrClaimedThrough, oldestUncertifiedSeq } from './replica-certificates.ts';
import { startViewChange } from './replica-view-change.ts';
import { saveStable } from './replica-store.ts';
import { checkpointProofDigest } from './proofs.ts';
import { signMessage } from './signing.ts';
import type { ReplicatedService } from './service.ts';

export interface ReconfiguringReplicaConfig extends Omit<ReplicaConfig, 'certificateSigner' | 'service' | 'epoch'> {
  /** The wrapped service (object service in production). */
  readonly service: (store: KvStore) => ReplicatedService;
  /** The responsible party's ed25519 key: the only client that may start a round. */
  readonly adminPublicKey: Uint8Array;
  /** Epoch 0's key (the dealer's commitments from `cluster init`). */
  readonly initialKey: RingKeyPublic;
  /** This member's epoch-0 share; later shares live in the store. */
  readonly initialShare: KeyShare | null;
  readonly cipher: SubShareCipher;
  /** Agreed ms a resharing phase waits for silent members (default 4000). */
  readonly phaseMs?: number;
  /** Resend an unexecuted record after this long (default 500). */
  readonly resubmitMs?: number;
  /** Test hook: a Byzantine dealer. */
  readonly behaviour?: DealerBehaviour;
  /** Epoch 0's members when this replica starts with another list (a server joining by replacement). */
  readonly initialMembers?: readonly RingMember[];
  /** Accept `replace` rounds: PBFT switches its member list at the boundary. */
  readonly membershipChange?: boolean;
  /** Hashes to G1 shared with this replica's certificate verifier (one hash per span header, not two). */
  readonly hashedCache?: HashedCache;
}

/** A batch certificate output also names the epoch its header carries (consumers rebuild the header). */
export type EpochCertificateOutput = Extract<RingOutput, { kind: 'certificate' }> & { readonly epoch: number };
export type ReconfiguringOutput = Exclude<RingOutput, { kind: 'certificate' }> | EpochCertificateOutput | ReconfigurationOutput;

export class ReconfiguringReplica implements Machine<RingMessage, ReconfiguringOutput> {
  replica: Replica;
  private readonly ctx: MachineContext;
  private readonly replicaConfig: ReplicaConfig;
  /** Agreement messages dropped because they lie above a pending membership switch. */
  fencedCount = 0;
  switchCount = 0;
  /** Switches made while statements at or below the boundary were still uncertified here (the wait ran out; the new list certifies them). */
  switchesWithoutCertificates = 0;
  /** When this replica could first have switched at the pending boundary but waited for its certificates. */
  private switchReadyMs: number | null = null;
  readonly agent: ReconfigurationAgent;
  readonly signer: EpochCertificateSigner;
  private service!: ReconfigurationService;
  private readonly memberKeyHex: string;
  /**
   * While a switch is pending: staying members' signed checkpoints at the boundary (first seq - 1),
   * kept even when the replica has passed that seq, so a staying-only proof can still be made.
   */
  private readonly boundaryVotes = new Map<number, Checkpoint>();
  private boundaryVoteSentMs = -Infinity;
  /** The staying-only proof of the boundary this replica last switched at (empty: none). */
  private switchProof: Checkpoint[] = [];
  private checkedProof: { proof: readonly Checkpoint[]; epoch: number; valid: boolean } | null = null;
  /** When each member last got our switch proof (answers are rate-limited). */
  private readonly proofRepliesMs = new Map<string, number>();

  constructor(ctx: MachineContext, config: ReconfiguringReplicaConfig) {
    const params = resolveParameters(config.parameters);
    this.agent = new ReconfigurationAgent({
      nodeId: ctx.nodeId, crypto: config.crypto, signer: config.signer, cipher: config.cipher, random: ctx.random,
      store: ctx.store, initialShare: config.initialShare, resubmitMs: config.resubmitMs ?? 500, behaviour: config.behaviour,
    });
    this.signer = new EpochCertificateSigner(config.f + 1, config.members.length, {
      shareFor: (epoch) => this.agent.shareFor(epoch, this.state),
      keyOf: (epoch) => {
        const info = this.state.epochInfo(epoch);
        return info && { threshold: config.f + 1, publicKey: info.commitments[0]!, commitments: info.commitments };
      },
    }, config.hashedCache);
    const options = {
      adminPublicKey: config.adminPublicKey, f: config.f, initialMembers: config.initialMembers ?? config.members, initialKey: config.initialKey,
      checkpointInterval: params.checkpointInterval, phaseMs: config.phaseMs ?? 4000, membershipChange: config.membershipChange,
    };
    this.ctx = ctx;
    this.replicaConfig = {
      ...config,
      certificateSigner: this.signer,
      // A span certificate's header names its last seq; the epoch of that seq picks the shares.
      epochAt: (seq) => this.state.epochAt(seq),
      agreementLimit: () => {
        // Asked by the replica being built too, before this.replica and the service exist.
        const next = (this.replica as Replica | undefined) && this.service ? this.pendingMembership() : null;
        return next ? next.firstSeq - 1 : Infinity;
      },
      service: (store) => (this.service = new ReconfigurationService(config.service(store), store, options)),
    };
    this.replica = new Replica(ctx, this.replicaConfig);
    this.memberKeyHex = toHex(config.signer.publicKey);
  }

  get state(): ReconfigurationState {
    return this.service.state;
  }

  onMessage(from: string, message: RingMessage, nowMs: number): Effect<RingMessage, ReconfiguringOutput>[] {
    // Replies and certificates for the agent's own records: the agent reads the state instead.
    if (message.kind === 'reply' || message.kind === 'certificate' || message.kind === 'nonce-passed') return [];
    if (this.fenced(message)) {
      this.fencedCount++;
      return [];
    }
    if (message.kind === 'checkpoint') {
      this.noteBoundaryVote(message);
      // A staying member still waiting to switch resends its boundary checkpoint: it may lack the
      // staying members' votes (sent while it was down), so answer with our staying-only proof.
      // Only to the member the checkpoint names, once a second at most (it resends each second).
      const lastMs = this.proofRepliesMs.get(from) ?? -Infinity;
      if (message.seq === this.switchProof[0]?.seq && message.replica !== this.replica.me && this.replica.config.members[message.replica]?.id === from && nowMs - lastMs >= 1000) {
        this.proofRepliesMs.set(from, nowMs);
        return [{ kind: 'send', to: from, message: { kind: 'checkpoint-proof', checkpoints: this.switchProof } }];
      }
    }
    // A proof from a member that switched already is staying-only (the fence let it through).
    // One entry per replica index at most: a long hostile list costs no more checks than n.
    if (message.kind === 'checkpoint-proof') {
      const tried = new Set<number>();
      for (const cp of message.checkpoints) {
        if (tried.has(cp.replica)) continue;
        tried.add(cp.replica);
        this.noteBoundaryVote(cp);
      }
    }
    const out = this.withEpochs(this.replica.onMessage(from, message, nowMs));
    this.maybeSwitch(nowMs);
    for (const event of this.agent.takeOutputs()) out.push({ kind: 'output', event });
    return out;
  }

  onTick(nowMs: number): Effect<RingMessage, ReconfiguringOutput>[] {
    const out = this.withEpochs(this.replica.onTick(nowMs));
    this.maybeSwitch(nowMs);
    out.push(...this.resendBoundaryVote(nowMs));
    const view = {
      state: this.state,
      lastExecuted: this.replica.lastExecuted,
      checkpointInterval: this.replica.params.checkpointInterval,
      executedNonce: this.replica.clients.get(this.memberKeyHex)?.nonce ?? 0,
      oldestUncertified: oldestUncertifiedSeq(this.replica),
      // As long as the certificate path takes to give statements up (giveUpStale's age), plus a switch's wait.
      oldShareGraceMs: (2 * this.replica.n + 2) * this.replica.params.certifyTakeoverMs,
    };
    for (const request of this.agent.onTick(view, nowMs)) {
      for (const m of this.state.current.members) out.push({ kind: 'send', to: m.id, message: request });
    }
    for (const event of this.agent.takeOutputs()) out.push({ kind: 'output', event });
    return out;
  }

  /** The host's result of certificate work (Replica.onCertificateWork); work asked before a switch is dropped. */
  onCertificateWork(token: object, result: CertificateWorkResult, nowMs: number): Effect<RingMessage, ReconfiguringOutput>[] {
    return this.withEpochs(this.replica.onCertificateWork(token, result, nowMs));
  }

  /**
   * The epoch whose member list this replica switches to next, if any. That is the first epoch
   * after the one whose list it runs that has another list; and when the list it runs comes
   * nowhere at or after the epoch in force just past its stable checkpoint (a staying member
   * restarted with its config's list after a switch), that epoch, whose boundary it has passed.
   * Not simply the newest epoch: after a replacement and then a refresh, a member restarted
   * between the refresh's install and its boundary would otherwise wait for the refresh's
   * boundary under the list before the replacement, which no longer agrees on anything, and
   * stall for good (session 32's two-round sweep, seed 20). A spare runs the list that will bring
   * it in: before that epoch is installed, the epoch in force is pending (it is no member of it, so
   * it never switches to it, and agrees on nothing until its own epoch is installed).
   */
  private pendingMembership(): EpochInfo | null {
    // Called for every message: only the epochs from the one in force on are looked at (usually
    // one or two), found from the newest end.
    const epochs = this.state.epochs;
    const running = this.replica.config.members;
    let inForce = epochs.length - 1;
    while (inForce > 0 && epochs[inForce]!.firstSeq > this.replica.stableSeq + 1) inForce--;
    let i = inForce;
    while (i < epochs.length && !sameMembers(epochs[i]!.members, running)) i++;
    if (i === epochs.length) return epochs[inForce]!;
    while (i < epochs.length && sameMembers(epochs[i]!.members, running)) i++;
    return epochs[i] ?? null;
  }

  /**
   * While a member switch is pending: no slot at or above the new epoch's first seq may be agreed
   * under the old list (senders retransmit; after the switch they are judged under the new one),
   * and the leaving member's checkpoints are not counted, so the stable checkpoint the switch
   * waits for — and every proof the new list will check later — is signed by staying members only.
   */
  private fenced(m: RingMessage): boolean {
    const next = this.pendingMembership();
    if (!next) return false;
    const leaving = (i: number) => next.members[i]?.id !== this.replica.config.members[i]?.id;
    if (m.kind === 'checkpoint') return leaving(m.replica);
    if (m.kind === 'checkpoint-proof') return m.checkpoints.some((c) => leaving(c.replica));
    const seq = m.kind === 'pre-prepare' || m.kind === 'prepare' || m.kind === 'commit' ? m.seq : m.kind === 'commit-proof' ? m.prePrepare.seq : null;
    return seq !== null && seq >= next.firstSeq;
  }

  /**
   * Once the checkpoint at the boundary is stable and proved by staying members, rebuild the replica
   * from its store with the new member list — if this node is in it; a leaving one keeps the old
   * list, fenced, until it is stopped. A replica can reach the boundary with a proof that names the
   * leaving member (it took that proof, by state transfer, before it had executed the record that
   * scheduled the switch, so the fence did not apply yet): it then waits for 2f+1 staying members'
   * checkpoints at the boundary (boundaryVotes, which every pending member resends) and stores
   * that proof instead, since the new list would refuse the other in every later view change and
   * state transfer.
   */
  private maybeSwitch(nowMs: number): void {
    const next = this.pendingMembership();
    const boundary = next ? next.firstSeq - 1 : 0;
    if (!next || this.replica.stableSeq < boundary) return;
    if (!next.members.some((m) => m.id === this.ctx.nodeId)) return;
    if (this.awaitingBoundaryCertificates(boundary, nowMs)) return;
    if (!this.provedUnder(next)) {
      if (this.replica.stableSeq !== boundary) return;
      const digest = this.replica.stableProof[0]!.stateDigest;
      const proof = [...this.boundaryVotes.values()].filter((c) => c.seq === boundary && bytesEqual(c.stateDigest, digest));
      if (proof.length < this.replica.quorum) return;
      this.replica.quiesce();
      saveStable(this.ctx.store, boundary, proof.slice(0, this.replica.quorum));
    } else {
      this.replica.quiesce();
    }
    const old = this.replica;
    const waitRanOut = !certifiedOrClaimedThrough(old, boundary);
    this.replica = new Replica({ ...this.ctx, nowMs }, { ...this.replicaConfig, members: next.members });
    // The rebuilt replica holds again the statements at or below the boundary that it has not seen
    // certified (kept in the store, ring/replica-certificates.ts): those only a certifier's claim
    // covered, or all of them if the wait ran out. The new list certifies them: a span ends at the
    // last executed seq, so right after the switch it is signed with the old epoch's shares, which
    // staying members keep a checkpoint interval past the boundary, and longer (boundedly) while
    // they hold such statements (ring/reconfiguration-agent.ts), and once batches of the new
    // epoch have executed it reaches past the boundary and takes the new epoch (the same ring key).
    // They keep the time they executed, so the new list's takeovers do not start their wait over.
    carryExecutionTimes(this.replica, old);
    // Certificates sent to clients are kept for those that ask again (one lost on the way).
    for (const [key, sent] of old.certificateState.sentToClients) this.replica.certificateState.sentToClients.set(key, sent);
    if (waitRanOut) this.switchesWithoutCertificates++;
    this.switchReadyMs = null;
    this.boundaryVotes.clear();
    this.switchProof = [...this.replica.stableProof];
    this.switchCount++;
    // Members reach the switch in whatever views the old list left them in, some believing
    // themselves primary of a view nobody else is in: leaving that view at once gets every member's
    // view change going, and f+1 of them pull the rest into one view (replica-view-change.ts).
    startViewChange(this.replica, this.replica.view + 1);
  }

  /**
   * The rebuild at a switch drops the certifier's claims and its peers' floors, so statements at or
   * below the boundary that are still uncertified go through the new list's rounds (a round more,
   * and maybe a second certificate for statements a claim covered). So the switch first waits until
   * nothing this replica holds at or below the boundary awaits a certificate (certified here, or,
   * on a replica that is no certifier, claimed by a certifier of the view:
   * certifiedOrClaimedThrough). Until session 31 the rebuild gave those statements up, and this
   * wait was all that stood between a slow round and writes never certified. The old
   * list's rounds go on meanwhile: they are not fenced, and staying members keep their old-epoch
   * shares at least a checkpoint interval past the boundary (the leaving member deletes its share at
   * the boundary at the latest, so a round that asked it widens). The wait is bounded by twice the takeover
   * period and by half the request timeout (fenced requests keep that timer running), so a round
   * that cannot finish delays the switch, never stops it.
   */
  private awaitingBoundaryCertificates(boundary: number, nowMs: number): boolean {
    if (certifiedOrClaimedThrough(this.replica, boundary)) return false;
    this.switchReadyMs ??= nowMs;
    const p = this.replica.params;
    return nowMs - this.switchReadyMs < Math.min(2 * p.certifyTakeoverMs, p.requestTimeoutMs / 2);
  }

  /**
   * Whether the replica's stable proof verifies under the new list's keys: a pending member's proof
   * at the boundary that names the leaving member does not; a staying member restarted after the
   * switch (old list from its config) holds a later proof, usually signed by the new member, which
   * does. Checked once per proof (2f+1 signatures).
   */
  private provedUnder(next: EpochInfo): boolean {
    const proof = this.replica.stableProof;
    if (this.checkedProof?.proof !== proof || this.checkedProof.epoch !== next.epoch) {
      const context = { ...this.replica.proofContext, publicKeys: next.members.map((m) => m.publicKey) };
      this.checkedProof = { proof, epoch: next.epoch, valid: checkpointProofDigest(context, this.replica.stableSeq, proof) !== null };
    }
    return this.checkedProof.valid;
  }

  private leaving(next: EpochInfo, index: number): boolean {
    return next.members[index]?.id !== this.replica.config.members[index]?.id;
  }

  /** A staying member's signed checkpoint at the pending boundary, kept for maybeSwitch. */
  private noteBoundaryVote(cp: Checkpoint): void {
    const next = this.pendingMembership();
    if (!next || cp.seq !== next.firstSeq - 1 || this.leaving(next, cp.replica) || this.boundaryVotes.has(cp.replica)) return;
    if (this.replica.signedByReplica(cp)) this.boundaryVotes.set(cp.replica, cp);
  }

  /**
   * While a switch is pending and this staying member holds the boundary state, it resends its
   * signed checkpoint at the boundary every second: members that were down when it was first sent
   * (or that reached the boundary by state transfer, and never sent one) can still make a proof
   * of staying members only.
   */
  private resendBoundaryVote(nowMs: number): Effect<RingMessage, ReconfiguringOutput>[] {
    const next = this.pendingMembership();
    if (!next || nowMs - this.boundaryVoteSentMs < 1000 || this.leaving(next, this.replica.me)) return [];
    const boundary = next.firstSeq - 1;
    const digest = this.replica.checkpointState.own.get(boundary) ?? (this.replica.stableSeq === boundary ? this.replica.stableProof[0]?.stateDigest : undefined);
    if (!digest) return [];
    this.boundaryVoteSentMs = nowMs;
    const vote = signMessage<Checkpoint>(this.replicaConfig.crypto, this.replicaConfig.signer, { kind: 'checkpoint', seq: boundary, stateDigest: digest, replica: this.replica.me });
    this.boundaryVotes.set(this.replica.me, vote);
    return next.members.filter((m, i) => i !== this.replica.me && !this.leaving(next, i)).map((m) => ({ kind: 'send', to: m.id, message: vote }));
  }

  private withEpochs(effects: Effect<RingMessage, RingOutput>[]): Effect<RingMessage, ReconfiguringOutput>[] {
    return effects.map((e) =>
      e.kind === 'output' && e.event.kind === 'certificate' ? { kind: 'output', event: { ...e.event, epoch: this.state.epochAt(e.event.seq) } } : (e as Effect<RingMessage, ReconfiguringOutput>),
    );
  }
}

export function reconfiguringReplicaFactory(config: ReconfiguringReplicaConfig): (ctx: MachineContext) => ReconfiguringReplica {
  return (ctx) => new ReconfiguringReplica(ctx, config);
}

