/**
 * Certificate cryptography on a thread of its own (runtime/certificate-thread.ts): a real worker
 * thread running the WebAssembly engine gives the same shares, combinations and verdicts as the
 * work done inline, hands each result back to the core that asked (as a host step), and work
 * survives the worker's failure or hang.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installBlsEngine } from '../../core/threshold/accelerator.ts';
import { dealRingKey } from '../../core/threshold/dealer.ts';
import { hashMessage } from '../../core/threshold/points.ts';
import { combineShares, PublicKeyVerifier, signShare } from '../../core/threshold/signing.ts';
import { batchMessage } from '../../ring/certificate-format.ts';
import type { CertificateWork, CertificateWorkResult } from '../../ring/outputs.ts';
import { EpochCertificateSigner } from '../../ring/reconfiguration-signer.ts';
import { CertificateThread } from '../../runtime/certificate-thread.ts';
import { useMclBls } from '../../runtime/mcl-bls.ts';
import { Prng } from '../../sim/prng.ts';

const key = dealRingKey(new Prng(11), 4, 2);
const message = new TextEncoder().encode('span header');
let signature: Uint8Array;
let verifier: PublicKeyVerifier;

beforeAll(async () => {
  await useMclBls();
  verifier = new PublicKeyVerifier(key.publicKey);
  signature = combineShares(2, [signShare(key.shares[0]!, message), signShare(key.shares[2]!, message)]);
});
afterAll(() => installBlsEngine(null));

const check = (m: Uint8Array, s: Uint8Array): CertificateWork => ({ op: 'check', message: m, signature: s });
/** What the replica's own verifier would answer: the inline fallback. */
const checkInline = (m: Uint8Array, s: Uint8Array) => (): CertificateWorkResult => ({ valid: verifier.verify(m, s), signature: null });
const refuse = (): CertificateWorkResult => {
  throw new Error('ran inline');
};

