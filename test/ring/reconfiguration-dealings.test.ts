/**
 * What a dealer sends in a resharing round, and what a member does with a round it cannot compute
 * its share from (session-19 review of reconfiguration).
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import { signerOf } from '../../core/crypto.ts';
import type { RandomSource } from '../../core/machine.ts';
import { verifyKeyShare } from '../../core/threshold/dealer.ts';
import { Fr, lagrangeAtZero, scalarFromBytes, scalarToBytes } from '../../core/threshold/scalar.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { decodeReconfigurationRecord, encodeReconfigurationRecord, isReconfigurationOperation, type SubShareCipher } from '../../ring/reconfiguration-codec.ts';
import { buildReconfigurationSim } from '../../ring/reconfiguration-sim.ts';
import { secretKeyFor } from '../../ring/sim-cluster.ts';
import { reconfigurationPhaseMs } from '../../runtime/cluster-config.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { subShareCipher } from '../../runtime/reconfiguration-cipher.ts';

const honestCipher = (secret: Uint8Array, random: RandomSource): SubShareCipher => subShareCipher(secret, (n) => random.bytes(n));

/** Ciphers for a ring where the member holding `dealerSecret` seals a wrong sub-share to each recipient `victim` picks. */
function sealingBadTo(dealerSecret: Uint8Array, victim: (recipient: Uint8Array) => boolean): (own: Uint8Array, random: RandomSource) => SubShareCipher {
  return (own, random) => {
    const honest = honestCipher(own, random);
    if (!bytesEqual(own, dealerSecret)) return honest;
    return {
      open: honest.open,
      seal(recipient, plaintext, context) {
        if (!victim(recipient)) return honest.seal(recipient, plaintext, context);
        const bad = plaintext.slice();
        bad[31]! ^= 1;
        return honest.seal(recipient, bad, context);
      },
    };
  };
}

