/** Drives a resharing round as the ring would, with scripted Byzantine dealers (test helper). */
import { Prng } from '../../../sim/prng.ts';
import {
  Fr,
  ResharingMember,
  ResharingTranscript,
  dealResharing,
  scalarFromBytes,
  scalarToBytes,
  type DealtRingKey,
  type KeyShare,
  type ResharingConfig,
  type ResharingDealing,
} from './imports.ts';

/** How a Byzantine dealer misbehaves towards the new members. */
export interface DealerFault {
  /** Sub-share sent privately to these members is wrong (off by one). */
  corruptFor?: number[];
  /** Nothing is sent privately to these members. */
  silentFor?: number[];
  /** Answer complaints with a wrong value, or not at all. */
  answer?: 'honest' | 'wrong' | 'none';
  /** Publish commitments to a sharing of some other secret. */
  wrongSecret?: boolean;
}

export interface Outcome {
  transcripts: ResharingTranscript[];
  members: ResharingMember[];
  newShares: KeyShare[];
}

export function bump(bytes: Uint8Array): Uint8Array {
  return scalarToBytes(Fr.add(scalarFromBytes(bytes)!, 1n));
}

/**
 * Drives one round the way the ring would: every dealer's commitments are ordered, sub-shares go
 * privately, members publish complaints, dealers answer, and every member reads the same ordered
 * transcript. `falseComplaints` are Byzantine members complaining about honest dealers.
 */
export function runRound(oldKey: DealtRingKey, config: ResharingConfig, faults: Record<number, DealerFault>, falseComplaints: [number, number][] = []): Outcome {
  const random = new Prng(config.newShareCount * 100 + config.newThreshold);
  const dealings: ResharingDealing[] = oldKey.shares.map((share) => {
    const fault = faults[share.index];
    const dealt = dealResharing(random, config, fault?.wrongSecret ? { index: share.index, secretKey: bump(share.secretKey) } : share);
    return dealt;
  });
  // Two independent copies of the public transcript (members alternate between them) show that
  // everyone reading the same ordered messages decides the same; one per member would only be slower.
  const transcripts = [new ResharingTranscript(config), new ResharingTranscript(config)];
  const members = Array.from({ length: config.newShareCount }, (_, j) => new ResharingMember(transcripts[j % 2]!, j + 1));
  const publish = (step: (t: ResharingTranscript) => void) => transcripts.forEach(step);

  for (const d of dealings) publish((t) => t.onCommitments(d.dealerIndex, d.commitments));
  for (const d of dealings) {
    const fault = faults[d.dealerIndex] ?? {};
    for (const member of members) {
      if (fault.silentFor?.includes(member.memberIndex)) continue;
      const sub = d.subShares[member.memberIndex - 1]!.secretKey;
      member.onSubShare(d.dealerIndex, fault.corruptFor?.includes(member.memberIndex) ? bump(sub) : sub);
    }
  }
  const complaints = [...members.flatMap((m) => m.complaints()), ...falseComplaints.map(([complainerIndex, dealerIndex]) => ({ complainerIndex, dealerIndex }))];
  for (const c of complaints) publish((t) => t.onComplaint(c));
  for (const c of complaints) {
    const fault = faults[c.dealerIndex] ?? {};
    if (fault.answer === 'none') continue;
    const sub = dealings[c.dealerIndex - 1]!.subShares[c.complainerIndex - 1]!.secretKey;
    const response = { dealerIndex: c.dealerIndex, complainerIndex: c.complainerIndex, subShare: fault.answer === 'wrong' ? bump(sub) : sub };
    publish((t) => t.onComplaintResponse(response));
  }
  return { transcripts, members, newShares: members.map((m) => m.finish()) };
}
