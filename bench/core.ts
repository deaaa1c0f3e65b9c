/**
 * `npm run bench -- core [--quick] [--no-lmdb]`: apply throughput of the version tree next to the
 * raw SHA-256 throughput of the same bytes, measured in the same run (node:crypto).
 *
 * Scenarios (issue 2): a 256 MiB append — by reference (the client uploads 64 KiB blocks, the ring
 * verifies each with putVerified, then one update per 4 MiB names them) and inline (4 MiB of bytes
 * inside each update) — and 10,000 random 4 KiB writes (into 64 KiB leaves, and aligned into 4 KiB
 * leaves). Every update is one new version; each timed step includes what the ring does per
 * update: the update digest, applyUpdate, and (lmdb rows) making the new blocks durable.
 * Throughput is computed from process CPU time (user + system), which stays meaningful when other
 * work shares the cores; wall time is reported beside it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aguidOf, signerOf } from '../core/crypto.ts';
import { applyUpdate } from '../core/update/apply.ts';
import { updateDigest } from '../core/update/update-signature.ts';
import type { Action, Update } from '../core/update/update.ts';
import { bguidOf } from '../core/version/block.ts';
import { type BlockStore, MemoryBlockStore } from '../core/version/block-store.ts';
import { NodeCache } from '../core/version/node-cache.ts';
import type { Head } from '../core/version/root-block.ts';
import { LmdbBlockStore } from '../runtime/lmdb-block-store.ts';
import { nodeCrypto as crypto } from '../runtime/node-crypto.ts';
import { Prng } from '../sim/prng.ts';
import { machineDescription } from './_machine.ts';

const MiB = 2 ** 20;
const owner = signerOf(crypto, new Uint8Array(32).fill(7));
const objectName = 'bench/object';
const aguid = aguidOf(crypto, owner.publicKey, objectName);
const signature = new Uint8Array(64); // apply does not verify signatures; the ring does, before

interface Row {
  scenario: string;
  store: string;
  userBytes: number;
  updates: number;
  cpuMs: number;
  wallMs: number;
  applyMBps: number;
  hashMBps: number;
  /** apply throughput / raw hash throughput of the same bytes. */
  ratio: number;
  blocksWritten: number;
  /** Bytes hashed by the store and tree per user byte (>= 1; copy-on-write amplification). */
  hashedPerUserByte: number;
}

interface Clock {
  cpuMs: number;
  wallMs: number;
}

function timed(fn: () => void): Clock {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
}

async function timedAsync(fn: () => Promise<void>): Promise<Clock> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0 };
}

/** Raw SHA-256 of `chunks`, one call each (content addressing hashes every block separately). Best of 3 by CPU time. */
function rawHashMBps(chunks: readonly Uint8Array[]): number {
  let bytes = 0;
  for (const c of chunks) bytes += c.length;
  let best = Infinity;
  for (let r = 0; r < 3; r++) best = Math.min(best, timed(() => chunks.forEach((c) => crypto.sha256([c]))).cpuMs);
  return bytes / MiB / (best / 1000);
}

/** Counts bytes hashed through the crypto interface (what the tree makes SHA-256 do). */
const counting = { bytes: 0 };
const countingCrypto = {
  ...crypto,
  sha256(chunks: readonly Uint8Array[]): Uint8Array {
    for (const c of chunks) counting.bytes += c.length;
    return crypto.sha256(chunks);
  },
};

class Target {
  head: Head | null = null;
  /** A ring replica keeps decoded interior nodes across applies. */
  readonly nodeCache = new NodeCache();
  nonce = 0;
  blocksWritten = 0;
  constructor(readonly blocks: BlockStore & { flush?: () => Promise<void> }) {}

  update(actions: Action[]): Update {
    return { aguid, writerPublicKey: owner.publicKey, nonce: ++this.nonce, clauses: [{ predicates: [], actions }], signature };
  }

  /** What the ring does per ordered update: digest it, apply it. */
  apply(u: Update): void {
    const digest = updateDigest(countingCrypto, u);
    const outcome = applyUpdate({ crypto: countingCrypto, blocks: this.blocks, timestampMs: this.nonce, updateDigest: digest, nodeCache: this.nodeCache }, this.head, u);
    if (outcome.kind !== 'commit') throw new Error(`bench update aborted: ${outcome.reason} ${outcome.detail}`);
    this.head = outcome.head;
    this.blocksWritten += outcome.newBlocks.length;
  }
}

function memoryStore(verifyOnGet: boolean): MemoryBlockStore {
  return new MemoryBlockStore(countingCrypto, { verifyOnGet });
}