describe('resharing dealings', () => {
  it("a retry of an aborted round deals afresh: no member's new share can be computed from the public transcript", () => {
    // Before: each dealer kept its dealing by epoch alone and sent it again in the retry (the same
    // epoch number), sealed to the aborted round's members. Here that round replaced ring-3 by the
    // spare and the retry is a refresh: ring-3 opened none of its sub-shares, complained about
    // every dealer, every dealer revealed its sub-share for index 4 in public, and ring-3's
    // epoch-1 share was in the replicated transcript (with f = 1: the ring key, with one faulty member).
    const s = buildReconfigurationSim({
      seed: 6060, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor: honestCipher, spare: true, phaseMs: 1000,
      parameters: { checkpointInterval: 4, watermarkWindow: 16 },
      network: { delayMsMin: 1, delayMsMax: 3 },
    });
    // The first round's deals from ring-1..3 are lost (network trouble): too few dealers qualify.
    let lose = true;
    for (const i of [1, 2, 3]) {
      s.sim.setInterceptor(`ring-${i}`, (m: RingMessage) => {
        if (!lose || m.kind !== 'request' || !isReconfigurationOperation(m.operation)) return [m];
        return decodeReconfigurationRecord(m.operation).kind === 'deal' ? [] : [m];
      });
    }
    s.sim.runFor(200);
    s.reconfigure(1, { kind: 'replace', oldIndex: 4, newId: s.spareMember!.id, newPublicKey: s.spareMember!.publicKey });
    expect(s.sim.runUntil(() => [0, 1, 2, 3].every((i) => s.replica(i)!.state.outcome?.result === 'aborted'), 30_000)).toBe(true);
    s.sim.runFor(100);
    // Nothing of the aborted round is kept to be sent again.
    for (const i of [0, 1, 2, 3]) expect(s.sim.store(`ring-${i}`).keys('rcfl/deal/')).toEqual([]);
    lose = false;

    s.reconfigure(1, { kind: 'refresh' });
    expect(s.sim.runUntil(() => [0, 1, 2, 3].every((i) => s.replica(i)!.state.current.epoch === 1), 30_000)).toBe(true);
    const state = s.replica(0)!.state;
    const round = state.finished!;
    expect([...round.complaints]).toEqual([]);
    // Whatever was revealed, member 4's share is not the Lagrange sum of revealed sub-shares.
    const chosen = round.transcript.chosenDealers();
    const revealed = chosen.map((d) => round.transcript.revealedSubShare(d, 4));
    if (revealed.every((r) => r !== null)) {
      const lambdas = lagrangeAtZero(chosen);
      let acc = 0n;
      revealed.forEach((r, n) => (acc = Fr.add(acc, Fr.mul(lambdas[n]!, scalarFromBytes(r!)!))));
      expect(verifyKeyShare({ index: 4, secretKey: scalarToBytes(acc) }, state.current.commitments)).toBe(false);
    }
    s.sim.runFor(200);
    for (const i of [0, 1, 2, 3]) expect(s.replica(i)!.agent.heldEpochs(), `ring-${i}`).toContain(1);
  });

  it('a member that cannot compute its share from a finished round tries once, not at every tick', () => {
    // ring-0 seals the joining spare a sub-share that does not match its commitments; the spare is
    // not in the old ring, so it never complains and ring-0 is chosen: the spare has no share of
    // the new epoch (a known limit, docs/reconfiguration.md). Before, it opened and checked every
    // sub-share again at every tick and every share request: ~10 ms each, most of a core.
    const seed = 5050;
    const secret = (i: number): Uint8Array => secretKeyFor(nodeCrypto, seed, 'replica', i);
    const spareKey = signerOf(nodeCrypto, secret(4)).publicKey;
    const cipherFor = sealingBadTo(secret(0), (recipient) => bytesEqual(recipient, spareKey));
    const s = buildReconfigurationSim({
      seed, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, spare: true, spareReplaces: 3, phaseMs: 1000, certificateWork: 'host',
      parameters: { checkpointInterval: 4, watermarkWindow: 16 },
      network: { delayMsMin: 1, delayMsMax: 3 },
    });
    let queued = 0;
    const queue = (count: number): void => {
      for (let k = 0; k < count; k++, queued++) s.submit(0, kvOperation(kvKeyFor(s.writers[0]!.publicKey, 'k'), -1, new TextEncoder().encode(`v${queued}`)));
    };
    queue(10);
    s.sim.runFor(100);
    s.reconfigure(1, { kind: 'replace', oldIndex: 4, newId: s.spareMember!.id, newPublicKey: s.spareMember!.publicKey });
    queue(12);
    const spare = s.replica(4)!;
    expect(s.sim.runUntil(() => s.completed[0] === queued && spare.replica.lastExecuted >= spare.state.current.firstSeq + 8, 60_000)).toBe(true);
    expect(spare.agent.shareFor(1, spare.state)).toBeNull();
    const tried = spare.agent.counters.shareComputations;
    expect(tried).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 20; i++) {
      spare.onTick(s.sim.nowMs);
      spare.agent.shareFor(1, spare.state);
    }
    expect(spare.agent.counters.shareComputations).toBe(tried);
  });
});

