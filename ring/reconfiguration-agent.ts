/**
 * A ring member's private side of a reconfiguration: it reads the replicated round
 * (ring/reconfiguration-state.ts) and publishes, as ordinary ring requests signed with its own
 * ed25519 key, what the round needs from it — its deal as an old member (commitments and sub-shares
 * sealed to each new member), its verdict as a new member, answers to complaints against it. It
 * holds this member's key shares: computes the new one once the transcript is final, and deletes
 * the old one a checkpoint interval after the new epoch started (or, while the replica still holds
 * statements it signs, up to a bounded time later: deleteOldShares). Pure: crypto, randomness,
 * sealing and storage are injected.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import { asBytesField, asList, asTuple, asUint, decode, encode } from '../core/codec.ts';
import type { Crypto, Signer } from '../core/crypto.ts';
import type { RandomSource } from '../core/machine.ts';
import type { KvStore } from '../core/store.ts';
import { verifyKeyShare, type KeyShare } from '../core/threshold/dealer.ts';
import { ResharingError } from '../core/threshold/errors.ts';
import { dealResharing, ResharingMember } from '../core/threshold/resharing.ts';
import { scalarBytes } from '../core/threshold/scalar.ts';
import type { ClientRequest } from './messages.ts';
import {
  decodeReconfigurationRecord,
  encodeReconfigurationRecord,
  sealedSubShareContext,
  type DealRecord,
  type ReconfigurationRecord,
  type SubShareCipher,
} from './reconfiguration-codec.ts';
import type { ReconfigurationState, Round } from './reconfiguration-state.ts';
import { signMessage } from './signing.ts';

export type ReconfigurationOutput =
  | { kind: 'share-installed'; node: string; epoch: number; shareIndex: number }
  | { kind: 'old-share-deleted'; node: string; epoch: number }
  /** This node is not a member of the newest epoch and holds no share any more. */
  | { kind: 'retired'; node: string; epoch: number };

/** Test-only misbehaviour of a dealer (simulation of issue 10's Byzantine dealer). */
export type DealerBehaviour = 'honest' | 'bad-sub-shares';

export interface AgentOptions {
  readonly nodeId: string;
  readonly crypto: Crypto;
  readonly signer: Signer;
  readonly cipher: SubShareCipher;
  readonly random: RandomSource;
  /** Local (not replicated) storage for shares and this member's own dealing. */
  readonly store: KvStore;
  /** The epoch-0 share from `cluster init`, if this node was an initial member. */
  readonly initialShare: KeyShare | null;
  /** Resend an unexecuted record after this long. */
  readonly resubmitMs: number;
  readonly behaviour?: DealerBehaviour;
}

/** What the agent reads from the replica it sits beside. */
export interface AgentView {
  readonly state: ReconfigurationState;
  readonly lastExecuted: number;
  readonly checkpointInterval: number;
  /** The highest nonce the ring executed for this member's key (0 if none). */
  readonly executedNonce: number;
  /** The lowest seq whose statements this replica holds uncertified (null: none): an old epoch's share waits for those it signs. */
  readonly oldestUncertified?: number | null;
  /** How long past its usual deletion an old share may wait for them (default 0: it does not wait). */
  readonly oldShareGraceMs?: number;
}

const sharePrefix = 'rcfl/share/';
const deletedPrefix = 'rcfl/deleted/';
const dealPrefix = 'rcfl/deal/';
const nonceKey = 'rcfl/nonce';
/** Epoch -> the time its share goes even if statements it signs are still uncertified (survives restarts). */
const keepUntilPrefix = 'rcfl/keep-until/';

interface Pending {
  readonly purpose: string;
  request: ClientRequest;
  sentMs: number;
}

