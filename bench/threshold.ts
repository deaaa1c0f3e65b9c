/**
 * `npm run bench -- threshold [--quick]`: the cost of the ring's threshold certificates.
 * BLS12-381 (pure JS, @noble/curves) hash-to-curve, share sign/verify, combine, optimistic
 * combine, certificate verification with and without pairing precomputation, Merkle paths, the
 * per-update amortised cost for batches of 1, 16 and 256, and resharing steps; baseline: one
 * ed25519 sign/verify through node:crypto, measured in the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { Prng } from '../sim/prng.ts';
import { machineDescription } from './_machine.ts';
import {
  BatchMerkleTree,
  CertificateVerifier,
  RingKeyVerifier,
  ResharingMember,
  ResharingTranscript,
  SignedBatchBuilder,
  batchLeafHash,
  combineShares,
  dealResharing,
  dealRingKey,
  encodeCertificate,
  hashMessage,
  signShare,
  verificationKeyOf,
  verifyBatchPath,
  verifyCertificate,
  verifySignatureShare,
  type BatchEntry,
  type Certificate,
  type CertificateStatement,
  type DealtRingKey,
} from '../core/threshold/index.ts';

interface Row {
  operation: string;
  /** CPU time (user + system) of this process: robust when other work shares the cores. */
  cpuMedianUs: number;
  medianUs: number;
  p90Us: number;
  samples: number;
  note?: string;
}

/** Runs `fn` until `samplesMax` samples or `budgetMs` elapsed (at least 3), after one warm-up. */
function measure(operation: string, fn: (i: number) => void, budgetMs: number, samplesMax: number, note?: string): Row {
  fn(-1);
  const times: number[] = [];
  const cpu: number[] = [];
  const start = performance.now();
  for (let i = 0; times.length < samplesMax && (times.length < 3 || performance.now() - start < budgetMs); i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn(i);
    times.push((performance.now() - t0) * 1000);
    const c = process.cpuUsage(c0);
    cpu.push(c.user + c.system);
  }
  return summarise(operation, times, cpu, note);
}

/** Alternates two operations sample by sample and reports both. */
function measureInterleaved(a: [string, (i: number) => void], b: [string, (i: number) => void], budgetMs: number, samplesMax: number): [Row, Row] {
  a[1](-1);
  b[1](-1);
  const ta: number[] = [];
  const tb: number[] = [];
  const ca: number[] = [];
  const cb: number[] = [];
  const start = performance.now();
  for (let i = 0; ta.length < samplesMax && (ta.length < 3 || performance.now() - start < budgetMs); i++) {
    for (const [fn, times, cpu] of [[a[1], ta, ca], [b[1], tb, cb]] as const) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      fn(i);
      times.push((performance.now() - t0) * 1000);
      const c = process.cpuUsage(c0);
      cpu.push(c.user + c.system);
    }
  }
  return [summarise(a[0], ta, ca), summarise(b[0], tb, cb)];
}

function summarise(operation: string, times: number[], cpu: number[], note?: string): Row {
  const at = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
  return { operation, cpuMedianUs: Math.round(at(cpu, 0.5)), medianUs: Math.round(at(times, 0.5)), p90Us: Math.round(at(times, 0.9)), samples: times.length, ...(note ? { note } : {}) };
}

const ringId = new Uint8Array(32).fill(0xa1);
function statement(version: number): CertificateStatement {
  const b = (v: number) => new Uint8Array(32).fill(v);
  return { ringId, aguid: b(1), version, vguid: b(version & 255), rootFragmentRoot: b(2), updateDigest: b(3), outcome: 'commit', timestampMs: 1_700_000_000_000 + version };
}

function batchOf(size: number, sequence: number): SignedBatchBuilder {
  const entries: BatchEntry[] = Array.from({ length: size }, (_, i) => ({ kind: 'certificate', statement: statement(sequence * 1000 + i) }));
  return new SignedBatchBuilder(nodeCrypto, { ringId, epoch: 0, sequence }, entries);
}