describe('phase deadlines against a primary that holds records back', () => {
  it.each([
    ['with nothing else to execute', false],
    ['while it serves every other request', true],
  ])("a primary that withholds members' complaints until the deadline is replaced first: %s", (_name, traffic) => {
    // ring-0, primary and a dealer, seals wrong sub-shares to ring-2 and ring-3 and, as primary,
    // holds their verdicts (the complaints) back. With the runtime's old 5 s deadline under its 6 s
    // request timeout the phase closed first: their complaints were refused, ring-0 was chosen,
    // and ring-2 and ring-3 had no share of the new epoch (session-19 review). A longer deadline
    // alone did not do while other requests executed: their progress restarted the backups'
    // timer (second review). Now the deadline outlasts a view change
    // (runtime/cluster-config.ts reconfigurationPhaseMs) and a backup times reconfiguration
    // records without that restart (ReplicatedService.mustNotWait).
    const seed = 5151;
    const secret = (i: number): Uint8Array => secretKeyFor(nodeCrypto, seed, 'replica', i);
    const victimKeys = [2, 3].map((i) => signerOf(nodeCrypto, secret(i)).publicKey);
    const cipherFor = sealingBadTo(secret(0), (recipient) => victimKeys.some((k) => bytesEqual(k, recipient)));
    const parameters = { checkpointInterval: 8, watermarkWindow: 32, requestTimeoutMs: 6000, viewChangeTimeoutMs: 8000, heartbeatIntervalMs: 1000 };
    const s = buildReconfigurationSim({ seed, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, phaseMs: reconfigurationPhaseMs, parameters, network: { delayMsMin: 1, delayMsMax: 4 } });
    for (const sender of [1, 2, 3]) {
      s.sim.setInterceptor(`ring-${sender}`, (m: RingMessage, to) => {
        if (to !== 'ring-0' || m.kind !== 'request' || !isReconfigurationOperation(m.operation)) return [m];
        if (!victimKeys.some((k) => bytesEqual(k, m.clientKey))) return [m];
        const phase = s.replica(0)!.state.round?.phase;
        return decodeReconfigurationRecord(m.operation).kind === 'verdict' && (phase === 'dealing' || phase === 'complaining') ? [] : [m];
      });
    }
    // Ordinary writes, each to every replica (as after a client's retransmission): every backup
    // waits on it, and its execution is progress there.
    let submitted = 0;
    const submit = (): void => {
      const op = kvOperation(kvKeyFor(s.writers[0]!.publicKey, 'k'), -1, new TextEncoder().encode(`v${submitted++}`));
      for (const e of s.writer(0)!.submit(op, s.sim.nowMs)) {
        if (e.kind === 'send') for (const to of ['ring-0', 'ring-1', 'ring-2', 'ring-3']) s.sim.send('client-0', to, e.message);
      }
    };
    submit();
    expect(s.sim.runUntil(() => s.completed[0] === 1, 10_000)).toBe(true);
    s.reconfigure(1, { kind: 'refresh' });
    const done = (): boolean => [0, 1, 2, 3].every((i) => s.replica(i)!.state.current.epoch === 1);
    for (let t = 0; t < 120_000 && !done(); t += 1000) {
      if (traffic && s.completed[0] === submitted) submit();
      s.sim.runFor(1000);
    }
    expect(done()).toBe(true);
    s.sim.runFor(500);
    expect(s.replica(1)!.replica.view).toBeGreaterThan(0);
    for (const i of [1, 2, 3]) expect(s.replica(i)!.agent.heldEpochs(), `ring-${i}`).toContain(1);
  });
});

