/**
 * Verifiable resharing (proactive refresh and membership change) with the ring public key kept.
 *
 * Each old member i deals its own share x_i with a fresh polynomial g_i of the new threshold:
 * public commitments D_{i,k} = b_{i,k}·G2 with D_{i,0} = PK_i (anyone checks this against the
 * old commitments, so a dealer cannot deal anything but its real share), and a private sub-share
 * g_i(j) to each new member j. A new member checks its sub-share against D_i and complains
 * publicly if it is bad or missing; the dealer answers by revealing that one sub-share, which
 * everyone checks. Dealers with bad commitments, or an unanswered or badly answered complaint, are
 * disqualified. From the same ordered public transcript every member picks the same t_old
 * lowest-indexed qualified dealers S and computes
 *   x'_j = Σ_{i∈S} λ_i g_i(j),   C'_k = Σ_{i∈S} λ_i D_{i,k},   C'_0 = Σ λ_i PK_i = PK.
 * Old shares and new shares lie on different polynomials, so mixing them yields garbage.
 *
 * The ring orders commitments, complaints and responses (so all members see one transcript)
 * and sets the deadlines; this module is the pure bookkeeping. Sub-shares must travel on a
 * confidential channel.
 */
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import { assert } from '../assert.ts';
import { bytesEqual } from '../bytes.ts';
import { checkArgument } from '../errors.ts';
import type { RandomSource } from '../machine.ts';
import { checkThreshold, decodeCommitments, dealSecret, evaluateCommitments, g2BaseBytes, type KeyShare, type RingKeyPublic } from './dealer.ts';
import { ResharingError } from './errors.ts';
import type { ResharingMessage } from './resharing-codec.ts';
import { G2, g2ToBytes, type G2Point } from './points.ts';
import { Fr, checkShareIndex, lagrangeAtZero, scalarFromBytes, scalarToBytes } from './scalar.ts';

export interface ResharingConfig {
  /** The epoch the new shares will belong to; messages of any other epoch are dropped. */
  readonly epoch: number;
  /** The key being reshared (old threshold and old commitments). */
  readonly oldKey: RingKeyPublic;
  readonly oldShareCount: number;
  readonly newShareCount: number;
  readonly newThreshold: number;
}

/** What an old member publishes (through the ring) and what it sends each new member privately. */
export interface ResharingDealing {
  readonly dealerIndex: number;
  readonly commitments: readonly Uint8Array[];
  /** subShares[j−1] goes to new member j, confidentially. */
  readonly subShares: readonly KeyShare[];
}

export interface Complaint {
  readonly complainerIndex: number;
  readonly dealerIndex: number;
}

export interface ComplaintResponse {
  readonly dealerIndex: number;
  readonly complainerIndex: number;
  /** The sub-share g_i(complainer), revealed in public. */
  readonly subShare: Uint8Array;
}

function checkConfig(config: ResharingConfig): void {
  checkArgument(Number.isSafeInteger(config?.epoch) && config.epoch >= 0, 'config.epoch', 'a non-negative integer');
  checkThreshold(config.oldShareCount, config.oldKey.threshold);
  checkThreshold(config.newShareCount, config.newThreshold);
  checkArgument(config.oldKey.commitments.length === config.oldKey.threshold, 'oldKey.commitments', 'one commitment per coefficient');
}

/** Old member's step: share its own share x_i among the new members. */
export function dealResharing(random: RandomSource, config: ResharingConfig, oldShare: KeyShare): ResharingDealing {
  checkConfig(config);
  checkShareIndex(oldShare?.index, 'oldShare.index');
  checkArgument(oldShare.index <= config.oldShareCount, 'oldShare.index', `at most oldShareCount (${config.oldShareCount})`);
  const secret = scalarFromBytes(oldShare.secretKey);
  checkArgument(secret !== null, 'oldShare.secretKey', '32 canonical big-endian bytes');
  const dealt = dealSecret(random, secret, config.newShareCount, config.newThreshold);
  return { dealerIndex: oldShare.index, commitments: dealt.commitments, subShares: dealt.shares };
}

/** g·G2 = Σ D_k·j^k. Never throws. */
function subShareMatches(points: readonly G2Point[], newIndex: number, subShare: Uint8Array): boolean {
  const value = scalarFromBytes(subShare);
  return value !== null && bytesEqual(g2BaseBytes(value), g2ToBytes(evaluateCommitments(points, newIndex)));
}

/**
 * The public transcript of one resharing round and the decisions every member derives from it.
 * Feed it the ring-ordered messages in order; all members holding the same transcript reach the
 * same qualified set and the same new commitments. Bad messages are dropped and counted.
 */