export class ReconfigurationAgent {
  private readonly shares = new Map<number, KeyShare>();
  private pending: Pending | null = null;
  /** The round phase last seen and since when (host time): a stalled phase gets poked. */
  private phaseSeen = { key: '', sinceMs: 0 };
  /** The verdict of a round (its roundKey), computed once: opening and checking n sub-shares is not per-tick work. */
  private verdict: { round: string; complaints: number[] } | null = null;
  private outputs: ReconfigurationOutput[] = [];
  private nonce: number;
  /** Whether a dealing of this member may still be in the store (cleared once deleted). */
  private dealsKept = true;
  /**
   * The finished round this member could not compute its share from (a dealer it was given a bad
   * sub-share by was chosen): opening and checking n sub-shares again at every tick and every
   * share request cost ~10 ms each, most of a core, and gives the same answer for the same round.
   */
  private shareless: Round | null = null;
  readonly counters = { submitted: 0, resubmitted: 0, sealedOpenFailures: 0, shareComputations: 0 };

  constructor(readonly options: AgentOptions) {
    this.nonce = options.store.get(nonceKey) ? asUint(decode(options.store.get(nonceKey)!, 16), 'nonce') : 0;
    for (const key of options.store.keys(sharePrefix)) {
      const t = asTuple(decode(options.store.get(key)!, 128, 'share'), 'share', 2);
      this.shares.set(Number(key.slice(sharePrefix.length)), { index: asUint(t[0], 'index'), secretKey: asBytesField(t[1], 'secret', { bytes: scalarBytes }) });
    }
    if (options.initialShare && !options.store.get(`${deletedPrefix}0`) && !this.shares.has(0)) this.shares.set(0, options.initialShare);
  }

  /** This member's share of `epoch`, computing it from the final transcript when first asked. */
  shareFor(epoch: number, state: ReconfigurationState): KeyShare | null {
    const held = this.shares.get(epoch);
    if (held) return held;
    if (this.options.store.get(`${deletedPrefix}${epoch}`)) return null;
    const info = state.epochInfo(epoch);
    const round = state.finished;
    if (!info || !round || round.epoch !== epoch || round === this.shareless) return null;
    const me = round.newIndexOf(this.options.signer.publicKey);
    if (me === 0) return null;
    this.counters.shareComputations++;
    const member = this.memberOf(round, me);
    let share: KeyShare;
    try {
      share = member.finish();
    } catch (error) {
      if (!(error instanceof ResharingError)) throw error;
      this.shareless = round;
      return null;
    }
    if (!verifyKeyShare(share, info.commitments)) {
      this.shareless = round;
      return null;
    }
    this.shares.set(epoch, share);
    this.options.store.put(`${sharePrefix}${epoch}`, encode([share.index, share.secretKey]));
    this.outputs.push({ kind: 'share-installed', node: this.options.nodeId, epoch, shareIndex: share.index });
    return share;
  }

  /** Outputs since the last call (share installed / deleted). */
  takeOutputs(): ReconfigurationOutput[] {
    const out = this.outputs;
    this.outputs = [];
    return out;
  }

  /** Requests to send to the ring now (new or resent); each goes to every current member. */
  onTick(view: AgentView, nowMs: number): ClientRequest[] {
    const state = view.state;
    const newest = state.current;
    if (newest.epoch > 0) this.shareFor(newest.epoch, state);
    this.deleteOldShares(view, nowMs);
    this.dropDealings(state);
    const want = this.wanted(state) ?? this.poke(state, nowMs);
    if (!want) {
      this.pending = null;
      return [];
    }
    const p = this.pending;
    if (p && p.purpose === want.purpose) {
      if (nowMs - p.sentMs < this.options.resubmitMs) return [];
      // Executed but not reflected in the state (refused, or a nonce reused after a restart): a fresh nonce.
      if (view.executedNonce >= p.request.nonce) p.request = this.request(want.record, view.executedNonce);
      p.sentMs = nowMs;
      this.counters.resubmitted++;
      return [p.request];
    }
    this.pending = { purpose: want.purpose, request: this.request(want.record, view.executedNonce), sentMs: nowMs };
    this.counters.submitted++;
    return [this.pending.request];
  }