function primitives(key4: DealtRingKey, key7: DealtRingKey, budgetMs: number): Row[] {
  const rows: Row[] = [];
  const secret = new Uint8Array(32).fill(9);
  const edKey = nodeCrypto.ed25519PublicKey(secret);
  const msg = new Uint8Array(220).fill(5);
  const edSig = nodeCrypto.ed25519Sign(secret, msg);
  rows.push(measure('baseline: ed25519 sign (node:crypto)', () => nodeCrypto.ed25519Sign(secret, msg), budgetMs / 4, 2000));
  rows.push(measure('baseline: ed25519 verify (node:crypto)', () => nodeCrypto.ed25519Verify(edKey, msg, edSig), budgetMs / 4, 2000));

  const messages = Array.from({ length: 64 }, (_, i) => new TextEncoder().encode(`batch header ${i}`));
  rows.push(measure('hash-to-curve (G1, ring DST)', (i) => hashMessage(messages[(i + 64) % 64]!), budgetMs, 200));
  const hashed = hashMessage(messages[0]!);
  rows.push(measure('share sign (message pre-hashed)', () => signShare(key4.shares[0]!, hashed), budgetMs, 200));
  rows.push(measure('share sign (incl. hash-to-curve)', (i) => signShare(key4.shares[0]!, messages[(i + 64) % 64]!), budgetMs, 200));
  const shares4 = key4.shares.map((s) => signShare(s, hashed));
  const shares7 = key7.shares.map((s) => signShare(s, hashed));
  const pk1 = verificationKeyOf(1, key4.commitments);
  const verifier4 = new RingKeyVerifier(key4, 4);
  const verifier7 = new RingKeyVerifier(key7, 7);
  rows.push(...measureInterleaved(['share verify, no precompute', () => verifySignatureShare(pk1, hashed, shares4[0]!)], ['share verify, precomputed PK_i', () => verifier4.verifyShare(hashed, shares4[0]!)], budgetMs * 2, 100));
  rows.push(measure('combine t=2 (Lagrange, mulAddUnsafe)', () => combineShares(2, shares4.slice(0, 2)), budgetMs, 200));
  rows.push(measure('combine t=3', () => combineShares(3, shares7.slice(0, 3)), budgetMs, 200));
  rows.push(measure('optimistic combine+verify t=2 (n=4)', () => verifier4.combine(hashed, shares4), budgetMs, 100));
  rows.push(measure('optimistic combine+verify t=3 (n=7)', () => verifier7.combine(hashed, shares7), budgetMs, 100));
  // A pipeline of 8 batches waiting for certificates: one shared weighted check vs 8 checks.
  const pipeline = Array.from({ length: 8 }, (_, i) => {
    const message = hashMessage(new TextEncoder().encode(`pipelined batch ${i}`));
    return { message, shares: key4.shares.slice(0, 2).map((k) => signShare(k, message)) };
  });
  const weights = new Prng(11);
  const [separately, together] = measureInterleaved(
    ['8 batches: optimistic combine+verify each', () => pipeline.forEach((b) => verifier4.combine(b.message, b.shares))],
    ['8 batches: combineMany (one shared check)', () => verifier4.combineMany(weights, pipeline)],
    budgetMs * 2,
    20,
  );
  rows.push({ ...separately, note: 'per 8' }, { ...together, note: `per 8; ${(separately.cpuMedianUs / Math.max(1, together.cpuMedianUs)).toFixed(1)}x less CPU` });
  const bad = [{ index: 1, signature: shares4[3]!.signature }, ...shares4.slice(1)];
  rows.push(measure('combine with 1 bad share among first t (n=4)', () => verifier4.combine(hashed, bad), budgetMs, 30, 'slow path: names the sender'));
  return rows;
}