function row(scenario: string, store: string, userBytes: number, updates: number, clock: Clock, hashMBps: number, t: Target, hashedBytes: number): Row {
  const applyMBps = userBytes / MiB / (clock.cpuMs / 1000);
  return {
    scenario,
    store,
    userBytes,
    updates,
    cpuMs: Math.round(clock.cpuMs),
    wallMs: Math.round(clock.wallMs),
    applyMBps: Math.round(applyMBps * 10) / 10,
    hashMBps: Math.round(hashMBps * 10) / 10,
    ratio: Math.round((applyMBps / hashMBps) * 1000) / 1000,
    blocksWritten: t.blocksWritten,
    hashedPerUserByte: Math.round((hashedBytes / userBytes) * 100) / 100,
  };
}

/** Appends `data` as uploaded 64 KiB blocks named by reference, `refsPerUpdate` per update. */
async function appendByReference(t: Target, data: Uint8Array, blockBytes: number, refsPerUpdate: number, flush: boolean): Promise<Clock> {
  const blocks: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += blockBytes) blocks.push(data.subarray(at, at + blockBytes));
  const names = blocks.map((b) => bguidOf(crypto, 'data', b)); // the client's work, not the ring's
  return timedAsync(async () => {
    for (let i = 0; i < blocks.length; i += refsPerUpdate) {
      const batch = blocks.slice(i, i + refsPerUpdate);
      batch.forEach((b, j) => t.blocks.putVerified(names[i + j]!, 'data', b));
      t.apply(t.update([{ kind: 'append-blocks', blocks: batch.map((b, j) => ({ kind: 'ref' as const, bguid: names[i + j]!, length: b.length })) }]));
      if (flush) await t.blocks.flush!();
    }
  });
}

function appendInline(t: Target, data: Uint8Array, bytesPerUpdate: number): Clock {
  return timed(() => {
    for (let at = 0; at < data.length; at += bytesPerUpdate) t.apply(t.update([{ kind: 'append', bytes: data.subarray(at, at + bytesPerUpdate) }]));
  });
}

function created(store: BlockStore & { flush?: () => Promise<void> }, blockBytes: number, fanoutMax: number): Target {
  const t = new Target(store);
  t.apply(t.update([{ kind: 'create', name: objectName, blockBytes, fanoutMax, writerPublicKeys: [] }]));
  t.blocksWritten = 0;
  return t;
}

async function randomWrites(
  t: Target,
  objectBytes: number,
  writeCount: number,
  alignBytes: number,
  flushEvery: number,
  prng: Prng,
  writesPerUpdate = 1,
): Promise<{ clock: Clock; payloads: Uint8Array[] }> {
  const payloads = Array.from({ length: writeCount }, () => prng.bytes(4096));
  const offsets = payloads.map(() => prng.int((objectBytes - 4096) / alignBytes + 1) * alignBytes);
  const clock = await timedAsync(async () => {
    for (let i = 0; i < writeCount; i += writesPerUpdate) {
      const actions: Action[] = [];
      for (let j = i; j < Math.min(writeCount, i + writesPerUpdate); j++) actions.push({ kind: 'write-bytes', offset: offsets[j]!, bytes: payloads[j]! });
      t.apply(t.update(actions));
      if (t.blocks.flush && (i / writesPerUpdate + 1) % flushEvery === 0) await t.blocks.flush();
    }
    if (t.blocks.flush) await t.blocks.flush();
  });
  return { clock, payloads };
}

interface Setup {
  readonly data: Uint8Array;
  readonly appendBytes: number;
  readonly writeCount: number;
  readonly writeObjectBytes: number;
  readonly withLmdb: boolean;
  lmdbStore(name: string): LmdbBlockStore;
}

type Best = { clock: Clock; t: Target; hashed: number };

/** Runs `once` `repeats` times on fresh objects and keeps the cheapest by CPU time. */
async function bestOf(repeats: number, once: () => Promise<{ clock: Clock; t: Target }>): Promise<Best> {
  let best: Best | null = null;
  for (let r = 0; r < repeats; r++) {
    counting.bytes = 0;
    const { clock, t } = await once();
    if (!best || clock.cpuMs < best.clock.cpuMs) best = { clock, t, hashed: counting.bytes };
  }
  return best!;
}

