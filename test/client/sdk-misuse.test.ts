/**
 * The SDK as a developer misuses it (session-19 review of the SDK as a user): every fault here
 * was reproduced on a running cluster and fails without its fix. A cluster in this process (4 ring
 * servers, 1 archive server with k = 1, m = 0, 1 secondary; loopback, temporary directory),
 * started once for the file.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, InvalidArgumentError, newIdentity, SessionClosedError, type OceanStore } from '../../client/index.ts';
import { loadClusterConfig } from '../../runtime/cluster-config.ts';
import { initCluster } from '../../runtime/cluster-keys.ts';
import { silentLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { startNode, type RunningNode } from '../../runtime/node-process.ts';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
let dir = '';
let file = '';
const nodes: RunningNode[] = [];
const stores: OceanStore[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'oceanstore-sdk-misuse-'));
  file = await scratchClusterConfig(join(__dirname, '../../cluster-configs/local.json'), dir);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as { nodes: { name: string }[]; erasure?: unknown };
  raw.nodes = raw.nodes.filter((n) => /^ring-|^archive-0$|^replica-0$/.test(n.name));
  raw.erasure = { k: 1, m: 0 };
  writeFileSync(file, JSON.stringify(raw, null, 2));
  const config = loadClusterConfig(file);
  initCluster(config, nodeCrypto);
  for (const n of config.nodes) nodes.push(await startNode(file, n.name, { log: silentLogger() }));
}, 120_000);

afterAll(async () => {
  for (const s of stores.splice(0)) await s.close().catch(() => undefined);
  for (const n of nodes.splice(0)) await n.stop().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function store(identity = newIdentity()): Promise<OceanStore> {
  const s = await connect({ config: file, identity, connectTimeoutMs: 30_000 });
  stores.push(s);
  return s;
}

const errorOf = (p: Promise<unknown>): Promise<Error | null> => p.then(() => null, (e: Error) => e);

describe('the SDK as a developer misuses it', () => {
  it('two stores with one identity (an app and a CLI call): the one opened first still writes after the other wrote', async () => {
    // Before: nonces had a clock floor only at connect; the later store's went above the earlier
    // one's, which the ring then ignored: every later write of the app ended in TimeoutError.
    const id = newIdentity();
    const app = await store(id);
    const doc = await app.create('shared');
    await doc.write(text('app 1'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const cli = await store(id);
    await cli.open('shared').append(text(' + cli'));
    const r = await doc.write(text('app 2'), { timeoutMs: 10_000 });
    expect(r.version).toBe(3);
    expect(new TextDecoder().decode(await doc.read())).toBe('app 2');
  });

  it('two stores with one identity writing at the same instant: every write commits once', async () => {
    // Before (fourth review): 7 of 12 committed; a request whose nonce the other store's passed
    // was ignored by the ring (TimeoutError), or its update nonce was (ReplayError). Replicas now
    // answer nonce-passed for a request that provably never ran (the client signs it again) and
    // update() retries a replay. Before (session 20): both stores' connections carried one
    // transport name, derived from the identity, so a reply could reach the other store and a
    // write ended in TimeoutError with its outcome unknown. Each store now connects under a key
    // of its own.
    const id = newIdentity();
    const a = await store(id);
    const b = await store(id);
    const handles = [await a.create('concurrent-a'), await b.create('concurrent-b')];
    const rounds = 6;
    for (let round = 0; round < rounds; round++) {
      const outcomes = await Promise.allSettled(handles.map((h, i) => h.append(text('ab'[i]!), { timeoutMs: 10_000 })));
      expect(outcomes.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as Error).name)), `round ${round}`).toEqual(['ok', 'ok']);
    }
    for (const i of [0, 1]) {
      const latest = await handles[i]!.stat();
      const content = new TextDecoder().decode(await handles[i]!.read({ version: latest.version }));
      expect(content).toBe('ab'[i]!.repeat(rounds));
    }
  }, 180_000);

  it('write/append of anything but bytes is an InvalidArgumentError before anything is sent; a Uint8Array of another realm is bytes', async () => {
    // Before: a number[] or a Uint16Array was taken as a byte source, uploaded nothing, and
    // write() committed an empty object.
    const s = await store();
    const o = await s.create('data');
    await o.write(text('keep me'));
    for (const bad of [[1, 2, 3], new Uint16Array([1, 2]), 'text', 42, new ArrayBuffer(4), [text('ok'), 7]] as unknown[]) {
      const e = await errorOf(o.write(bad as Uint8Array));
      expect(e, String(bad)).toBeInstanceOf(InvalidArgumentError);
      expect(e!.message).toContain("'data'");
      expect(await errorOf(o.append(bad as Uint8Array))).toBeInstanceOf(InvalidArgumentError);
    }
    expect((await o.stat()).version).toBe(1);
    expect(new TextDecoder().decode(await o.read())).toBe('keep me');
    const foreign = runInNewContext('new Uint8Array([104, 105])') as Uint8Array;
    expect(foreign instanceof Uint8Array).toBe(false);
    await o.write(foreign);
    expect(new TextDecoder().decode(await o.read())).toBe('hi');
  });

  it('bad write arguments are InvalidArgumentError naming them, and nothing is ordered', async () => {
    // Before: AssertionError from the encoder, a TypeError, or a full ring round and then
    // "the ring refused the update as malformed (client and ring versions differ?)".
    const s = await store();
    const o = await s.create('args');
    await o.write(text('abc'));
    const cases: [string, () => Promise<unknown>][] = [
      ["'sizeBytes'", () => o.truncate(-1)],
      ["'sizeBytes'", () => o.truncate(Number.NaN)],
      ["'ifVersion'", () => o.append(text('x'), { ifVersion: -1 })],
      ["'ifVersion'", () => o.append(text('x'), { ifVersion: '1' as unknown as number })],
      ["'bytes'", () => o.writeAt(0, 'abc' as unknown as Uint8Array)],
      ["'clauses'", () => o.setAcl({ writers: [new Uint8Array(5)] })],
      ["'clauses'", () => o.update(Array.from({ length: 17 }, () => ({ predicates: [], actions: [{ kind: 'append', bytes: text('x') }] })))],
      ["'clauses'", () => o.update([{ predicates: [{ kind: 'no-such-predicate' }], actions: [] }] as never)],
    ];
    for (const [name, call] of cases) {
      const e = await errorOf(call());
      expect(e, name).toBeInstanceOf(InvalidArgumentError);
      expect(e!.message, name).toContain(name);
    }
    expect((await o.stat()).version).toBe(1);
  });

  it('after close() a read ends at once with SessionClosedError, and a watch across close() ends', async () => {
    // Before: a read waited out its whole deadline (15 s) taking the closed session for an
    // unavailable member, and a watch never ended.
    const s = await connect({ config: file, identity: newIdentity(), connectTimeoutMs: 30_000 });
    const o = await s.create('closing');
    await o.write(text('x'));
    let ended = false;
    const watching = (async () => {
      for await (const _ of o.watch({ intervalMs: 50 })) void _;
      ended = true;
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await s.close();
    const startedMs = Date.now();
    expect(await errorOf(o.read())).toBeInstanceOf(SessionClosedError);
    expect(Date.now() - startedMs).toBeLessThan(2_000);
    await Promise.race([watching, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    expect(ended).toBe(true);
  });

  it('a name of 64 lowercase hex digits is refused by create (open() reads it as an AGUID)', async () => {
    const s = await store();
    const e = await errorOf(s.create('a'.repeat(64)));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect(e!.message).toContain("'name'");
    await s.create('A'.repeat(64)); // not lowercase hex: a name
  });
});