  private request(record: ReconfigurationRecord, executedNonce: number): ClientRequest {
    this.nonce = Math.max(this.nonce, executedNonce) + 1;
    this.options.store.put(nonceKey, encode(this.nonce));
    return signMessage<ClientRequest>(this.options.crypto, this.options.signer, {
      kind: 'request',
      clientKey: this.options.signer.publicKey,
      nonce: this.nonce,
      replyTo: this.options.nodeId,
      operation: encodeReconfigurationRecord(record),
    });
  }

  /** What the round in progress needs from this member now, if anything. */
  private wanted(state: ReconfigurationState): { purpose: string; record: ReconfigurationRecord } | null {
    const round = state.round;
    if (!round) return null;
    const key = this.options.signer.publicKey;
    const oldIndex = round.oldIndexOf(key);
    const newIndex = round.newIndexOf(key);
    // Purposes and memos name the round, not just its epoch: a retry of an aborted round has the same epoch.
    const id = roundKey(round);
    if (round.phase === 'dealing' && oldIndex > 0 && !round.deals.has(oldIndex)) {
      const record = this.dealing(round, oldIndex);
      return record ? { purpose: `${id}:deal`, record } : null;
    }
    if (round.phase === 'complaining' && newIndex > 0 && !round.verdicts.has(newIndex)) {
      if (this.verdict?.round !== id) {
        this.verdict = { round: id, complaints: this.memberOf(round, newIndex).complaints().map((c) => c.dealerIndex) };
      }
      return { purpose: `${id}:verdict`, record: { kind: 'verdict', epoch: round.epoch, memberIndex: newIndex, complaints: this.verdict.complaints } };
    }
    if (round.phase === 'responding' && oldIndex > 0) {
      const open = round.openComplaints().find((c) => c.dealerIndex === oldIndex);
      const subShares = open ? this.ownDealingIn(round, oldIndex)?.subShares : undefined;
      if (!open || !subShares) return null;
      const subShare = subShares[open.complainerIndex - 1]!;
      return {
        purpose: `${id}:response:${open.complainerIndex}`,
        record: { kind: 'response', epoch: round.epoch, dealerIndex: oldIndex, complainerIndex: open.complainerIndex, subShare },
      };
    }
    return null;
  }

  /**
   * Phase deadlines run on agreed time, which only advances when requests execute; heartbeat
   * batches execute none. When a phase waits past its deadline on a silent member and the ring is
   * otherwise idle, a record the ring refuses still executes at a fresh agreed time and lets the
   * phase close. It is a verdict in another member's name, so it is refused in every phase: until
   * session 32 it was this member's own verdict with no complaints, meant to be refused as a
   * repeat, but a poke sent while dealing waited on a silent dealer closed the dealing phase as
   * it executed (`advance` runs first) and was then taken as the member's verdict, before the
   * member had checked its sub-shares. Its complaints against a dealer that sealed it bad
   * sub-shares were lost; with every member poking, that dealer was chosen and no member could
   * compute its new share (f = 2, two rounds, seed 9).
   */
  private poke(state: ReconfigurationState, nowMs: number): { purpose: string; record: ReconfigurationRecord } | null {
    const round = state.round;
    if (!round) return null;
    const key = `${roundKey(round)}:${round.phase}`;
    if (this.phaseSeen.key !== key) this.phaseSeen = { key, sinceMs: nowMs };
    if (nowMs - this.phaseSeen.sinceMs < state.options.phaseMs) return null;
    // Another member's index: the ring refuses a verdict not from the member it names, whatever the phase.
    const memberIndex = (round.newIndexOf(this.options.signer.publicKey) % round.newMembers.length) + 1;
    return { purpose: `${key}:poke`, record: { kind: 'verdict', epoch: round.epoch, memberIndex, complaints: [] } };
  }

