/**
 * The replicated side of a ring reconfiguration (issue 10): which epoch each sequence number
 * belongs to, the key (Feldman commitments) and members of every epoch, and the round in
 * progress with its ordered resharing transcript. Every replica executes the same records in the
 * same order at the same agreed timestamps, so all reach the same decisions without talking.
 *
 * A round: the admin's reconfigure record opens it (phase `dealing`); old members publish deals
 * (commitments + sealed sub-shares); then new members publish verdicts (`complaining`); dealers
 * answer complaints (`responding`). Each phase closes when everyone has spoken or its deadline
 * (agreed time) passes. The transcript then fixes the new commitments — same ring public key —
 * and the new epoch starts after a checkpoint boundary B above the deciding seq, the next one
 * (⌊seq / K⌋ + 1)·K for a refresh and the second one (⌊seq / K⌋ + 2)·K for a new member list, so
 * every batch with seq > B is certified under the new epoch's shares.
 * Too few qualified dealers aborts the round; the old epoch simply continues.
 */
import { asBytesField, asList, asNullable, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { bytesEqual } from '../core/bytes.ts';
import { checkArgument } from '../core/errors.ts';
import type { RingKeyPublic } from '../core/threshold/dealer.ts';
import { ResharingError } from '../core/threshold/errors.ts';
import { publicKeyBytes } from '../core/threshold/points.ts';
import { ResharingTranscript } from '../core/threshold/resharing.ts';
import type { RingMember } from './config.ts';
import {
  decodeReconfigurationAction,
  decodeReconfigurationRecord,
  reconfigurationActionTuple,
  ringMembersMax,
  type DealRecord,
  type ReconfigurationAction,
  type ReconfigurationRecord,
} from './reconfiguration-codec.ts';

export interface EpochInfo {
  readonly epoch: number;
  /** First sequence number certified under this epoch's shares. */
  readonly firstSeq: number;
  readonly members: readonly RingMember[];
  /** Feldman commitments of this epoch's sharing; commitments[0] is the (unchanging) ring public key. */
  readonly commitments: readonly Uint8Array[];
}

export type RoundPhase = 'dealing' | 'complaining' | 'responding';

export interface ReconfigurationOptions {
  readonly adminPublicKey: Uint8Array;
  readonly f: number;
  /** Epoch 0: the members and key of `cluster init`. */
  readonly initialMembers: readonly RingMember[];
  readonly initialKey: RingKeyPublic;
  /** K: the new epoch starts after a multiple of it. */
  readonly checkpointInterval: number;
  /** Agreed milliseconds each phase waits for silent members. */
  readonly phaseMs: number;
  /** Accept `replace` records (resharing to a new member set; ReconfiguringReplica switches PBFT at the boundary). */
  readonly membershipChange?: boolean;
}

/** One resharing round: its ordered, accepted records replay into the same transcript everywhere. */
export class Round {
  readonly transcript: ResharingTranscript;
  readonly deals = new Map<number, DealRecord>();
  readonly verdicts = new Set<number>();
  /** "dealer:complainer" of every complaint lodged, answered or not. */
  readonly complaints = new Set<string>();
  readonly answered = new Set<string>();

  constructor(
    readonly epoch: number,
    readonly action: ReconfigurationAction,
    readonly oldMembers: readonly RingMember[],
    readonly newMembers: readonly RingMember[],
    oldKey: RingKeyPublic,
    f: number,
    public phase: RoundPhase,
    public phaseSinceMs: number,
    /** Accepted records in execution order (the replayable transcript). */
    readonly log: Uint8Array[] = [],
    /**
     * The seq of the record that opened the round: with the epoch, the round's identity. A retry of
     * an aborted round has the same epoch; what a member made for one (its deal, its verdict) must
     * never go to the other (ring/reconfiguration-agent.ts). 0 in state saved before session 19.
     */
    readonly openedSeq = 0,
  ) {
    this.transcript = new ResharingTranscript({ epoch, oldKey, oldShareCount: oldMembers.length, newShareCount: newMembers.length, newThreshold: f + 1 });
    for (const bytes of log) this.replay(decodeReconfigurationRecord(bytes));
  }

  /** Applies an accepted record to the transcript (also on replay). */
  replay(r: ReconfigurationRecord): void {
    if (r.kind === 'deal') {
      this.deals.set(r.dealerIndex, r);
      this.transcript.onCommitments(r.dealerIndex, r.commitments);
    } else if (r.kind === 'verdict') {
      this.verdicts.add(r.memberIndex);
      for (const dealer of r.complaints) {
        if (this.transcript.onComplaint({ complainerIndex: r.memberIndex, dealerIndex: dealer })) this.complaints.add(`${dealer}:${r.memberIndex}`);
      }
    } else if (r.kind === 'response') {
      this.transcript.onComplaintResponse(r);
      this.answered.add(`${r.dealerIndex}:${r.complainerIndex}`);
    }
  }

  openComplaints(): { dealerIndex: number; complainerIndex: number }[] {
    return [...this.complaints].filter((c) => !this.answered.has(c)).map((c) => {
      const [d, m] = c.split(':').map(Number);
      return { dealerIndex: d!, complainerIndex: m! };
    });
  }

  oldIndexOf(key: Uint8Array): number {
    return this.oldMembers.findIndex((m) => bytesEqual(m.publicKey, key)) + 1;
  }

  newIndexOf(key: Uint8Array): number {
    return this.newMembers.findIndex((m) => bytesEqual(m.publicKey, key)) + 1;
  }
}

/** What became of the last round, for agents and `cluster status`. */
export interface RoundOutcome {
  readonly epoch: number;
  readonly result: 'installed' | 'aborted';
  readonly reason: string;
  readonly decidedSeq: number;
}

export class ReconfigurationState {
  readonly epochs: EpochInfo[];
  round: Round | null = null;
  /**
   * The last round that installed an epoch, kept so its new members can compute their share from
   * its transcript, whenever they get to it. An aborted round does not replace it (a member down
   * for the round that installed the epoch in force could otherwise never compute its share).
   */
  finished: Round | null = null;
  outcome: RoundOutcome | null = null;
  readonly counters = { rejected: 0 };

  constructor(readonly options: ReconfigurationOptions) {
    checkArgument(options.initialMembers.length === 3 * options.f + 1, 'initialMembers', `3f+1 = ${3 * options.f + 1} members`);
    checkArgument(options.initialKey.threshold === options.f + 1, 'initialKey.threshold', `f+1 = ${options.f + 1}`);
    checkArgument(Number.isSafeInteger(options.checkpointInterval) && options.checkpointInterval >= 1, 'checkpointInterval', 'a positive integer');
    this.epochs = [{ epoch: 0, firstSeq: 1, members: options.initialMembers, commitments: options.initialKey.commitments }];
  }

  get current(): EpochInfo {
    return this.epochs[this.epochs.length - 1]!;
  }

  /** The epoch whose shares certify batch `seq`. */
  epochAt(seq: number): number {
    for (let i = this.epochs.length - 1; i >= 0; i--) if (this.epochs[i]!.firstSeq <= seq) return this.epochs[i]!.epoch;
    return 0;
  }

  epochInfo(epoch: number): EpochInfo | undefined {
    return this.epochs.find((e) => e.epoch === epoch);
  }

  /** Closes phases whose deadline passed or whose speakers all spoke. Called before every execution. */
  advance(seq: number, timestampMs: number): boolean {
    const round = this.round;
    if (!round) return false;
    const late = timestampMs >= round.phaseSinceMs + this.options.phaseMs;
    if (round.phase === 'dealing') {
      const dealt = round.oldMembers.every((_, i) => round.deals.has(i + 1));
      if (!dealt && !late) return false;
      round.phase = 'complaining';
      round.phaseSinceMs = timestampMs;
      return true;
    }
    if (round.phase === 'complaining') {
      // A joining member (not in the old list) runs no replica of this ring until the round has
      // installed, so it never speaks: the phase does not wait out its deadline for it.
      const spoke = round.newMembers.every((m, i) => round.verdicts.has(i + 1) || round.oldIndexOf(m.publicKey) === 0);
      if (!spoke && !late) return false;
      if (round.openComplaints().length === 0) {
        this.finish(seq);
        return true;
      }
      round.phase = 'responding';
      round.phaseSinceMs = timestampMs;
      return true;
    }
    if (round.openComplaints().length > 0 && !late) return false;
    this.finish(seq);
    return true;
  }

  private finish(seq: number): void {
    const round = this.round!;
    this.round = null;
    let commitments: readonly Uint8Array[];
    try {
      commitments = round.transcript.newKey().commitments;
    } catch (error) {
      if (!(error instanceof ResharingError)) throw error;
      this.outcome = { epoch: round.epoch, result: 'aborted', reason: error.message, decidedSeq: seq };
      return;
    }
    const k = this.options.checkpointInterval;
    // A new member list starts two checkpoint boundaries up: a replica that has not executed this
    // record yet votes on no slot above (⌊seq/K⌋+2)·K (Replica.voteCeiling), so no slot after the
    // boundary is agreed under the old list, however far pipelining ran ahead of execution. A
    // refresh keeps the list (only the shares that sign certificates of executed batches change):
    // the next boundary does.
    const boundary = (Math.floor(seq / k) + (sameMembers(round.newMembers, this.current.members) ? 1 : 2)) * k;
    this.finished = round;
    this.epochs.push({ epoch: round.epoch, firstSeq: boundary + 1, members: round.newMembers, commitments });
    const chosen = round.transcript.chosenDealers();
    this.outcome = { epoch: round.epoch, result: 'installed', reason: `dealers [${chosen.join(', ')}], first seq ${boundary + 1}`, decidedSeq: seq };
  }

  /**
   * One ordered reconfiguration record from the request's (signature-checked) client key.
   * Returns a short result; anything not allowed is refused and counted, never thrown.
   */
  execute(clientKey: Uint8Array, operation: Uint8Array, seq: number, timestampMs: number): string {
    this.advance(seq, timestampMs);
    let r: ReconfigurationRecord;
    try {
      r = decodeReconfigurationRecord(operation);
    } catch {
      return this.reject('malformed');
    }
    if (r.kind === 'reconfigure') return this.onReconfigure(clientKey, r.epoch, r.action, seq, timestampMs);
    const round = this.round;
    if (!round || r.epoch !== round.epoch) return this.reject('no round for that epoch');
    if (r.kind === 'deal') {
      if (round.phase !== 'dealing' || round.oldIndexOf(clientKey) !== r.dealerIndex || round.deals.has(r.dealerIndex)) return this.reject('deal not allowed');
      if (r.sealed.length !== round.newMembers.length) return this.reject('one sealed sub-share per new member');
    } else if (r.kind === 'verdict') {
      if (round.phase !== 'complaining' || round.newIndexOf(clientKey) !== r.memberIndex || round.verdicts.has(r.memberIndex)) return this.reject('verdict not allowed');
    } else {
      const open = round.openComplaints().some((c) => c.dealerIndex === r.dealerIndex && c.complainerIndex === r.complainerIndex);
      if (round.phase !== 'responding' || round.oldIndexOf(clientKey) !== r.dealerIndex || !open) return this.reject('response not allowed');
    }
    round.log.push(operation);
    round.replay(r);
    this.advance(seq, timestampMs);
    return `accepted ${r.kind}`;
  }

  private onReconfigure(clientKey: Uint8Array, epoch: number, action: ReconfigurationAction, seq: number, timestampMs: number): string {
    if (!bytesEqual(clientKey, this.options.adminPublicKey)) return this.reject('only the admin key may reconfigure');
    if (this.round) return this.reject(`round for epoch ${this.round.epoch} in progress`);
    const current = this.current;
    if (epoch !== current.epoch + 1) return this.reject(`epoch must be ${current.epoch + 1}`);
    if (current.firstSeq > seq) return this.reject(`epoch ${current.epoch} has not started yet`);
    let members = current.members;
    if (action.kind === 'replace') {
      // Only hosts that switch PBFT's member list at the boundary (ReconfiguringReplica) may accept it.
      if (!this.options.membershipChange) return this.reject('replacing a member is not supported yet (PBFT membership change is not built)');
      if (action.oldIndex > members.length) return this.reject('no such member');
      if (members.some((m) => m.id === action.newId || bytesEqual(m.publicKey, action.newPublicKey))) return this.reject('new member is already a member');
      // A server that left comes back only under a new name and key. With its old identity, a
      // member restarted with an earlier list (its config's) could find that list again in a later
      // epoch and take it as its own while another list is in force (ReconfiguringReplica
      // pendingMembership); and the old identity may still hold an old share.
      const former = this.epochs.some((e) => e.members.some((m) => m.id === action.newId || bytesEqual(m.publicKey, action.newPublicKey)));
      if (former) return this.reject('new member was a member of an earlier epoch: give the server a new name and key');
      members = members.map((m, i) => (i === action.oldIndex - 1 ? { id: action.newId, publicKey: action.newPublicKey } : m));
    }
    const oldKey: RingKeyPublic = { threshold: this.options.f + 1, publicKey: current.commitments[0]!, commitments: current.commitments };
    this.round = new Round(epoch, action, current.members, members, oldKey, this.options.f, 'dealing', timestampMs, [], seq);
    this.outcome = null;
    return `round ${epoch} started`;
  }

  private reject(why: string): string {
    this.counters.rejected++;
    return `refused: ${why}`;
  }

  // ---- persistence (part of the checkpointed service state) ----

  encode(): Uint8Array {
    const round = this.round;
    const roundTuple = (r: Round | null) => (r ? [r.epoch, reconfigurationActionTuple(r.action), r.phase, r.phaseSinceMs, r.log, r.openedSeq] : null);
    return encode([
      this.epochs.map((e) => [e.epoch, e.firstSeq, e.members.map((m) => [m.id, m.publicKey]), [...e.commitments]]),
      roundTuple(round),
      roundTuple(this.finished),
      this.outcome ? [this.outcome.epoch, this.outcome.result, this.outcome.reason, this.outcome.decidedSeq] : null,
    ]);
  }

  /** Replaces the state from encode() bytes; false (unchanged) if they do not decode. */
  restore(bytes: Uint8Array): boolean {
    try {
      const t = asTuple(decode(bytes, 1 << 24, 'reconfiguration state'), 'reconfiguration state', 4);
      const epochs = asList(t[0], 'epochs', 1 << 16, (v) => {
        const e = asTuple(v, 'epoch', 4);
        return {
          epoch: asUint(e[0], 'epoch'), firstSeq: asUint(e[1], 'firstSeq'),
          members: asList(e[2], 'members', ringMembersMax, (m) => {
            const p = asTuple(m, 'member', 2);
            return { id: asString(p[0], 'member id', 128), publicKey: asBytesField(p[1], 'member key', { bytes: 32 }) };
          }),
          commitments: asList(e[3], 'commitments', ringMembersMax, (c) => asBytesField(c, 'commitment', { bytes: publicKeyBytes })),
        };
      });
      const round = asNullable(t[1], (v) => this.roundFrom(v, epochs));
      const finished = asNullable(t[2], (v) => this.roundFrom(v, epochs));
      const outcome = asNullable(t[3], (v) => {
        const o = asTuple(v, 'outcome', 4);
        return { epoch: asUint(o[0], 'epoch'), result: o[1] === 'installed' ? ('installed' as const) : ('aborted' as const), reason: asString(o[2], 'reason', 4096), decidedSeq: asUint(o[3], 'seq') };
      });
      if (epochs.length === 0) return false;
      this.epochs.splice(0, this.epochs.length, ...epochs);
      this.round = round;
      this.finished = finished;
      this.outcome = outcome;
      return true;
    } catch {
      return false;
    }
  }

  private roundFrom(value: unknown, epochs: readonly EpochInfo[]): Round {
    const t = asTuple(value, 'round', 5, 6);
    const epoch = asUint(t[0], 'round epoch');
    const action = decodeReconfigurationAction(t[1]);
    const before = epochs.find((e) => e.epoch === epoch - 1);
    if (!before) throw new ResharingError('round without its previous epoch');
    let members = before.members;
    if (action.kind === 'replace') members = members.map((m, i) => (i === action.oldIndex - 1 ? { id: action.newId, publicKey: action.newPublicKey } : m));
    const phase = asString(t[2], 'phase', 16) as RoundPhase;
    const oldKey: RingKeyPublic = { threshold: this.options.f + 1, publicKey: before.commitments[0]!, commitments: before.commitments };
    const log = asList(t[4], 'round log', 4 * ringMembersMax * ringMembersMax, (v) => asBytesField(v, 'record', {}));
    const openedSeq = t.length > 5 ? asUint(t[5], 'round openedSeq') : 0;
    return new Round(epoch, action, before.members, members, oldKey, this.options.f, phase, asUint(t[3], 'phaseSinceMs'), log, openedSeq);
  }
}

/** The same member list: the same ids under the same keys, in the same order. */
export function sameMembers(a: readonly RingMember[], b: readonly RingMember[]): boolean {
  return a.length === b.length && a.every((m, i) => m.id === b[i]!.id && bytesEqual(m.publicKey, b[i]!.publicKey));
}
