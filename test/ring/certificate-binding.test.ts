/**
 * A Byzantine certifier relabels certificates (ring/client.ts certificateBinding): the ring signs
 * a span's root, so every leaf of a signed span carries a valid path and signature, and a member
 * can send one client another update's leaf under that client's (unsigned) key and nonce. Clients
 * of the object service take a certificate only if its statement carries their update's digest:
 * each write is certified with its own statement, the relabelled copies are counted as bad.
 * And a certifier that lies to every client while running honest rounds with its peers delays no
 * certificate: the backup certifier sends each client its own (ring/replica-certificates.ts).
 */
import { describe, expect, it } from 'vitest';
import { aguidOf } from '../../core/crypto.ts';
import { toHex } from '../../core/bytes.ts';
import { decode } from '../../core/codec.ts';
import { certificateStatementFromTuple } from '../../core/threshold/statements.ts';
import { decodeUpdate, encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate, updateDigest } from '../../core/update/update-signature.ts';
import type { CertificateMessage } from '../../ring/messages.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

/** Each client writes `writes` updates to its own object; returns update digest hex by `clientKeyHex:nonce`. */
function submitWrites(c: ReturnType<typeof buildCluster>, writes: number): Map<string, string> {
  const expected = new Map<string, string>();
  for (let i = 0; i < c.clientSigners.length; i++) {
    const signer = c.clientSigners[i]!;
    const aguid = aguidOf(c.crypto, signer.publicKey, `doc-${i}`);
    for (let nonce = 1; nonce <= writes; nonce++) {
      const clauses = nonce === 1
        ? [{ predicates: [{ kind: 'always' as const }], actions: [{ kind: 'create' as const, name: `doc-${i}`, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }]
        : [{ predicates: [{ kind: 'always' as const }], actions: [{ kind: 'append' as const, bytes: Uint8Array.of(nonce) }] }];
      const operation = encodeUpdate(signUpdate(c.crypto, signer, { aguid, writerPublicKey: signer.publicKey, nonce, clauses }));
      expected.set(`${toHex(signer.publicKey)}:${nonce}`, toHex(updateDigest(c.crypto, decodeUpdate(operation))));
      c.submit(i, operation);
    }
  }
  return expected;
}

/** The update digest of each certified statement, by `clientKeyHex:nonce`, as the clients took them. */
function certifiedDigests(c: ReturnType<typeof buildCluster>): Map<string, string> {
  const certified = new Map<string, string>();
  c.sim.onOutput((_node, e) => {
    if (e.kind !== 'certified') return;
    const statement = certificateStatementFromTuple(decode(e.statement, 4096));
    certified.set(`${e.clientKeyHex}:${e.nonce}`, toHex(statement.updateDigest));
  });
  return certified;
}

describe('certificates bound to their update', () => {
  it('every client gets the certificate of its own update while a certifier relabels other leaves for it', () => {
    const c = buildCluster({ seed: 77, f: 1, clientCount: 3, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 3 } });
    // The primary (the certifier of rank 0) lies this way: before each certificate it sends,
    // another leaf of the same signed span relabelled with the recipient's key and nonce.
    const seen: CertificateMessage[] = [];
    let relabelled = 0;
    c.sim.setInterceptor(c.replicaIds[0]!, (m) => {
      if (m.kind !== 'certificate') return [m];
      // Another leaf of the same span (the client skips a certificate of an older seq unchecked).
      const other = seen.find((s) => s.seq === m.seq && toHex(s.statement) !== toHex(m.statement));
      seen.push(m);
      if (!other) return [m];
      relabelled++;
      return [{ ...other, clientKey: m.clientKey, nonce: m.nonce }, m];
    });
    const certified = certifiedDigests(c);
    const writes = 4;
    const expected = submitWrites(c, writes);
    expect(c.sim.runUntil(() => c.certified.every((n) => n === writes), 20_000)).toBe(true);
    expect(relabelled).toBeGreaterThan(0);
    // Each write's certified statement is its own (without the binding, relabelled ones were taken).
    expect(certified).toEqual(expected);
    const bad = c.clientSigners.map((_, i) => c.client(i)!.counters.badCertificates);
    expect(bad.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('a certifier that lies to every client (another leaf, another epoch, or nothing) delays no certificate: the backup certifier sends each its own', () => {
    const c = buildCluster({ seed: 78, f: 1, clientCount: 3, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 3 } });
    // The primary (view 0: ring-0, the certifier of rank 0) runs honest rounds with its peers
    // (shares, span-certified) but never sends a client a certificate it would take.
    const seen: CertificateMessage[] = [];
    const lies = { relabelled: 0, otherEpoch: 0, withheld: 0 };
    c.sim.setInterceptor(c.replicaIds[0]!, (m) => {
      if (m.kind !== 'certificate') return [m];
      const other = seen.find((s) => s.seq === m.seq && toHex(s.statement) !== toHex(m.statement));
      seen.push(m);
      const way = m.nonce % 3;
      if (way === 0 && other) {
        lies.relabelled++;
        return [{ ...other, clientKey: m.clientKey, nonce: m.nonce }];
      }
      if (way === 1) {
        lies.otherEpoch++;
        return [{ ...m, epoch: m.epoch + 1 }];
      }
      lies.withheld++;
      return [];
    });
    const certified = certifiedDigests(c);
    const writes = 6;
    const expected = submitWrites(c, writes);
    expect(c.sim.runUntil(() => c.certified.every((n) => n === writes), 20_000)).toBe(true);
    expect(lies.relabelled).toBeGreaterThan(0);
    expect(lies.otherEpoch).toBeGreaterThan(0);
    expect(lies.withheld).toBeGreaterThan(0);
    expect(certified).toEqual(expected);
    expect(c.events.viewChanges).toBe(0); // the primary's agreement was honest: no view change helped
    const bad = c.clientSigners.map((_, i) => c.client(i)!.counters.badCertificates);
    expect(bad.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('a member that repeats a lie costs a client one failed check per request, not one per copy', () => {
    const c = buildCluster({ seed: 79, f: 1, clientCount: 2, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 3 } });
    // The primary sends each certificate 40 times under another key epoch first: the binding and
    // the Merkle path hold, so only the signature check (a pairing with BLS) refuses such a copy.
    const copies = 40;
    let lies = 0;
    c.sim.setInterceptor(c.replicaIds[0]!, (m) => {
      if (m.kind !== 'certificate') return [m];
      lies += copies;
      return [...Array.from({ length: copies }, () => ({ ...m, epoch: m.epoch + 1 })), m];
    });
    const certified = certifiedDigests(c);
    const writes = 5;
    const expected = submitWrites(c, writes);
    expect(c.sim.runUntil(() => c.certified.every((n) => n === writes), 20_000)).toBe(true);
    expect(certified).toEqual(expected);
    expect(lies).toBeGreaterThan(copies * writes);
    // At most one refused check per (member, request): without the limit every copy was checked.
    for (let i = 0; i < c.clientSigners.length; i++) {
      const bad = c.client(i)!.counters.badCertificates;
      expect(bad).toBeGreaterThan(0);
      expect(bad).toBeLessThanOrEqual(writes);
    }
  });
});