  /**
   * This member's deal for the round, made once and kept: a resend in the same round (after a
   * restart) must be the same deal. A dealing kept from another round is never sent again, even
   * for the same epoch (an aborted round's retry): its sub-shares are sealed to that round's
   * members, so a member that changed could open none of them and its complaints made every
   * dealer reveal its sub-share in public, which put its new share in the replicated transcript
   * (with f = 1, one faulty member's share and that one sign as the ring). A fresh polynomial per
   * round also keeps what an aborted round revealed about the old one useless.
   */
  private dealing(round: Round, oldIndex: number): DealRecord | null {
    const kept = this.ownDealing(round.epoch);
    if (kept && kept.openedSeq === round.openedSeq && sameKeys(kept.recipients, round.newMembers)) return kept.record;
    const share = this.shares.get(round.epoch - 1);
    if (!share) return null;
    const dealt = dealResharing(this.options.random, round.transcript.config, share);
    const subShares = dealt.subShares.map((s) => (this.options.behaviour === 'bad-sub-shares' ? corrupt(s.secretKey) : s.secretKey));
    const sealed = round.newMembers.map((m, j) => this.options.cipher.seal(m.publicKey, subShares[j]!, sealedSubShareContext(round.epoch, oldIndex, j + 1)));
    const record: DealRecord = { kind: 'deal', epoch: round.epoch, dealerIndex: oldIndex, commitments: dealt.commitments, sealed };
    const recipients = round.newMembers.map((m) => m.publicKey);
    this.options.store.put(`${dealPrefix}${round.epoch}`, encode([encodeReconfigurationRecord(record), subShares, recipients, round.openedSeq]));
    this.dealsKept = true;
    return record;
  }

  /** The kept dealing the round holds as this member's deal (complaints are answered from it only). */
  private ownDealingIn(round: Round, oldIndex: number): { record: DealRecord; subShares: Uint8Array[] } | null {
    const kept = this.ownDealing(round.epoch);
    const held = round.deals.get(oldIndex);
    if (!kept || !held || !bytesEqual(encodeReconfigurationRecord(kept.record), encodeReconfigurationRecord(held))) return null;
    return kept;
  }

  /**
   * The dealing kept for `epoch`, with the round it was made for (`openedSeq`, -1 for one kept
   * before session 19: never reused) and its recipients.
   */
  private ownDealing(epoch: number): { record: DealRecord; subShares: Uint8Array[]; recipients: Uint8Array[]; openedSeq: number } | null {
    const bytes = this.options.store.get(`${dealPrefix}${epoch}`);
    if (!bytes) return null;
    const value = decode(bytes, 1 << 20, 'own dealing');
    const t = asTuple(value, 'own dealing', 2, 4);
    const record = decodeReconfigurationRecord(asBytesField(t[0], 'deal record', {}));
    if (record.kind !== 'deal') return null;
    const subShares = asList(t[1], 'sub-shares', 1024, (v) => asBytesField(v, 'sub-share', { bytes: scalarBytes }));
    const recipients = t.length >= 3 ? asList(t[2], 'recipients', 1024, (v) => asBytesField(v, 'recipient', { bytes: 32 })) : [];
    const openedSeq = t.length === 4 ? asUint(t[3], 'openedSeq') : -1;
    return { record, subShares, recipients, openedSeq };
  }

  /** The new-member view of a round: the sub-shares sealed to this member, opened. */
  private memberOf(round: Round, newIndex: number): ResharingMember {
    const member = new ResharingMember(round.transcript, newIndex);
    for (const [dealer, deal] of round.deals) {
      const sealed = deal.sealed[newIndex - 1];
      const opened = sealed ? this.options.cipher.open(sealed, sealedSubShareContext(round.epoch, dealer, newIndex)) : null;
      if (opened && opened.length === scalarBytes) member.onSubShare(dealer, opened);
      else this.counters.sealedOpenFailures++;
    }
    return member;
  }