function certificates(key4: DealtRingKey, budgetMs: number): Row[] {
  const rows: Row[] = [];
  const verifier4 = new RingKeyVerifier(key4, 4);
  const signed = Array.from({ length: 8 }, (_, s) => {
    const batch = batchOf(16, s + 1);
    const signature = verifier4.combine(batch.hashed, key4.shares.slice(0, 2).map((k) => batch.signShare(k))).signature;
    return batch.certificateAt(5, signature);
  });
  const fresh = new CertificateVerifier(nodeCrypto, key4.publicKey);
  // Interleaved, so the machine's noise hits both variants alike; the verifier is rebuilt every
  // 8 calls (its signature cache would otherwise answer) and the build is counted.
  let cycling = fresh;
  const [plain, precomputed] = measureInterleaved(
    ['certificate verify, no precompute (one-shot)', (i) => verifyCertificate(nodeCrypto, key4.publicKey, signed[(i + 8) % 8]!)],
    [
      'certificate verify, precomputed key',
      (i) => {
        if ((i + 8) % 8 === 0) cycling = new CertificateVerifier(nodeCrypto, key4.publicKey);
        cycling.verifyCertificate(signed[(i + 8) % 8]!);
      },
    ],
    budgetMs * 2,
    200,
  );
  rows.push(plain, { ...precomputed, note: 'verifier rebuilt every 8th call' });
  rows.push(measure('certificate verify, batch signature cached', () => fresh.verifyCertificate(signed[0]!), budgetMs / 2, 5000, 'same batch seen before'));
  // A reader checking a history: 16 certificates from 16 different batches (no shared signature).
  const history = Array.from({ length: 16 }, (_, s) => {
    const batch = batchOf(1, 500 + s);
    return batch.certificateAt(0, combineShares(2, key4.shares.slice(0, 2).map((k) => batch.signShare(k))));
  });
  const random = new Prng(3);
  const [oneByOne, together] = measureInterleaved(
    ['16 certificates of 16 batches, one by one', () => {
      const v = new CertificateVerifier(nodeCrypto, key4.publicKey);
      for (const c of history) if (!v.verifyCertificate(c).ok) throw new Error('certificate failed');
    }],
    ['16 certificates of 16 batches, batched (verifyCertificates)', () => {
      const v = new CertificateVerifier(nodeCrypto, key4.publicKey);
      if (!v.verifyCertificates(random, history).every((r) => r.ok)) throw new Error('certificate failed');
    }],
    budgetMs * 2,
    20,
  );
  rows.push({ ...oneByOne, note: 'per 16' }, { ...together, note: `per 16; ${(oneByOne.cpuMedianUs / Math.max(1, together.cpuMedianUs)).toFixed(1)}x less CPU` });
  const leaves = Array.from({ length: 256 }, (_, i) => batchLeafHash(nodeCrypto, new Uint8Array([i, 1, 2])));
  const tree = new BatchMerkleTree(nodeCrypto, leaves);
  const path = tree.pathOf(100);
  rows.push(measure('Merkle path verify (batch of 256, 8 hashes)', () => verifyBatchPath(nodeCrypto, tree.root, leaves[100]!, 100, 256, path), budgetMs / 4, 20000));
  return rows;
}

interface AmortisedRow {
  batchSize: number;
  ringUsPerUpdate: number;
  verifyAllUsPerUpdate: number;
  certificateBytes: number;
}

/**
 * Ring side per batch, on one replica: build the tree and header, hash to the curve once, sign
 * its own share, optimistic combine+verify with one peer's share (computed outside the timing:
 * the peer signs in parallel on its own machine) and cut the certificates. Client side: check
 * every certificate of the batch with one CertificateVerifier (one pairing, then paths).
 */
