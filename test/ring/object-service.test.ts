/**
 * The ring executing real Pond updates (DESIGN.md "Updates", "Certificates and heartbeats"):
 * applyUpdate through the object service, certificates that core/threshold's verifyCertificate
 * accepts, uploaded blocks off the agreement path (fetched by a replica that missed the upload),
 * and refusals for replayed nonces and bad signatures.
 */
import { describe, expect, it } from 'vitest';
import { aguidOf, signerOf, type Signer } from '../../core/crypto.ts';
import { toHex } from '../../core/bytes.ts';
import { heartbeatStatementFromTuple, verifyCertificate } from '../../core/threshold/index.ts';
import { decode } from '../../core/codec.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { toThresholdCertificate } from '../../ring/certificate-format.ts';
import type { CertificateMessage } from '../../ring/messages.ts';
import { decodeObjectResult } from '../../ring/object-result.ts';
import { ObjectService as ObjectServiceImpl, type ObjectService } from '../../ring/object-service.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { blsCertificates, buildCluster, secretKeyFor, simRingId, type Cluster } from '../../ring/sim-cluster.ts';

function pond(c: Cluster, signer: Signer, nonce: number, name: string, clauses: Clause[]): Uint8Array {
  const aguid = aguidOf(c.crypto, signer.publicKey, name);
  return encodeUpdate(signUpdate(c.crypto, signer, { aguid, writerPublicKey: signer.publicKey, nonce, clauses }));
}

const create = (name: string): Clause => ({
  predicates: [{ kind: 'always' }],
  actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }, { kind: 'append', bytes: new TextEncoder().encode('hello') }],
});

function lastResults(c: Cluster): Uint8Array[] {
  const out: Uint8Array[] = [];
  c.sim.onOutput((_n, e) => {
    if (e.kind === 'completed') out.push(e.result);
  });
  return out;
}

