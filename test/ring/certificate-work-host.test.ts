/**
 * Certificate work answered later by the host (ReplicaConfig.certificateWork 'host'). A backup
 * certifier checks one span-certified per sender at a time, keeps up to 4 more that come meanwhile
 * and replays them in order after the verdict, and drops the rest ('busy'). A span it could not
 * take is certified by its own takeover round later: nothing is lost, only done twice. A replica
 * signs one share per requester at a time, however often it is asked.
 */
import { describe, expect, it } from 'vitest';
import { fakeCertificateSigner } from '../../ring/certificate-signer.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { Replica } from '../../ring/replica.ts';
import { buildCluster, fakeCertificates } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

type Cluster = ReturnType<typeof buildCluster>;

/** One write, run until certified, then one more certificate round's worth of time. */
function certifiedWrite(c: Cluster, k: number): void {
  const before = c.certified[0]!;
  c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
  expect(c.sim.runUntil(() => c.certified[0] === before + 1, 2_000)).toBe(true);
  c.sim.runFor(30);
}

/** Six spans certified by the primary while ring-1 (the backup certifier in view 0) has its first check out. */
function sixSpansWhileHeld(): { c: Cluster; backup: Replica; primary: Replica } {
  const c = buildCluster({ seed: 21, f: 1, clientCount: 1, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 }, certificateWork: 'host' });
  certifiedWrite(c, 0);
  const backup = c.replica(1)!;
  const primary = c.replica(0)!;
  expect(backup.certificateState.certifiedThrough).toBe(primary.certificateState.certifiedThrough);
  c.holding.add('ring-1/check');
  for (let k = 1; k <= 6; k++) certifiedWrite(c, k);
  return { c, backup, primary };
}

function answer(c: Cluster, valid: (held: boolean) => boolean): void {
  c.holding.delete('ring-1/check');
  for (const h of c.held.splice(0)) c.sim.later(h.node, 0, 'answer', (m, nowMs) => (m as Replica).onCertificateWork(h.token, { valid: valid(h.result.valid), signature: null }, nowMs));
}

describe("a backup certifier's span-certified checks answered by the host", () => {
  it('one check out per sender, four more kept and replayed in order, the sixth dropped; the takeover certifies the rest', () => {
    const { c, backup, primary } = sixSpansWhileHeld();
    const before = backup.certificateState.certifiedThrough;
    expect(c.held.length).toBe(1);
    expect(backup.certificateState.spanChecks.get(0)?.length).toBe(4);
    expect(backup.drops.get('busy')).toBe(1);
    expect(c.certified[0]).toBe(7); // clients never waited for the backup
    answer(c, (valid) => valid);
    c.sim.runFor(100);
    // The held span and the four kept ones: certified in order; the sixth is not.
    expect(backup.certificateState.spanChecks.size).toBe(0);
    expect(backup.certificateState.certifiedThrough).toBeGreaterThan(before);
    expect(backup.certificateState.certifiedThrough).toBeLessThan(primary.certificateState.certifiedThrough);
    // Spans from the primary after the gap start above ring-1's floor: ring-1 certifies it itself.
    certifiedWrite(c, 7);
    c.sim.runFor(3_000);
    expect(backup.certificateState.certifiedThrough).toBe(primary.certificateState.certifiedThrough);
  });

  it('a false verdict on the first: it and the kept ones are not taken, and the takeover still certifies everything', () => {
    const { c, backup, primary } = sixSpansWhileHeld();
    const before = backup.certificateState.certifiedThrough;
    answer(c, () => false);
    c.sim.runFor(100);
    expect(backup.drops.get('bad-proof')).toBe(1);
    expect(backup.certificateState.certifiedThrough).toBe(before);
    c.sim.runFor(3_000);
    expect(backup.certificateState.certifiedThrough).toBe(primary.certificateState.certifiedThrough);
  });
});

describe('shares signed by the host', () => {
  it('one share per requester at a time: the latest request that comes meanwhile waits, and is signed after', () => {
    // ring-1's and ring-3's shares are garbage: the certifier (ring-0) needs ring-2's, whose host holds its share work.
    const scheme = fakeCertificates(fakeCrypto, 1);
    const certificates = {
      ...scheme,
      signerFor: (i: number) => (i === 1 || i === 3 ? { ...fakeCertificateSigner(fakeCrypto, i, 2), signShare: () => new Uint8Array(32).fill(i) } : scheme.signerFor(i)),
    };
    const requests: string[] = [];
    const trace = (line: string): void => {
      const m = /(ring-\d) -> ring-2: sign-request/.exec(line);
      if (m) requests.push(m[1]!);
    };
    const c = buildCluster({ seed: 5, f: 1, clientCount: 1, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 }, certificateWork: 'host', certificates, parameters: { heartbeatIntervalMs: 0 }, trace });
    c.holding.add('ring-2/share');
    const ring2 = c.replica(2)!;
    for (let k = 0; k < 4; k++) {
      c.submit(0, kvOperation(kvKeyFor(c.clientSigners[0]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
      c.sim.runFor(1_200); // a takeover period: the stalled round is replaced by a longer one, asking ring-2 again
    }
    expect(c.completed[0]).toBe(4);
    expect(c.certified[0]).toBe(0);
    // Rounds asked ring-2 again and again (the takeovers too); its host holds one share per
    // requester and one per round of its own (each is replaced after a takeover period), and the
    // latest request from each requester waits.
    const s = ring2.certificateState;
    expect(requests.filter((from) => from === 'ring-0').length).toBeGreaterThan(2);
    expect(c.held.length).toBe(s.signing.size + s.roundCount);
    expect(s.signing.get(0)).toMatchObject({ kind: 'sign-request', replica: 0 });
    // Released: the held share goes out (for an old round), the waiting request is signed, and the span is certified.
    c.holding.delete('ring-2/share');
    for (const h of c.held.splice(0)) c.sim.later(h.node, 0, 'answer', (_m, nowMs) => ring2.onCertificateWork(h.token, h.result, nowMs));
    expect(c.sim.runUntil(() => c.certified[0] === 4, 5_000)).toBe(true);
    expect(ring2.certificateState.signing.size).toBe(0);
  });
});