describe('certificate work on a worker thread', () => {
  it('checks agree with the inline check on a valid, a forged and a malformed signature', async () => {
    const thread = new CertificateThread(key.publicKey);
    try {
      const forged = signShare(key.shares[1]!, message).signature; // one share is not the ring's signature
      const cases: [Uint8Array, Uint8Array][] = [[message, signature], [message, forged], [message, new Uint8Array(48)], [Uint8Array.of(1), signature]];
      const results = await Promise.all(cases.map(([m, s]) => thread.do(check(m, s), true, refuse)));
      expect(results.map((r) => r.valid)).toEqual([true, false, false, false]);
      expect(results.map((r) => r.valid)).toEqual(cases.map(([m, s]) => verifier.verify(m, s)));
      // With the message's G1 point hashed by the caller (a replica's HashedCache): the same verdicts.
      const hashed = hashMessage(message).bytes!;
      const again = await Promise.all([thread.do(check(message, signature), true, refuse, hashed), thread.do(check(message, forged), true, refuse, hashed)]);
      expect(again.map((r) => r.valid)).toEqual([true, false]);
      expect(thread.inlineCount).toBe(0);
    } finally {
      await thread.close();
    }
  });

  it('signs shares and combines them byte for byte as inline; a bad or undecodable share fails the combination', async () => {
    const thread = new CertificateThread(key.publicKey);
    try {
      const shares = await Promise.all([0, 2].map((i) => thread.do({ op: 'share', message, keyShare: key.shares[i]! }, true, refuse)));
      expect(shares.map((s) => s.signature)).toEqual([0, 2].map((i) => signShare(key.shares[i]!, message).signature));
      const indexed = (sigs: Uint8Array[]) => sigs.map((share, k) => ({ replica: [0, 2][k]!, share }));
      const combined = await thread.do({ op: 'combine', message, shares: indexed(shares.map((s) => s.signature!)) }, true, refuse);
      expect(combined).toEqual({ valid: true, signature: signature });
      const wrong = signShare(key.shares[1]!, message).signature; // replica 1's share presented as replica 2's
      expect((await thread.do({ op: 'combine', message, shares: indexed([shares[0]!.signature!, wrong]) }, true, refuse)).valid).toBe(false);
      const undecodable = await thread.do({ op: 'combine', message, shares: indexed([shares[0]!.signature!, Uint8Array.of(1, 2, 3)]) }, true, refuse);
      expect(undecodable.valid).toBe(false);
      expect(thread.inlineCount).toBe(0);
      // No key share (an epoch this replica has none for), or work that is not threshold BLS: done by `run`.
      const ran = { valid: true, signature: Uint8Array.of(7) };
      expect(await thread.do({ op: 'share', message, keyShare: null }, true, () => ran)).toBe(ran);
      expect(await thread.do(check(message, signature), false, () => ran)).toBe(ran);
      expect(thread.inlineCount).toBe(2);
    } finally {
      await thread.close();
    }
  });

  it("gives an epoch signer's share (the key share of the header's epoch) byte for byte, and leaves a header of an epoch without a share to run()", async () => {
    const refreshed = dealRingKey(new Prng(12), 4, 2); // another epoch's shares (a key refresh keeps the ring key; the bytes are what matter here)
    const signer = new EpochCertificateSigner(2, 4, { shareFor: (epoch) => [key, refreshed][epoch]?.shares[1] ?? null, keyOf: () => undefined });
    const thread = new CertificateThread(key.publicKey);
    try {
      for (const epoch of [0, 1]) {
        const header = batchMessage({ ringId: new Uint8Array(32), epoch }, 9, 3, new Uint8Array(32).fill(epoch + 1));
        const keyShare = signer.bls.keyShareFor(header);
        expect(keyShare).toBe([key, refreshed][epoch]!.shares[1]);
        expect((await thread.do({ op: 'share', message: header, keyShare }, true, refuse)).signature).toEqual(signer.signShare(header));
      }
      const orphan = batchMessage({ ringId: new Uint8Array(32), epoch: 2 }, 9, 3, new Uint8Array(32));
      expect(signer.bls.keyShareFor(orphan)).toBeNull();
      // A replica signs nothing then (Replica.signShare); a host handed such work anyway runs it.
      const result = await thread.do({ op: 'share', message: orphan, keyShare: null }, true, () => ({ valid: true, signature: signer.signShare(orphan) }));
      expect(result.signature).toEqual(new Uint8Array(48));
      expect(thread.inlineCount).toBe(1);
    } finally {
      await thread.close();
    }
  });

  it('does shares before checks that came earlier (a round waits on its shares, not on other certifiers’ checks)', async () => {
    const thread = new CertificateThread(key.publicKey);
    try {
      await thread.do(check(message, signature), true, refuse); // ready
      const order: string[] = [];
      const checks = Array.from({ length: 6 }, (_, k) => thread.do(check(message, signature), true, refuse).then(() => order.push(`check ${k}`)));
      const share = thread.do({ op: 'share', message, keyShare: key.shares[0]! }, true, refuse).then(() => order.push('share'));
      await Promise.all([...checks, share]);
      // The worker may have started a check or two before the share arrived, never all six.
      expect(order.indexOf('share')).toBeLessThan(4);
    } finally {
      await thread.close();
    }
  });

  it('hands the result back to the core that asked, through the host step runner, and nothing after close', async () => {
    const thread = new CertificateThread(key.publicKey);
    const token = {};
    const seen: { token: object; result: CertificateWorkResult; nowMs: number }[] = [];
    const target = { onCertificateWork: (t: object, result: CertificateWorkResult, nowMs: number) => (seen.push({ token: t, result, nowMs }), []) };
    const event = { kind: 'certificate-work' as const, token, work: check(message, signature), threadable: true, run: refuse };
    await new Promise<void>((resolve) => {
      thread.forward(event, () => target, (run) => {
        run(42);
        resolve();
      });
    });
    expect(seen).toEqual([{ token, result: { valid: true, signature: null }, nowMs: 42 }]);
    await thread.close();
    thread.forward(event, () => target, (run) => run(43));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.length).toBe(1);
  });

  it('does inline what a dead worker had, and starts another for later work', async () => {
    const problems: string[] = [];
    const thread = new CertificateThread(key.publicKey, 5000, (text) => problems.push(text));
    try {
      const pending = thread.do(check(message, signature), true, checkInline(message, signature));
      // Kill the worker under the pending check (as a crash of the thread would).
      await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      expect((await pending).valid).toBe(true);
      expect(thread.inlineCount).toBe(1);
      expect(problems).toEqual([expect.stringMatching(/exited .*started again/)]);
      expect((await thread.do(check(message, new Uint8Array(48)), true, refuse)).valid).toBe(false);
      expect((await thread.do(check(message, signature), true, refuse)).valid).toBe(true);
      expect(thread.inlineCount).toBe(1);
      expect(thread.threadCount).toBe(2);
    } finally {
      await thread.close();
    }
  });

  it('takes a worker that answers nothing for stallMs while work waits for hung: that piece runs inline, a new worker takes the next', async () => {
    const problems: string[] = [];
    const thread = new CertificateThread(key.publicKey, 250, (text) => problems.push(text));
    try {
      // The worker is up and ready (on a loaded machine even this one may be judged late: it then runs inline, correctly).
      expect((await thread.do(check(message, signature), true, checkInline(message, signature))).valid).toBe(true);
      // A worker judged late on that piece was replaced by one that may still be loading: its ready
      // message needs the listener removed below (without it the new worker is judged only after
      // a minute), so wait until it is ready (bounded: 30 s).
      const internals = thread as unknown as { ready: boolean; worker: { removeAllListeners(event: string): void } };
      for (let i = 0; i < 600 && !internals.ready; i++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(internals.ready).toBe(true);
      const before = { inline: thread.inlineCount, problems: problems.length };
      // Its results no longer reach us, as if the thread hung.
      internals.worker.removeAllListeners('message');
      const started = performance.now();
      expect((await thread.do(check(message, signature), true, checkInline(message, signature))).valid).toBe(true);
      expect(performance.now() - started).toBeGreaterThanOrEqual(225);
      expect(thread.inlineCount).toBe(before.inline + 1);
      expect(problems.slice(before.problems)).toEqual([expect.stringMatching(/unanswered for 250 ms; started again/)]);
      expect((await thread.do(check(message, new Uint8Array(48)), true, checkInline(message, new Uint8Array(48)))).valid).toBe(false);
    } finally {
      await thread.close();
    }
  });
});