describe('object service on the ring', () => {
  it('commits Pond updates through applyUpdate, aborts on a failed predicate, and issues certificates verifyCertificate accepts (real BLS)', () => {
    const certificates = blsCertificates(31, 1);
    const c = buildCluster({ seed: 31, f: 1, clientCount: 1, crypto: nodeCrypto, certificates, service: 'object', network: { delayMsMin: 1, delayMsMax: 2 } });
    const captured: CertificateMessage[] = [];
    for (const id of c.replicaIds) c.sim.setInterceptor(id, (m) => (m.kind === 'certificate' && captured.push(m), [m]));
    const results = lastResults(c);
    const writer = c.clientSigners[0]!;
    c.submit(0, pond(c, writer, 1, 'doc', [create('doc')]));
    c.submit(0, pond(c, writer, 2, 'doc', [{ predicates: [{ kind: 'version-is', version: 0 }], actions: [{ kind: 'append', bytes: new TextEncoder().encode(' world') }] }]));
    c.submit(0, pond(c, writer, 3, 'doc', [{ predicates: [{ kind: 'version-is', version: 0 }], actions: [{ kind: 'truncate', sizeBytes: 0 }] }]));
    expect(c.sim.runUntil(() => c.completed[0] === 3 && c.certified[0] === 3, 10_000)).toBe(true);
    const decoded = results.map(decodeObjectResult);
    expect(decoded.map((r) => r.outcome)).toEqual(['commit', 'commit', 'abort']);
    expect(decoded[2]).toMatchObject({ outcome: 'abort', reason: 'predicate-failed', currentVersion: 1 });
    const aguid = aguidOf(c.crypto, writer.publicKey, 'doc');
    for (let i = 0; i < 4; i++) expect((c.replica(i)!.service as ObjectService).headOf(aguid)?.version).toBe(1);
    expect(captured.length).toBeGreaterThanOrEqual(3);
    for (const m of captured) {
      const check = verifyCertificate(c.crypto, certificates.publicKey!, toThresholdCertificate(simRingId, m));
      expect(check).toEqual({ ok: true });
    }
    // A tampered statement no longer verifies.
    const other = captured.find((m) => toHex(m.statement) !== toHex(captured[0]!.statement))!;
    const bad = { ...captured[0]!, statement: other.statement };
    expect(verifyCertificate(c.crypto, certificates.publicKey!, toThresholdCertificate(simRingId, bad)).ok).toBe(false);
  });

  it('keeps bulk data off the agreement path: blocks are uploaded first, and a replica that missed the upload fetches them before executing', () => {
    const c = buildCluster({ seed: 32, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 2 } });
    const writer = c.clientSigners[0]!;
    c.submit(0, pond(c, writer, 1, 'big', [create('big')]));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
    const block = new Uint8Array(4096).map((_, i) => i % 251);
    const bguid = bguidOf(c.crypto, 'data', block);
    c.sim.partition([['ring-0', 'ring-1', 'ring-2', 'client-0'], ['ring-3']]);
    for (const id of c.replicaIds) c.sim.send('client-0', id, { kind: 'put-block', block });
    c.sim.runFor(50);
    c.sim.heal();
    expect((c.replica(3)!.service as ObjectService).blocks.has(bguid)).toBe(false);
    c.submit(0, pond(c, writer, 2, 'big', [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid, length: block.length }] }] }]));
    expect(c.sim.runUntil(() => c.completed[0] === 2 && c.replica(3)!.lastExecuted === c.replica(0)!.lastExecuted, 5_000)).toBe(true);
    expect((c.replica(3)!.service as ObjectService).blocks.has(bguid)).toBe(true);
    const aguid = aguidOf(c.crypto, writer.publicKey, 'big');
    const heads = [0, 1, 2, 3].map((i) => toHex((c.replica(i)!.service as ObjectService).headOf(aguid)!.vguid));
    expect(new Set(heads).size).toBe(1);
  });

  it('refuses a replayed writer nonce and an update whose signature does not verify, with no certificate', () => {
    const c = buildCluster({ seed: 33, f: 1, clientCount: 2, crypto: fakeCrypto, service: 'object' });
    const results = lastResults(c);
    const writer = c.clientSigners[0]!;
    c.submit(0, pond(c, writer, 5, 'n', [create('n')]));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
    c.submit(0, pond(c, writer, 5, 'n', [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append', bytes: Uint8Array.of(1) }] }]));
    // Client 1 submits an update claiming client 0 as writer, signed with client 1's key.
    const other = signerOf(c.crypto, secretKeyFor(c.crypto, 33, 'client', 1));
    const forged = signUpdate(c.crypto, other, { aguid: aguidOf(c.crypto, writer.publicKey, 'n'), writerPublicKey: other.publicKey, nonce: 9, clauses: [create('x')] });
    c.submit(1, encodeUpdate({ ...forged, writerPublicKey: writer.publicKey }));
    expect(c.sim.runUntil(() => c.completed[0] === 2 && c.completed[1] === 1, 5_000)).toBe(true);
    c.sim.runFor(100);
    const reasons = results.map(decodeObjectResult).map((r) => (r.outcome === 'abort' ? r.reason : r.outcome));
    expect(reasons.sort()).toEqual(['bad-signature', 'commit', 'replay']);
    expect(c.certified[0]).toBe(1);
    expect(c.certified[1]).toBe(0);
  });
});

describe('heartbeats', () => {
  it('re-issues the latest version of each object under a fresh agreed timestamp, certified like any batch (DESIGN.md "Certificates and heartbeats")', () => {
    const c = buildCluster({ seed: 34, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', parameters: { heartbeatIntervalMs: 200 } });
    const heartbeats: { version: number; vguid: string; timestampMs: number }[] = [];
    c.sim.onOutput((_n, e) => {
      if (e.kind !== 'certificate') return;
      for (const s of e.statements) {
        try {
          const h = heartbeatStatementFromTuple(decode(s, 4096));
          heartbeats.push({ version: h.version, vguid: toHex(h.vguid), timestampMs: h.timestampMs });
        } catch {
          // a certificate statement, not a heartbeat
        }
      }
    });
    const writer = c.clientSigners[0]!;
    c.submit(0, pond(c, writer, 1, 'hb', [create('hb')]));
    c.submit(0, pond(c, writer, 2, 'hb', [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append', bytes: Uint8Array.of(1) }] }]));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 5_000)).toBe(true);
    const head = (c.replica(0)!.service as ObjectService).headOf(aguidOf(c.crypto, writer.publicKey, 'hb'))!;
    c.sim.runFor(1_000);
    const latest = heartbeats.filter((h) => h.version === head.version);
    expect(latest.length).toBeGreaterThanOrEqual(3);
    expect(latest.every((h) => h.vguid === toHex(head.vguid))).toBe(true);
    const times = [...new Set(latest.map((h) => h.timestampMs))];
    expect(times.length).toBeGreaterThanOrEqual(3);
    expect(times.every((t, i) => i === 0 || t > times[i - 1]!)).toBe(true);
  });
});

describe('object service state transfer', () => {
  it('a replica that missed several checkpoints installs the object table, fetches the blocks its heads reach, then executes further updates identically (TOCS\'02 §5.3.2)', () => {
    const c = buildCluster({
      seed: 35,
      f: 1,
      clientCount: 2,
      crypto: fakeCrypto,
      service: 'object',
      network: { delayMsMin: 1, delayMsMax: 2 },
      parameters: { checkpointInterval: 2, watermarkWindow: 4, batchSizeMax: 1, statusIntervalMs: 50 },
    });
    c.sim.partition([['ring-0', 'ring-1', 'ring-2', 'client-0', 'client-1'], ['ring-3']]);
    const nonces = [1, 1];
    const write = (i: number, bytes: Uint8Array): void => {
      const w = c.clientSigners[i]!;
      const clause: Clause = nonces[i] === 1 ? create(`obj${i}`) : { predicates: [{ kind: 'always' }], actions: [{ kind: 'append', bytes }] };
      c.submit(i, pond(c, w, nonces[i]!++, `obj${i}`, [clause]));
    };
    for (let k = 0; k < 6; k++) for (const i of [0, 1]) write(i, new Uint8Array(3000).fill(k));
    expect(c.sim.runUntil(() => c.completed.every((n) => n === 6), 10_000)).toBe(true);
    expect(c.replica(0)!.stableSeq).toBeGreaterThan(4);
    c.sim.heal();
    expect(c.sim.runUntil(() => c.replica(3)!.lastExecuted === c.replica(0)!.lastExecuted, 5_000)).toBe(true);
    expect(c.events.stateTransfers).toBeGreaterThanOrEqual(1);
    // More updates on top of the transferred state: ring-3 must apply them to the same heads.
    for (const i of [0, 1]) write(i, Uint8Array.of(9));
    const ring3 = c.replica(3)!.service as ObjectService;
    const caughtUp = (): boolean => c.replica(3)!.lastExecuted === c.replica(0)!.lastExecuted && ring3.missingStateBlocks().length === 0;
    expect(c.sim.runUntil(() => c.completed.every((n) => n === 7) && caughtUp(), 5_000)).toBe(true);
    for (const i of [0, 1]) {
      const aguid = aguidOf(c.crypto, c.clientSigners[i]!.publicKey, `obj${i}`);
      const heads = [0, 1, 2, 3].map((r) => toHex((c.replica(r)!.service as ObjectService).headOf(aguid)!.vguid));
      expect(new Set(heads).size).toBe(1);
    }
    // Every block of every head is now held by ring-3 itself (it could serve reads and apply alone).
    for (const i of [0, 1]) {
      const head = ring3.headOf(aguidOf(c.crypto, c.clientSigners[i]!.publicKey, `obj${i}`))!;
      expect(ring3.getBlock(head.vguid)?.kind).toBe('root');
    }
  });
});

describe('heartbeats with more objects than one heartbeat holds', () => {
  it('take successive slices of the object table, so every object is re-certified within ceil(objects / 256) periods (DESIGN.md "Certificates and heartbeats")', () => {
    const crypto = fakeCrypto;
    const service = new ObjectServiceImpl({ crypto, store: new MemoryKvStore(), blocks: new MemoryBlockStore(crypto), ringId: simRingId });
    const writer = signerOf(crypto, secretKeyFor(crypto, 1, 'heartbeat-writer', 0));
    const objectCount = 600; // three slices of 256, the last one partial
    for (let i = 0; i < objectCount; i++) {
      const name = `object-${i}`;
      const update = encodeUpdate(signUpdate(crypto, writer, { aguid: aguidOf(crypto, writer.publicKey, name), writerPublicKey: writer.publicKey, nonce: i + 1, clauses: [create(name)] }));
      expect(decodeObjectResult(service.execute(writer.publicKey, update, { seq: i + 1, timestampMs: 0, index: 0 }).result).outcome).toBe('commit');
    }
    const periodMs = 1000;
    const covered = new Set<string>();
    for (let period = 0; period < 3; period++) {
      const statements = service.heartbeatStatements(period * periodMs + 7, periodMs).map((s) => heartbeatStatementFromTuple(decode(s, 4096)));
      expect(statements.length).toBeLessThanOrEqual(256);
      for (const h of statements) {
        expect(h.timestampMs).toBe(period * periodMs + 7);
        covered.add(toHex(h.aguid));
      }
    }
    expect(covered.size).toBe(objectCount);
    // Every replica executing the same batch picks the same slice.
    const again = service.heartbeatStatements(1007, periodMs).map((s) => toHex(s));
    expect(service.heartbeatStatements(1007, periodMs).map((s) => toHex(s))).toEqual(again);
  });
});