function amortised(key4: DealtRingKey, rounds: number): AmortisedRow[] {
  const out: AmortisedRow[] = [];
  const verifier4 = new RingKeyVerifier(key4, 4);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const cpuUs = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  for (const size of [1, 16, 256]) {
    const ringUs: number[] = [];
    const verifyUs: number[] = [];
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      const c0 = cpuUs();
      const batch = batchOf(size, 100 + r);
      const own = batch.signShare(key4.shares[0]!);
      const c1 = cpuUs();
      const peer = signShare(key4.shares[1]!, batch.hashed);
      const c2 = cpuUs();
      const certs = batch.proofs(verifier4.combine(batch.hashed, [own, peer]).signature) as Certificate[];
      const c3 = cpuUs();
      const client = new CertificateVerifier(nodeCrypto, key4.publicKey);
      for (const c of certs) if (!client.verifyCertificate(c).ok) throw new Error('certificate failed to verify');
      const c4 = cpuUs();
      ringUs.push(c1 - c0 + (c3 - c2));
      verifyUs.push(c4 - c3);
      bytes = Math.max(bytes, encodeCertificate(certs[certs.length - 1]!).length);
    }
    out.push({
      batchSize: size,
      ringUsPerUpdate: Math.round(median(ringUs) / size),
      verifyAllUsPerUpdate: Math.round(median(verifyUs) / size),
      certificateBytes: bytes,
    });
  }
  return out;
}

function resharing(key4: DealtRingKey, budgetMs: number): Row[] {
  const config = { epoch: 1, oldKey: key4, oldShareCount: 4, newShareCount: 4, newThreshold: 2 };
  const random = new Prng(7);
  const dealings = key4.shares.map((s) => dealResharing(random, config, s));
  const rows: Row[] = [];
  rows.push(measure('resharing: one dealer deals (n=4, t=2)', () => dealResharing(random, config, key4.shares[0]!), budgetMs, 30));
  const transcript = new ResharingTranscript(config);
  for (const d of dealings) transcript.onCommitments(d.dealerIndex, d.commitments);
  const member = new ResharingMember(transcript, 1);
  for (const d of dealings) member.onSubShare(d.dealerIndex, d.subShares[0]!.secretKey);
  rows.push(measure('resharing: check one sub-share', () => member.hasValidSubShare(2), budgetMs, 50));
  rows.push(measure('resharing: check commitments (D_0 = PK_i)', () => new ResharingTranscript(config).onCommitments(2, dealings[1]!.commitments), budgetMs, 50));
  rows.push(measure('resharing: member finishes (checks t sub-shares, combines)', () => member.finish(), budgetMs, 30));
  return rows;
}

function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: (string | number)[]) => '| ' + cells.map((v, c) => (typeof v === 'number' ? String(v).padStart(widths[c]!) : String(v).padEnd(widths[c]!))).join(' | ') + ' |';
  console.log(`\n${title}\n${line(header)}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) console.log(line(r));
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const budgetMs = quick ? 300 : 1500;
  const key4 = dealRingKey(new Prng(1), 4, 2);
  const key7 = dealRingKey(new Prng(2), 7, 3);
  const rows = [...primitives(key4, key7, budgetMs), ...certificates(key4, budgetMs), ...resharing(key4, budgetMs)];
  const amortisedRows = amortised(key4, quick ? 3 : 9);
  const edSign = rows[0]!.cpuMedianUs;
  printTable(
    'threshold BLS12-381 (@noble/curves, pure JS) vs ed25519 (node:crypto)',
    ['operation', 'CPU µs (median)', 'wall µs (median)', 'wall p90 µs', 'samples', '× ed25519 sign (CPU)', 'note'],
    rows.map((r) => [r.operation, r.cpuMedianUs, r.medianUs, r.p90Us, r.samples, +(r.cpuMedianUs / Math.max(1, edSign)).toFixed(1), r.note ?? '']),
  );
  console.log(`load average while measuring: ${loadavg().map((x) => x.toFixed(1)).join(' ')} (wall times inflate under load; CPU times much less)`);
  printTable(
    'per-update certificate cost by batch size, CPU µs (n=4, t=2; one replica builds, signs, combines and verifies)',
    ['batch size', 'ring CPU µs/update', 'client verify-all CPU µs/update', 'certificate bytes'],
    amortisedRows.map((r) => [r.batchSize, r.ringUsPerUpdate, r.verifyAllUsPerUpdate, r.certificateBytes]),
  );
  const machine = machineDescription();
  console.log(`\nmachine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}${quick ? ' (--quick)' : ''}`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'threshold.json'), JSON.stringify({ machine, loadAverage: loadavg(), quick, operations: rows, amortised: amortisedRows }, null, 2));
}
