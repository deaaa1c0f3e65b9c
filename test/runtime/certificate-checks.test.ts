/**
 * Pairing checks on a thread of their own (runtime/certificate-checks.ts): a real worker thread
 * running the WebAssembly engine gives the same verdicts as a check inline, hands each verdict back
 * to the core that asked (as a host step), and a check survives the worker's failure or hang.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installBlsEngine } from '../../core/threshold/accelerator.ts';
import { dealRingKey } from '../../core/threshold/dealer.ts';
import { hashMessage } from '../../core/threshold/points.ts';
import { combineShares, PublicKeyVerifier, signShare } from '../../core/threshold/signing.ts';
import { CertificateChecks } from '../../runtime/certificate-checks.ts';
import { useMclBls } from '../../runtime/mcl-bls.ts';
import { Prng } from '../../sim/prng.ts';

const key = dealRingKey(new Prng(11), 4, 2);
const message = new TextEncoder().encode('span header');
let signature: Uint8Array;

beforeAll(async () => {
  await useMclBls();
  signature = combineShares(2, [signShare(key.shares[0]!, message), signShare(key.shares[2]!, message)]);
});
afterAll(() => installBlsEngine(null));

describe('certificate checks on a worker thread', () => {
  it('agree with the inline check on a valid, a forged and a malformed signature', async () => {
    const verifier = new PublicKeyVerifier(key.publicKey);
    const checks = new CertificateChecks(verifier);
    try {
      const forged = signShare(key.shares[1]!, message).signature; // one share is not the ring's signature
      const verdicts = await Promise.all([checks.check(message, signature), checks.check(message, forged), checks.check(message, new Uint8Array(48)), checks.check(Uint8Array.of(1), signature)]);
      expect(verdicts).toEqual([true, false, false, false]);
      expect(verdicts).toEqual([verifier.verify(message, signature), verifier.verify(message, forged), false, verifier.verify(Uint8Array.of(1), signature)]);
      // With the message's G1 point hashed by the caller (a replica's HashedCache): the same verdicts.
      const hashed = hashMessage(message).bytes!;
      expect(await Promise.all([checks.check(message, signature, hashed), checks.check(message, forged, hashed)])).toEqual([true, false]);
      expect(checks.inlineCount).toBe(0);
    } finally {
      await checks.close();
    }
  });

  it('hands the verdict back to the core that asked, through the host step runner, and nothing after close', async () => {
    const checks = new CertificateChecks(new PublicKeyVerifier(key.publicKey));
    const token = {};
    const seen: { token: object; valid: boolean; nowMs: number }[] = [];
    const target = { onCertificateChecked: (t: object, valid: boolean, nowMs: number) => (seen.push({ token: t, valid, nowMs }), []) };
    await new Promise<void>((resolve) => {
      checks.forward({ kind: 'certificate-check', token, message, signature }, () => target, (run) => {
        run(42);
        resolve();
      });
    });
    expect(seen).toEqual([{ token, valid: true, nowMs: 42 }]);
    await checks.close();
    checks.forward({ kind: 'certificate-check', token, message, signature }, () => target, (run) => run(43));
    await new Promise((r) => setTimeout(r, 50));
    expect(seen.length).toBe(1);
  });

  it('checks inline what a dead worker had, and starts another for the later ones', async () => {
    const problems: string[] = [];
    const checks = new CertificateChecks(new PublicKeyVerifier(key.publicKey), 5000, (text) => problems.push(text));
    try {
      const pending = checks.check(message, signature);
      // Kill the worker under the pending check (as a crash of the thread would).
      await (checks as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
      expect(await pending).toBe(true);
      expect(checks.inlineCount).toBe(1);
      expect(problems).toEqual([expect.stringMatching(/exited .*started again/)]);
      expect(await checks.check(message, new Uint8Array(48))).toBe(false);
      expect(await checks.check(message, signature)).toBe(true);
      expect(checks.inlineCount).toBe(1);
      expect(checks.threadCount).toBe(2);
    } finally {
      await checks.close();
    }
  });

  it('takes a worker that leaves a check unanswered for stallMs for hung: that check runs inline, a new worker takes the next', async () => {
    const problems: string[] = [];
    const checks = new CertificateChecks(new PublicKeyVerifier(key.publicKey), 100, (text) => problems.push(text));
    try {
      expect(await checks.check(message, signature)).toBe(true); // the worker is up and ready
      // Its verdicts no longer reach us, as if the thread hung.
      (checks as unknown as { worker: { removeAllListeners(event: string): void } }).worker.removeAllListeners('message');
      const started = performance.now();
      expect(await checks.check(message, signature)).toBe(true);
      expect(performance.now() - started).toBeGreaterThanOrEqual(90);
      expect(checks.inlineCount).toBe(1);
      expect(problems).toEqual([expect.stringMatching(/unanswered for 100 ms; started again/)]);
      expect(await checks.check(message, new Uint8Array(48))).toBe(false);
      expect(checks.inlineCount).toBe(1);
    } finally {
      await checks.close();
    }
  });
});