export class ResharingTranscript {
  readonly config: ResharingConfig;
  /** Messages dropped as malformed, duplicate or from out-of-range senders. */
  droppedCount = 0;
  private readonly oldPoints: G2Point[];
  private readonly dealerPoints = new Map<number, G2Point[]>();
  private readonly dealerCommitments = new Map<number, readonly Uint8Array[]>();
  /** dealer → complainer → revealed sub-share (null while unanswered). */
  private readonly complaints = new Map<number, Map<number, Uint8Array | null>>();
  private readonly disqualified = new Set<number>();

  constructor(config: ResharingConfig) {
    checkConfig(config);
    const points = decodeCommitments(config.oldKey.commitments);
    checkArgument(points, 'oldKey.commitments', 'valid G2 points');
    this.config = config;
    this.oldPoints = points;
  }

  /**
   * One ring-ordered public message, from an authenticated sender: its index among the old
   * members (dealers) and/or among the new ones. A message whose claimed role does not match its
   * sender, or of another epoch, is dropped. Returns whether it was taken.
   */
  onMessage(sender: { readonly oldIndex?: number; readonly newIndex?: number }, message: ResharingMessage): boolean {
    if (message?.epoch !== this.config.epoch) return this.drop();
    switch (message.kind) {
      case 'commitments':
        return sender.oldIndex === message.dealerIndex ? this.onCommitments(message.dealerIndex, message.commitments) : this.drop();
      case 'complaint':
        return sender.newIndex === message.complainerIndex ? this.onComplaint(message) : this.drop();
      case 'response':
        return sender.oldIndex === message.dealerIndex ? this.onComplaintResponse(message) : this.drop();
      default:
        return this.drop(); // sub-shares are private: never part of the public transcript
    }
  }

  /** A dealer's public commitments; accepted iff well formed and D_0 = PK_dealer. First one wins. */
  onCommitments(dealerIndex: number, commitments: readonly Uint8Array[]): boolean {
    if (!this.isOldIndex(dealerIndex) || this.dealerPoints.has(dealerIndex) || this.disqualified.has(dealerIndex)) return this.drop();
    const points = Array.isArray(commitments) && commitments.length === this.config.newThreshold ? decodeCommitments(commitments) : null;
    if (!points || !points[0]!.equals(evaluateCommitments(this.oldPoints, dealerIndex))) {
      this.disqualified.add(dealerIndex); // it published a dealing that is not of its share
      return false;
    }
    this.dealerPoints.set(dealerIndex, points);
    this.dealerCommitments.set(dealerIndex, commitments);
    return true;
  }

  /**
   * Low level: the caller vouches that the complaint came from new member `complainerIndex`
   * (prefer onMessage). A forged complaint "from" an honest member would make the dealer reveal
   * that member's sub-share in public.
   */
  onComplaint(complaint: Complaint): boolean {
    const { complainerIndex, dealerIndex } = complaint ?? {};
    if (!this.isOldIndex(dealerIndex) || !this.isNewIndex(complainerIndex)) return this.drop();
    let byDealer = this.complaints.get(dealerIndex);
    if (!byDealer) this.complaints.set(dealerIndex, (byDealer = new Map()));
    if (byDealer.has(complainerIndex)) return this.drop();
    byDealer.set(complainerIndex, null);
    return true;
  }

  /** A dealer's public answer; a wrong sub-share disqualifies it. */
  onComplaintResponse(response: ComplaintResponse): boolean {
    const { dealerIndex, complainerIndex, subShare } = response ?? {};
    const byDealer = this.isOldIndex(dealerIndex) ? this.complaints.get(dealerIndex) : undefined;
    if (!byDealer || byDealer.get(complainerIndex) !== null) return this.drop();
    const points = this.dealerPoints.get(dealerIndex);
    if (!points || !subShareMatches(points, complainerIndex, subShare)) {
      this.disqualified.add(dealerIndex);
      return false;
    }
    byDealer.set(complainerIndex, subShare);
    return true;
  }

  /** Publicly revealed sub-share for (dealer, complainer), if the dealer answered. */
  revealedSubShare(dealerIndex: number, complainerIndex: number): Uint8Array | null {
    return this.complaints.get(dealerIndex)?.get(complainerIndex) ?? null;
  }

  commitmentsOf(dealerIndex: number): readonly Uint8Array[] | undefined {
    return this.dealerCommitments.get(dealerIndex);
  }

  dealerPointsOf(dealerIndex: number): readonly G2Point[] | undefined {
    return this.dealerPoints.get(dealerIndex);
  }

  /**
   * Dealers that published good commitments and answered every complaint correctly, ascending.
   * Call once the ring's complaint deadline has passed: unanswered complaints disqualify.
   */
  qualifiedDealers(): number[] {
    const out: number[] = [];
    for (const dealer of [...this.dealerPoints.keys()].sort((a, b) => a - b)) {
      if (this.disqualified.has(dealer)) continue;
      const open = [...(this.complaints.get(dealer)?.values() ?? [])].some((v) => v === null);
      if (!open) out.push(dealer);
    }
    return out;
  }