async function appendRows(s: Setup): Promise<Row[]> {
  const rows: Row[] = [];
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < s.data.length; at += 64 * 1024) chunks.push(s.data.subarray(at, at + 64 * 1024));
  const label = (how: string) => `append ${s.appendBytes / MiB} MiB ${how}`;
  const updates = s.appendBytes / (4 * MiB);
  // Memory rows: best of 3 fresh runs by CPU time, like the baseline; lmdb: one run (disk state).
  let hash = rawHashMBps(chunks);
  let b = await bestOf(3, async () => {
    const t = created(memoryStore(true), 64 * 1024, 64);
    return { clock: await appendByReference(t, s.data, 64 * 1024, 64, false), t };
  });
  rows.push(row(label('by reference (64 KiB blocks, 4 MiB/update)'), 'memory', s.appendBytes, updates, b.clock, hash, b.t, b.hashed));
  if (s.withLmdb) {
    hash = rawHashMBps(chunks);
    b = await bestOf(1, async () => {
      const t = created(s.lmdbStore('append-refs'), 64 * 1024, 64);
      const clock = await appendByReference(t, s.data, 64 * 1024, 64, true);
      await (t.blocks as LmdbBlockStore).close();
      return { clock, t };
    });
    rows.push(row(label('by reference (64 KiB blocks, 4 MiB/update)'), 'lmdb (flush per update)', s.appendBytes, updates, b.clock, hash, b.t, b.hashed));
  }
  hash = rawHashMBps(chunks);
  b = await bestOf(3, async () => {
    const t = created(memoryStore(true), 64 * 1024, 64);
    return { clock: appendInline(t, s.data, 4 * MiB), t };
  });
  rows.push(row(label('inline (4 MiB/update)'), 'memory', s.appendBytes, updates, b.clock, hash, b.t, b.hashed));
  return rows;
}

const writeConfigs = [
  { label: '64 KiB leaves, any offset', blockBytes: 64 * 1024, fanoutMax: 64, alignBytes: 1 },
  { label: '4 KiB leaves, aligned', blockBytes: 4096, fanoutMax: 16, alignBytes: 4096 },
] as const;

async function writeRow(s: Setup, cfg: (typeof writeConfigs)[number], store: string, blocks: Target['blocks'], writesPerUpdate: number): Promise<Row> {
  const t = created(blocks, cfg.blockBytes, cfg.fanoutMax);
  await appendByReference(t, s.data.subarray(0, s.writeObjectBytes), cfg.blockBytes, 1024, false);
  if (t.blocks instanceof LmdbBlockStore) await t.blocks.flush();
  t.blocksWritten = 0;
  counting.bytes = 0;
  const { clock, payloads } = await randomWrites(t, s.writeObjectBytes, s.writeCount, cfg.alignBytes, 100, new Prng(3), writesPerUpdate);
  const hashed = counting.bytes;
  if (t.blocks instanceof LmdbBlockStore) await t.blocks.close();
  const batching = writesPerUpdate > 1 ? `, ${writesPerUpdate} per update` : '';
  const scenario = `${s.writeCount} random 4 KiB writes${batching} (${cfg.label}, fan-out ${cfg.fanoutMax})`;
  return row(scenario, store, s.writeCount * 4096, Math.ceil(s.writeCount / writesPerUpdate), clock, rawHashMBps(payloads), t, hashed);
}

async function writeRows(s: Setup): Promise<Row[]> {
  const rows: Row[] = [];
  for (const cfg of writeConfigs) {
    rows.push(await writeRow(s, cfg, 'memory', memoryStore(true), 1));
    rows.push(await writeRow(s, cfg, 'memory, verifyOnGet off', memoryStore(false), 1));
    if (s.withLmdb) rows.push(await writeRow(s, cfg, 'lmdb (flush per 100 updates)', s.lmdbStore(`writes-${cfg.blockBytes}`), 1));
  }
  // The same small writes batched: 64 write-bytes actions per update share one root block and one digest.
  rows.push(await writeRow(s, writeConfigs[1], 'memory', memoryStore(true), 64));
  return rows;
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const appendBytes = (quick ? 32 : 256) * MiB;
  const tmp = mkdtempSync(join(tmpdir(), 'oceanstore-bench-core-'));
  const setup: Setup = {
    data: new Prng(2).bytes(appendBytes),
    appendBytes,
    writeCount: quick ? 1000 : 10_000,
    writeObjectBytes: (quick ? 16 : 64) * MiB,
    withLmdb: !args.includes('--no-lmdb'),
    lmdbStore: (name) => new LmdbBlockStore(countingCrypto, { path: join(tmp, name), mapBytes: 2 * appendBytes }),
  };
  let rows: Row[];
  try {
    rows = [...(await appendRows(setup)), ...(await writeRows(setup))];
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  print(rows);
  const machine = { ...machineDescription(), loadAverage1m: Math.round(loadavg()[0]! * 10) / 10 };
  console.log(`\nmachine: ${JSON.stringify(machine)}`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'core.json'), JSON.stringify({ quick, machine, rows }, null, 2) + '\n');
  console.log(`wrote ${join(out, 'core.json')}`);
}

function print(rows: Row[]): void {
  const header = ['scenario', 'store', 'updates', 'cpu ms', 'wall ms', 'apply MB/s', 'raw SHA-256 MB/s', 'ratio', 'blocks', 'hashed/user B'];
  const lines = rows.map((r) => [r.scenario, r.store, r.updates, r.cpuMs, r.wallMs, r.applyMBps, r.hashMBps, r.ratio, r.blocksWritten, r.hashedPerUserByte].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(fmt(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const l of lines) console.log(fmt(l));
}