  /**
   * Old shares go once the next epoch has run a checkpoint interval. A member keeps an epoch's
   * share longer while it holds uncertified statements of that epoch (a span that ends in it is
   * signed with it, ring/replica-certificates.ts spanOf; one cut short there by a hole or the leaf
   * limit could be signed by nobody once the shares went), but only until a deadline stored when
   * the wait began, `oldShareGraceMs` later: old shares go in bounded time (proactive security),
   * restarts included; statements still uncertified then wait, as before, for the certificate path
   * to give them up.
   */
  private deleteOldShares(view: AgentView, nowMs: number): void {
    const newest = view.state.current;
    const member = newest.members.some((m) => bytesEqual(m.publicKey, this.options.signer.publicKey));
    // Members wait a checkpoint interval past the boundary, and longer while they hold statements
    // of the old epoch (keptFor). A leaving member executes nothing above the boundary: its share
    // goes once it has executed the boundary, or, from the install on, once it holds no
    // uncertified statement of that epoch or its stored deadline has passed. Waiting for the
    // boundary alone, as before session 32, left the share for good with a member that was down,
    // cut off or behind when the others switched (the ring no longer talks to it); deleting it at
    // the install took a signer from batches up to the boundary that few members may hold (after
    // state transfers, as few as f+1 correct ones).
    const deleteFromSeq = member ? newest.firstSeq + view.checkpointInterval : 0;
    if (newest.epoch === 0 || view.lastExecuted < deleteFromSeq) return;
    const pastBoundary = view.lastExecuted >= newest.firstSeq - 1;
    for (const epoch of [...this.shares.keys()]) {
      if (epoch >= newest.epoch) continue;
      if ((member || !pastBoundary) && this.keptFor(epoch, view, nowMs)) continue;
      this.shares.delete(epoch);
      this.options.store.delete(`${sharePrefix}${epoch}`);
      this.options.store.delete(`${keepUntilPrefix}${epoch}`);
      this.options.store.put(`${deletedPrefix}${epoch}`, encode(1));
      this.outputs.push({ kind: 'old-share-deleted', node: this.options.nodeId, epoch });
      if (!member) this.outputs.push({ kind: 'retired', node: this.options.nodeId, epoch: newest.epoch });
    }
  }

  /** Whether `epoch`'s share still waits for uncertified statements it signs (until its stored deadline). */
  private keptFor(epoch: number, view: AgentView, nowMs: number): boolean {
    const end = view.state.epochs.find((e) => e.epoch > epoch)?.firstSeq;
    if (end === undefined || view.oldestUncertified == null || view.oldestUncertified >= end) return false;
    const key = `${keepUntilPrefix}${epoch}`;
    const stored = this.options.store.get(key);
    const until = stored ? asUint(decode(stored, 16, 'keep-until'), 'keep-until') : Math.floor(nowMs + (view.oldShareGraceMs ?? 0));
    if (!stored) this.options.store.put(key, encode(until));
    return nowMs < until;
  }

  /**
   * A dealing is kept while its round is in progress (to resend it, and to answer complaints
   * against it); once the round installed or aborted it is deleted: nothing may send it again.
   */
  private dropDealings(state: ReconfigurationState): void {
    if (!this.dealsKept) return;
    let kept = 0;
    for (const key of this.options.store.keys(dealPrefix)) {
      if (state.round !== null && Number(key.slice(dealPrefix.length)) === state.round.epoch) kept++;
      else this.options.store.delete(key);
    }
    this.dealsKept = kept > 0;
  }

  /** For status output. */
  heldEpochs(): number[] {
    return [...this.shares.keys()].sort((a, b) => a - b);
  }

  describe(): string {
    return `${this.options.nodeId} ${toHex(this.options.signer.publicKey).slice(0, 8)} epochs [${this.heldEpochs().join(', ')}]`;
  }
}

/** A round's identity: its epoch and the seq of the record that opened it. */
function roundKey(round: Round): string {
  return `${round.epoch}@${round.openedSeq}`;
}

function sameKeys(keys: readonly Uint8Array[], members: readonly { publicKey: Uint8Array }[]): boolean {
  return keys.length === members.length && keys.every((k, i) => bytesEqual(k, members[i]!.publicKey));
}

function corrupt(subShare: Uint8Array): Uint8Array {
  const out = subShare.slice();
  out[31] = out[31]! ^ 1;
  return out;
}
