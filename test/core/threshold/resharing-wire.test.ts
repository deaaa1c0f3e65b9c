// Resharing messages on the wire (issue 10): the round driven only through encoded records and
// authenticated senders, as the ring would drive it; impersonation and stale epochs are dropped;
// the decoder survives fuzz.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../../sim/prng.ts';
import {
  DecodeError,
  ResharingMember,
  ResharingTranscript,
  dealResharing,
  decodeResharingMessage,
  encodeResharingMessage,
  verifyKeyShare,
  type ResharingConfig,
  type ResharingMessage,
} from './imports.ts';
import { ringKey } from './fixtures.ts';

const oldKey = ringKey(41, 4, 2);
const config: ResharingConfig = { epoch: 3, oldKey, oldShareCount: 4, newShareCount: 5, newThreshold: 2 };
const wire = (m: ResharingMessage) => decodeResharingMessage(encodeResharingMessage(m));

describe('a resharing round through encoded messages', () => {
  const random = new Prng(42);
  const dealings = oldKey.shares.map((s) => dealResharing(random, config, s));
  const transcript = new ResharingTranscript(config);
  const members = [1, 2, 3, 4, 5].map((j) => new ResharingMember(transcript, j));

  it('completes with every sub-share and commitment taken from the wire', () => {
    for (const d of dealings) {
      expect(transcript.onMessage({ oldIndex: d.dealerIndex }, wire({ kind: 'commitments', epoch: 3, dealerIndex: d.dealerIndex, commitments: d.commitments }))).toBe(true);
      for (const m of members) {
        const record = wire({ kind: 'sub-share', epoch: 3, dealerIndex: d.dealerIndex, memberIndex: m.memberIndex, subShare: d.subShares[m.memberIndex - 1]!.secretKey });
        expect(m.onSubShareMessage(d.dealerIndex, record)).toBe(true);
      }
    }
    expect(members.flatMap((m) => m.complaints())).toEqual([]);
    const newKey = transcript.newKey();
    expect(newKey.publicKey).toEqual(oldKey.publicKey);
    for (const m of members) expect(verifyKeyShare(m.finish(), newKey.commitments)).toBe(true);
  });

  it('drops impersonation, other epochs and misdirected sub-shares', () => {
    const t = new ResharingTranscript(config);
    const d2 = dealings[1]!;
    const commitments: ResharingMessage = { kind: 'commitments', epoch: 3, dealerIndex: 2, commitments: d2.commitments };
    expect(t.onMessage({ oldIndex: 3 }, commitments)).toBe(false); // old member 3 claiming to be dealer 2
    expect(t.onMessage({ newIndex: 2 }, commitments)).toBe(false); // a new member claiming to deal
    expect(t.onMessage({ oldIndex: 2 }, { ...commitments, epoch: 2 })).toBe(false); // a stale round
    expect(t.onMessage({ oldIndex: 1 }, { kind: 'complaint', epoch: 3, dealerIndex: 2, complainerIndex: 1 })).toBe(false);
    expect(t.droppedCount).toBe(4);
    expect(t.onMessage({ oldIndex: 2 }, commitments)).toBe(true);
    const m = new ResharingMember(t, 1);
    const sub: ResharingMessage = { kind: 'sub-share', epoch: 3, dealerIndex: 2, memberIndex: 1, subShare: d2.subShares[0]!.secretKey };
    expect(m.onSubShareMessage(3, sub)).toBe(false);
    expect(m.onSubShareMessage(2, { ...sub, memberIndex: 2 })).toBe(false);
    expect(m.onSubShareMessage(2, sub)).toBe(true);
    expect(m.hasValidSubShare(2)).toBe(true);
  });
});

describe('resharing message decoder', () => {
  const samples: ResharingMessage[] = [
    { kind: 'commitments', epoch: 1, dealerIndex: 1, commitments: oldKey.commitments },
    { kind: 'sub-share', epoch: 1, dealerIndex: 2, memberIndex: 3, subShare: oldKey.shares[0]!.secretKey },
    { kind: 'complaint', epoch: 1, dealerIndex: 2, complainerIndex: 3 },
    { kind: 'response', epoch: 1, dealerIndex: 2, complainerIndex: 3, subShare: oldKey.shares[1]!.secretKey },
  ];

  it('round-trips every record kind', () => {
    for (const m of samples) expect(wire(m)).toEqual(m);
  });

  it('random and mutated bytes give DecodeError or a well-shaped record, nothing else', () => {
    const encoded = samples.map(encodeResharingMessage);
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.tuple(fc.nat(3), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([k, at, v]) => {
        const b = encoded[k]!.slice();
        b[at % b.length] = v;
        return b;
      })), (bytes) => {
        try {
          const m = decodeResharingMessage(bytes);
          expect(['commitments', 'sub-share', 'complaint', 'response']).toContain(m.kind);
        } catch (error) {
          expect(error).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 1500 },
    );
  });
});
