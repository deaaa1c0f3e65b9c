/**
 * Proactive key refresh ordered by the ring (issue 10; Pond §4.4 "the inner ring ... can be
 * changed ... Byzantine agreement ... new key shares", never built there). Simulation with real
 * threshold BLS: a refresh while writes flow; certificates from the new shares verify under the
 * unchanged ring public key with the new epoch in their batch header; a dealer that sends bad
 * sub-shares is found out by complaints and excluded without stopping the refresh; old and new
 * shares do not combine; old shares are deleted.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from '../../core/bytes.ts';
import { decode } from '../../core/codec.ts';
import type { RandomSource } from '../../core/machine.ts';
import { combineShares, signShare, verifySignature } from '../../core/threshold/signing.ts';
import { batchSigningMessage } from '../../core/threshold/statements.ts';
import { verifyKeyShare, type KeyShare } from '../../core/threshold/dealer.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { buildReconfigurationSim, type CertificateSeen, type ReconfigurationSim } from '../../ring/reconfiguration-sim.ts';
import { simRingId } from '../../ring/sim-cluster.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { subShareCipher } from '../../runtime/reconfiguration-cipher.ts';

const cipherFor = (secret: Uint8Array, random: RandomSource) => subShareCipher(secret, (n) => random.bytes(n));

function headerMessage(c: CertificateSeen, epoch: number): Uint8Array {
  return batchSigningMessage({ ringId: simRingId, epoch, sequence: c.seq, leafCount: c.leafCount, root: c.root });
}

function queueWrites(s: ReconfigurationSim, perWriter: number): number {
  s.writers.forEach((w, i) => {
    for (let k = 0; k < perWriter; k++) s.submit(i, kvOperation(kvKeyFor(w.publicKey, `k${k % 3}`), -1, new TextEncoder().encode(`w${i}-${k}`)));
  });
  return perWriter * s.writers.length;
}

describe('ring key refresh (issue 10)', () => {
  it('refreshes every share while writes flow, excludes a dealer with bad sub-shares, keeps the ring public key', () => {
    const s = buildReconfigurationSim({
      seed: 1010, f: 1, writerCount: 2, crypto: nodeCrypto, cipherFor,
      dealers: new Map([[3, 'bad-sub-shares']]),
      parameters: { checkpointInterval: 8, watermarkWindow: 32 },
      network: { delayMsMin: 1, delayMsMax: 4 },
    });
    const total = queueWrites(s, 15);
    s.sim.runFor(150);
    const before = s.completed.reduce((a, b) => a + b, 0);
    expect(before).toBeGreaterThan(0); // writes are flowing when the refresh is ordered
    s.reconfigure(1, { kind: 'refresh' });
    const replicas = () => [0, 1, 2, 3].map((i) => s.replica(i)!);
    const done = s.sim.runUntil(() => {
      if (s.completed.reduce((a, b) => a + b, 0) < total) return false;
      return replicas().every((r) => r.state.current.epoch === 1 && r.replica.lastExecuted >= r.state.current.firstSeq + 8 && r.agent.heldEpochs().join() === '1');
    }, 60_000);
    expect(done).toBe(true);

    // Every replica decided the same round: installed, dealer 4 (replica 3) disqualified by its answers.
    const outcomes = replicas().map((r) => r.state.outcome);
    expect(new Set(outcomes.map((o) => JSON.stringify(o))).size).toBe(1);
    expect(outcomes[0]).toMatchObject({ epoch: 1, result: 'installed' });
    const finished = replicas()[0]!.state.finished!;
    expect(finished.transcript.qualifiedDealers()).toEqual([1, 2, 3]);
    expect(finished.complaints.size).toBeGreaterThanOrEqual(3); // each honest member complained about dealer 4

    // Same ring public key, different sharing.
    const epoch1 = replicas()[0]!.state.current;
    expect(bytesEqual(epoch1.commitments[0]!, s.key.publicKey)).toBe(true);
    expect(bytesEqual(epoch1.commitments[1]!, s.key.commitments[1]!)).toBe(false);

    // Certificates: before the boundary under epoch 0, after it under epoch 1, all under the old key.
    const late = s.certificates.filter((c) => c.seq >= epoch1.firstSeq);
    const early = s.certificates.filter((c) => c.seq < epoch1.firstSeq);
    expect(late.length).toBeGreaterThan(0);
    expect(early.length).toBeGreaterThan(0);
    for (const c of late) {
      expect(c.epoch).toBe(1);
      expect(verifySignature(s.key.publicKey, headerMessage(c, 1), c.signature)).toBe(true);
      expect(verifySignature(s.key.publicKey, headerMessage(c, 0), c.signature)).toBe(false);
    }
    for (const c of early.slice(-3)) expect(verifySignature(s.key.publicKey, headerMessage(c, 0), c.signature)).toBe(true);

    // Each member's new share is on the new commitments, differs from its old one, and the old is gone.
    const newShares: KeyShare[] = replicas().map((r) => r.agent.shareFor(1, r.state)!);
    newShares.forEach((share, i) => {
      expect(verifyKeyShare(share, epoch1.commitments)).toBe(true);
      expect(bytesEqual(share.secretKey, s.key.shares[i]!.secretKey)).toBe(false);
      expect(replicas()[i]!.agent.shareFor(0, replicas()[i]!.state)).toBeNull();
      expect(s.sim.store(s.members[i]!.id).keys('rcfl/share/0')).toEqual([]);
    });
    const deleted = s.agentOutputs.filter((o) => o.kind === 'old-share-deleted' && o.epoch === 0).map((o) => o.node).sort();
    expect(deleted).toEqual(['ring-0', 'ring-1', 'ring-2', 'ring-3']);

    // f+1 new shares combine to the ring signature; an old share mixed with a new one does not.
    const message = new TextEncoder().encode('mix check');
    const sig = (share: KeyShare) => signShare(share, message);
    expect(verifySignature(s.key.publicKey, message, combineShares(2, [sig(newShares[0]!), sig(newShares[2]!)]))).toBe(true);
    for (const [oldI, newI] of [[0, 1], [1, 0], [2, 3], [3, 2]] as const) {
      const mixed = combineShares(2, [sig(s.key.shares[oldI]!), sig(newShares[newI]!)]);
      expect(verifySignature(s.key.publicKey, message, mixed)).toBe(false);
    }
    // Every acknowledged write executed on every replica: the refresh lost none.
    expect(s.completed).toEqual([15, 15]);
    const digests = new Set(replicas().map((r) => toHex(nodeCrypto.sha256([r.replica.service.snapshot()]))));
    expect(digests.size).toBe(1);
  });

  it('a member that crashes during the round restarts from its store and still ends with only its new share', () => {
    const s = buildReconfigurationSim({
      seed: 2020, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor,
      parameters: { checkpointInterval: 8, watermarkWindow: 32 },
      network: { delayMsMin: 1, delayMsMax: 4 },
    });
    const total = queueWrites(s, 12);
    s.sim.runFor(100);
    s.reconfigure(1, { kind: 'refresh' });
    // Crash ring-1 once the round is open (its deal may or may not be out), bring it back later.
    expect(s.sim.runUntil(() => s.replica(1)!.state.round !== null, 5_000)).toBe(true);
    s.sim.crash('ring-1');
    s.sim.runFor(400);
    s.sim.restart('ring-1');
    const replicas = () => [0, 1, 2, 3].map((i) => s.replica(i)!);
    const done = s.sim.runUntil(
      () => s.completed[0] === total && replicas().every((r) => r.state.current.epoch === 1 && r.agent.heldEpochs().join() === '1'),
      60_000,
    );
    expect(done).toBe(true);
    const restarted = replicas()[1]!;
    const share = restarted.agent.shareFor(1, restarted.state)!;
    expect(verifyKeyShare(share, restarted.state.current.commitments)).toBe(true);
    expect(bytesEqual(restarted.state.current.commitments[0]!, s.key.publicKey)).toBe(true);
    const late = s.certificates.filter((c) => c.seq >= restarted.state.current.firstSeq);
    expect(late.length).toBeGreaterThan(0);
    for (const c of late.slice(-3)) expect(verifySignature(s.key.publicKey, headerMessage(c, 1), c.signature)).toBe(true);
  });

  it('a member down for the whole round: agreed-time deadlines close the phases on an idle ring, and it computes its share when back', () => {
    const s = buildReconfigurationSim({
      seed: 3030, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, phaseMs: 1000,
      parameters: { checkpointInterval: 8, watermarkWindow: 32 },
      network: { delayMsMin: 1, delayMsMax: 4 },
    });
    queueWrites(s, 3);
    expect(s.sim.runUntil(() => s.completed[0] === 3, 10_000)).toBe(true);
    s.sim.crash('ring-3');
    s.reconfigure(1, { kind: 'refresh' });
    // No writes from here on: only the members' own records (and their pokes) execute.
    const up = [0, 1, 2];
    expect(s.sim.runUntil(() => up.every((i) => s.replica(i)!.state.current.epoch === 1), 30_000)).toBe(true);
    const finished = s.replica(0)!.state.finished!;
    expect(finished.transcript.qualifiedDealers()).toEqual([1, 2, 3]);
    expect(finished.verdicts.has(4)).toBe(false);
    s.sim.restart('ring-3');
    queueWrites(s, 12); // moves execution past the boundary and a checkpoint interval beyond it
    expect(s.sim.runUntil(() => [0, 1, 2, 3].every((i) => s.replica(i)!.agent.heldEpochs().join() === '1'), 60_000)).toBe(true);
    const back = s.replica(3)!;
    expect(verifyKeyShare(back.agent.shareFor(1, back.state)!, back.state.current.commitments)).toBe(true);
    expect(s.agentOutputs.some((o) => o.kind === 'share-installed' && o.node === 'ring-3')).toBe(true);
  });

  it('two refreshes in a row: epoch 2 certificates verify under the original key and only epoch-2 shares remain', () => {
    const s = buildReconfigurationSim({
      seed: 4040, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, phaseMs: 1000,
      // Pairing checks answered later by the host, as ring servers run them.
      certificateWork: 'host',
      parameters: { checkpointInterval: 4, watermarkWindow: 16 },
      network: { delayMsMin: 1, delayMsMax: 3 },
    });
    const replicas = () => [0, 1, 2, 3].map((i) => s.replica(i)!);
    for (const epoch of [1, 2]) {
      s.reconfigure(epoch, { kind: 'refresh' });
      queueWrites(s, 6);
      const done = s.sim.runUntil(() => replicas().every((r) => r.state.current.epoch === epoch && r.agent.heldEpochs().join() === String(epoch)), 60_000);
      expect(done).toBe(true);
    }
    const epoch2 = replicas()[0]!.state.current;
    expect(bytesEqual(epoch2.commitments[0]!, s.key.publicKey)).toBe(true);
    const late = s.certificates.filter((c) => c.seq >= epoch2.firstSeq);
    expect(late.length).toBeGreaterThan(0);
    for (const c of late.slice(-3)) {
      expect(c.epoch).toBe(2);
      expect(verifySignature(s.key.publicKey, headerMessage(c, 2), c.signature)).toBe(true);
    }
    // The writer's ring client learned epoch 2 on its own: none of its certificates failed.
    expect(s.writer(0)!.counters.badCertificates).toBe(0);
    expect(s.writer(0)!.counters.certified).toBeGreaterThan(0);
  });

  it('a member holding uncertified statements of the old epoch keeps its old share past the others, then deletes it by a stored deadline a restart does not move', () => {
    const s = buildReconfigurationSim({
      seed: 6060, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, phaseMs: 1000,
      parameters: { checkpointInterval: 4, watermarkWindow: 16 },
      network: { delayMsMin: 1, delayMsMax: 3 },
    });
    // ring-3 hears of no share and no certified span, so the statements it executes stay
    // uncertified there (the others certify them without it).
    const certifying = new Set(['share', 'share-refused', 'span-certified']);
    for (const id of ['ring-0', 'ring-1', 'ring-2']) s.sim.setInterceptor(id, (m, to) => (to === 'ring-3' && certifying.has(m.kind) ? [] : [m]));
    const total = queueWrites(s, 6);
    s.sim.runFor(100);
    s.reconfigure(1, { kind: 'refresh' });
    const replicas = () => [0, 1, 2, 3].map((i) => s.replica(i)!);
    const others = () => replicas().slice(0, 3);
    expect(s.sim.runUntil(() => s.completed[0] === total && others().every((r) => r.state.current.epoch === 1 && r.agent.heldEpochs().join() === '1'), 60_000)).toBe(true);
    const firstSeq = replicas()[0]!.state.current.firstSeq;
    // ring-3 has executed as far as the others deleted theirs at, and still holds epoch 0's share.
    expect(s.sim.runUntil(() => replicas()[3]!.replica.lastExecuted >= firstSeq + 4, 30_000)).toBe(true);
    s.sim.runFor(50);
    expect(replicas()[3]!.agent.heldEpochs()).toEqual([0, 1]);
    const keepUntilKey = 'rcfl/keep-until/0';
    const stored = s.sim.store('ring-3').get(keepUntilKey);
    expect(stored).toBeDefined();
    // A restart keeps the deadline (it is not started over).
    s.sim.crash('ring-3');
    s.sim.runFor(200);
    s.sim.restart('ring-3');
    s.sim.runFor(50);
    expect(s.sim.store('ring-3').get(keepUntilKey)).toEqual(stored);
    const until = Number(decode(stored!, 16));
    const deleted = s.sim.runUntil(() => replicas()[3]!.agent.heldEpochs().join() === '1', 60_000);
    expect(deleted).toBe(true);
    expect(s.sim.nowMs).toBeLessThanOrEqual(until + 100); // deleted by the deadline (a tick or two after it at most)
    expect(s.sim.store('ring-3').get(keepUntilKey)).toBeUndefined();
  });
});