  /** The t_old lowest qualified dealers whose sharings are combined. ResharingError if too few. */
  chosenDealers(): number[] {
    const qualified = this.qualifiedDealers();
    const need = this.config.oldKey.threshold;
    if (qualified.length < need) {
      throw new ResharingError(`resharing needs ${need} qualified dealers, has ${qualified.length} ([${qualified.join(', ')}]); disqualified: [${[...this.disqualified].sort((a, b) => a - b).join(', ')}]`);
    }
    return qualified.slice(0, need);
  }

  /** The new public commitments C'_k; C'_0 equals the old ring public key. */
  newKey(): RingKeyPublic {
    const chosen = this.chosenDealers();
    const lambdas = lagrangeAtZero(chosen);
    const commitments: Uint8Array[] = [];
    for (let k = 0; k < this.config.newThreshold; k++) {
      const points = chosen.map((i) => this.dealerPoints.get(i)![k]!);
      commitments.push(g2ToBytes(mulAddUnsafe(G2, points, lambdas)));
    }
    assert(bytesEqual(commitments[0]!, g2ToBytes(this.oldPoints[0]!)), 'resharing changed the ring public key');
    return { threshold: this.config.newThreshold, publicKey: commitments[0]!, commitments };
  }

  private isOldIndex(i: number): boolean {
    return Number.isSafeInteger(i) && i >= 1 && i <= this.config.oldShareCount;
  }

  private isNewIndex(i: number): boolean {
    return Number.isSafeInteger(i) && i >= 1 && i <= this.config.newShareCount;
  }

  private drop(): false {
    this.droppedCount++;
    return false;
  }
}

/**
 * One new member's private side: the sub-shares it received, the complaints it must publish, and
 * its new share once the transcript is final.
 */
export class ResharingMember {
  private readonly received = new Map<number, Uint8Array>();

  constructor(
    readonly transcript: ResharingTranscript,
    readonly memberIndex: number,
  ) {
    checkArgument(Number.isSafeInteger(memberIndex) && memberIndex >= 1 && memberIndex <= transcript.config.newShareCount, 'memberIndex', `1..${transcript.config.newShareCount}`);
  }

  /** A private sub-share record from an authenticated old member; wrong epoch, sender or recipient is dropped. */
  onSubShareMessage(senderOldIndex: number, message: ResharingMessage): boolean {
    if (message?.kind !== 'sub-share' || message.epoch !== this.transcript.config.epoch) return false;
    if (message.dealerIndex !== senderOldIndex || message.memberIndex !== this.memberIndex) return false;
    this.onSubShare(message.dealerIndex, message.subShare);
    return true;
  }

  /** A sub-share a dealer sent privately; kept whatever it is and checked once commitments are known. */
  onSubShare(dealerIndex: number, subShare: Uint8Array): void {
    if (!Number.isSafeInteger(dealerIndex) || !(subShare instanceof Uint8Array) || this.received.has(dealerIndex)) return;
    this.received.set(dealerIndex, subShare);
  }

  /** True iff the sub-share from `dealerIndex` is present and matches its published commitments. */
  hasValidSubShare(dealerIndex: number): boolean {
    const points = this.transcript.dealerPointsOf(dealerIndex);
    const subShare = this.received.get(dealerIndex);
    return points !== undefined && subShare !== undefined && subShareMatches(points, this.memberIndex, subShare);
  }

  /** Complaints to publish now: every dealer with commitments but no valid sub-share for us. */
  complaints(): Complaint[] {
    const out: Complaint[] = [];
    for (let dealer = 1; dealer <= this.transcript.config.oldShareCount; dealer++) {
      if (this.transcript.dealerPointsOf(dealer) && !this.hasValidSubShare(dealer)) out.push({ complainerIndex: this.memberIndex, dealerIndex: dealer });
    }
    return out;
  }

  /** x'_j = Σ λ_i g_i(j) over the chosen dealers. Throws ResharingError if a needed sub-share is missing. */
  finish(): KeyShare {
    const chosen = this.transcript.chosenDealers();
    const lambdas = lagrangeAtZero(chosen);
    let acc = 0n;
    chosen.forEach((dealer, n) => {
      const value = this.hasValidSubShare(dealer) ? this.received.get(dealer)! : this.transcript.revealedSubShare(dealer, this.memberIndex);
      const scalar = value === null ? null : scalarFromBytes(value);
      if (scalar === null) throw new ResharingError(`member ${this.memberIndex} has no valid sub-share from dealer ${dealer}: complain before the deadline`);
      acc = Fr.add(acc, Fr.mul(lambdas[n]!, scalar));
    });
    return { index: this.memberIndex, secretKey: scalarToBytes(acc) };
  }
}