describe('the transcript a member computes its share from', () => {
  it('a member down while epoch 1 installed and while a later round aborted still computes its epoch-1 share when it is back', () => {
    // Before: an aborted round replaced the installed one as the round members compute their share
    // from, so the member could never compute its epoch-1 share (session-19 review, fault 5).
    const s = buildReconfigurationSim({
      seed: 6161, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor: honestCipher, phaseMs: 1000,
      parameters: { checkpointInterval: 4, watermarkWindow: 16 },
      network: { delayMsMin: 1, delayMsMax: 3 },
    });
    s.sim.runFor(200);
    s.sim.crash('ring-3');
    s.reconfigure(1, { kind: 'refresh' });
    expect(s.sim.runUntil(() => [0, 1, 2].every((i) => s.replica(i)!.state.current.epoch === 1 && s.replica(i)!.agent.heldEpochs().includes(1)), 30_000)).toBe(true);
    // Epoch 1 in force: past its first seq.
    for (let k = 0; k < 12; k++) s.submit(0, kvOperation(kvKeyFor(s.writers[0]!.publicKey, 'k'), -1, new TextEncoder().encode(`v${k}`)));
    expect(s.sim.runUntil(() => s.completed[0] === 12, 30_000)).toBe(true);
    // Round 2's deals from ring-1 and ring-2 are lost: one dealer qualifies, the round aborts.
    for (const i of [1, 2]) {
      s.sim.setInterceptor(`ring-${i}`, (m: RingMessage) =>
        m.kind === 'request' && isReconfigurationOperation(m.operation) && decodeReconfigurationRecord(m.operation).kind === 'deal' ? [] : [m],
      );
    }
    s.reconfigure(2, { kind: 'refresh' });
    expect(s.sim.runUntil(() => [0, 1, 2].every((i) => s.replica(i)!.state.outcome?.epoch === 2 && s.replica(i)!.state.outcome?.result === 'aborted'), 30_000)).toBe(true);
    // Far enough on that ring-3 catches up by state transfer (it replays none of the rounds).
    for (let k = 12; k < 60; k++) s.submit(0, kvOperation(kvKeyFor(s.writers[0]!.publicKey, 'k'), -1, new TextEncoder().encode(`v${k}`)));
    expect(s.sim.runUntil(() => s.completed[0] === 60, 60_000)).toBe(true);
    s.sim.restart('ring-3');
    expect(s.sim.runUntil(() => s.replica(3)!.agent.heldEpochs().includes(1), 30_000)).toBe(true);
  });
});

describe('a retry of an aborted round is a round of its own', () => {
  it.each([false, true])('a member complains about a dealer that sealed it a bad sub-share (an aborted round first: %s)', (withAbortedRound) => {
    // Before (second review): the verdict, the pending request and the kept deal were named by
    // epoch alone. A retry has the same epoch: a member sent the aborted round's verdict (no
    // complaints) in the retry, and a dealer that dealt honestly there and sealed it a bad
    // sub-share in the retry was chosen unchallenged. Rounds are now named by epoch and the seq
    // of the record that opened them (Round.openedSeq).
    const seed = 7070;
    const secret = (i: number): Uint8Array => secretKeyFor(nodeCrypto, seed, 'replica', i);
    const victim = signerOf(nodeCrypto, secret(2)).publicKey;
    let evil = false;
    const cipherFor = sealingBadTo(secret(0), (recipient) => evil && bytesEqual(recipient, victim));
    const s = buildReconfigurationSim({
      seed, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, phaseMs: 1000,
      parameters: { checkpointInterval: 4, watermarkWindow: 16 }, network: { delayMsMin: 1, delayMsMax: 3 },
    });
    s.sim.runFor(200);
    if (withAbortedRound) {
      // Only ring-0's deal (honest this time) gets through: the members give verdicts, it aborts.
      let lose = true;
      for (const i of [1, 2, 3]) {
        s.sim.setInterceptor(`ring-${i}`, (m: RingMessage) => {
          if (!lose || m.kind !== 'request' || !isReconfigurationOperation(m.operation)) return [m];
          return decodeReconfigurationRecord(m.operation).kind === 'deal' ? [] : [m];
        });
      }
      s.reconfigure(1, { kind: 'refresh' });
      expect(s.sim.runUntil(() => [0, 1, 2, 3].every((i) => s.replica(i)!.state.outcome?.result === 'aborted'), 30_000)).toBe(true);
      s.sim.runFor(500);
      lose = false;
    }
    evil = true;
    s.reconfigure(1, { kind: 'refresh' });
    expect(s.sim.runUntil(() => [0, 1, 2, 3].every((i) => s.replica(i)!.state.current.epoch === 1), 60_000)).toBe(true);
    s.sim.runFor(1000);
    expect([...s.replica(1)!.state.finished!.complaints]).toContain('1:3');
    for (const i of [1, 2, 3]) expect(s.replica(i)!.agent.heldEpochs(), `ring-${i}`).toContain(1);
  });
});

describe('a poke is never taken as a verdict', () => {
  it('with a member down through the round, the others still complain about a dealer that sealed them bad sub-shares (their pokes are no verdicts)', () => {
    // Before (session 32, f = 2 two-round seed 9): a member waiting on a silent dealer poked with
    // its own verdict with no complaints, meant to be refused; executing it closed the dealing
    // phase first, so it was taken as the member's verdict before the member had opened its
    // sub-shares. With every member poking, the bad dealer was chosen and no member could compute
    // its share: the round installed and every old share went, so nothing could be certified again.
    const seed = 7272;
    const s = buildReconfigurationSim({
      seed, f: 1, writerCount: 1, crypto: nodeCrypto, phaseMs: 1000, cipherFor: honestCipher,
      dealers: new Map([[0, 'bad-sub-shares']]),
      parameters: { checkpointInterval: 4, watermarkWindow: 16 }, network: { delayMsMin: 1, delayMsMax: 3 },
    });
    s.sim.runFor(200);
    // ring-3 is down for the round: the dealing phase waits out its deadline on an idle ring, and
    // the others poke. The pokes are held back and then all delivered at once, so they execute
    // before any member has seen the complaining phase.
    const held: { from: string; to: string; message: RingMessage }[] = [];
    let holding = true;
    for (const i of [0, 1, 2]) {
      s.sim.setInterceptor(`ring-${i}`, (m: RingMessage, to: string) => {
        if (!holding || m.kind !== 'request' || !isReconfigurationOperation(m.operation) || decodeReconfigurationRecord(m.operation).kind !== 'verdict') return [m];
        held.push({ from: `ring-${i}`, to, message: m });
        return [];
      });
    }
    s.sim.crash('ring-3');
    s.reconfigure(1, { kind: 'refresh' });
    expect(s.sim.runUntil(() => new Set(held.map((h) => h.from)).size === 3, 30_000)).toBe(true);
    holding = false;
    for (const h of held) s.sim.send(h.from, h.to, h.message);
    expect(s.sim.runUntil(() => [0, 1, 2].every((i) => s.replica(i)!.state.outcome?.epoch === 1), 60_000)).toBe(true);
    const outcome = s.replica(0)!.state.outcome!;
    expect(outcome.result).toBe('installed');
    expect(outcome.reason).not.toMatch(/dealers \[1,/); // ring-0 (dealer 1) is disqualified
    expect(s.sim.runUntil(() => [0, 1, 2].every((i) => s.replica(i)!.agent.heldEpochs().join() === '1'), 30_000)).toBe(true);
    s.sim.restart('ring-3');
    expect(s.sim.runUntil(() => s.replica(3)!.agent.heldEpochs().join() === '1', 30_000)).toBe(true);
    s.submit(0, kvOperation(kvKeyFor(s.writers[0]!.publicKey, 'k'), -1, new TextEncoder().encode('v')));
    expect(s.sim.runUntil(() => s.writer(0)!.counters.certified === 1, 30_000)).toBe(true);
  });
});

describe('which reconfiguration records a backup times strictly', () => {
  it("only the admin's and ring members' (anyone can send bytes with the records' prefix)", () => {
    const s = buildReconfigurationSim({ seed: 6262, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor: honestCipher, spare: true });
    const service = s.replica(1)!.replica.service;
    const record = encodeReconfigurationRecord({ kind: 'verdict', epoch: 1, memberIndex: 1, complaints: [] });
    expect(service.mustNotWait?.(s.admin.publicKey, record)).toBe(true);
    expect(service.mustNotWait?.(signerOf(nodeCrypto, secretKeyFor(nodeCrypto, 6262, 'replica', 2)).publicKey, record)).toBe(true);
    expect(service.mustNotWait?.(s.writers[0]!.publicKey, record)).toBe(false);
    expect(service.mustNotWait?.(s.spareMember!.publicKey, record)).toBe(false); // no round names it
    expect(service.mustNotWait?.(s.admin.publicKey, new Uint8Array([1, 2, 3]))).toBe(false);
  });
});
