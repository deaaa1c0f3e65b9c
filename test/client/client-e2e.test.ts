// Issue 7's must-shows against a real cluster of processes (cluster-configs/local.json topology on
// free loopback ports): byte-identical round trips at block-boundary sizes and 10 MiB, two writers
// racing on one --if-version, a writer not on the ACL refused with nothing changed, every old
// version readable after 100 updates, and the CLI's put/get/log/stat with its exit codes. The
// tampering-proxy must-show (tampering-suite.ts) runs at the end on the same cluster.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { connect, loadOrCreateIdentity, newIdentity, PredicateFailedError, UnauthorizedError, type OceanStore } from '../../client/index.ts';
import { type ClusterConfig } from '../../runtime/cluster-config.ts';
import { archivingStallSuite } from './archiving-stall.ts';
import { runCli, sdkCluster } from './sdk-cluster.ts';
import { tamperingSuite } from './tampering-suite.ts';

const cluster = sdkCluster();
let config: ClusterConfig;
let dir: string;
let owner: OceanStore;
beforeAll(() => {
  ({ config, dir, owner } = cluster);
});

const cli = (args: string[], identity?: string, launch = false) => runCli(config, args, identity, launch);

describe('client SDK against a real cluster', () => {
  it('round-trips 0, 1, 65535, 65536, 65537 bytes and 10 MiB byte-identically', async () => {
    const obj = await owner.create('sizes');
    for (const size of [0, 1, 65_535, 65_536, 65_537, 10 * 2 ** 20]) {
      const data = new Uint8Array(randomBytes(size));
      const written = await obj.write(data);
      const back = await obj.read();
      expect(back.length, `size ${size}`).toBe(size);
      expect(Buffer.compare(Buffer.from(back), Buffer.from(data)), `size ${size}`).toBe(0);
      expect((await obj.stat()).version).toBe(written.version);
    }
  }, 180_000);

  it('two writers racing on one ifVersion: exactly one commits, the other gets PredicateFailed naming the current version', async () => {
    const other = await connect({ config: config.file, identity: newIdentity() });
    try {
      const obj = await owner.create('race', { writers: [other.identity.publicKey] });
      const base = await obj.write(new TextEncoder().encode('base'));
      const theirs = other.open('race', owner.identity.publicKey);
      const results = await Promise.allSettled([
        obj.write(new TextEncoder().encode('mine'), { ifVersion: base.version }),
        theirs.write(new TextEncoder().encode('theirs'), { ifVersion: base.version }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]!.reason).toBeInstanceOf(PredicateFailedError);
      expect((lost[0]!.reason as PredicateFailedError).currentVersion).toBe(base.version + 1);
      const versions = await obj.versions();
      expect(versions.map((v) => v.version)).toEqual([0, 1, 2]);
    } finally {
      await other.close();
    }
  }, 120_000);

  it('a writer not on the ACL is refused with Unauthorized and nothing changes', async () => {
    const stranger = await connect({ config: config.file, identity: newIdentity() });
    try {
      const obj = await owner.create('private');
      await obj.write(new TextEncoder().encode('secret'));
      const before = await obj.stat();
      await expect(stranger.open('private', owner.identity.publicKey).write(new TextEncoder().encode('vandal'))).rejects.toBeInstanceOf(UnauthorizedError);
      await expect(stranger.open('private', owner.identity.publicKey).setAcl({ writers: [stranger.identity.publicKey] })).rejects.toBeInstanceOf(
        UnauthorizedError,
      );
      const after = await obj.stat();
      expect(after.version).toBe(before.version);
      expect(after.vguid).toBe(before.vguid);
      expect(new TextDecoder().decode(await obj.read())).toBe('secret');
    } finally {
      await stranger.close();
    }
  }, 120_000);

  it('reads every old version exactly after 100 updates from 4 concurrent writers', async () => {
    const obj = await owner.create('history');
    const writers = await Promise.all([0, 1, 2].map(() => connect({ config: config.file, identity: newIdentity() })));
    try {
      await obj.setAcl({ writers: writers.map((w) => w.identity.publicKey) });
      const handles = [obj, ...writers.map((w) => w.open('history', owner.identity.publicKey))];
      const chunkOf = new Map<number, Uint8Array>();
      await Promise.all(
        handles.map(async (h, w) => {
          for (let i = 0; i < 25; i++) {
            const chunk = new TextEncoder().encode(`w${w}-${i};`);
            const r = await h.append(chunk);
            chunkOf.set(r.version, chunk);
          }
        }),
      );
      expect(chunkOf.size).toBe(100);
      const versions = [...chunkOf.keys()].sort((a, b) => a - b);
      let expected = '';
      for (const v of versions) {
        expected += new TextDecoder().decode(chunkOf.get(v)!);
        expect(new TextDecoder().decode(await obj.read({ version: v })), `version ${v}`).toBe(expected);
      }
    } finally {
      await Promise.all(writers.map((w) => w.close()));
    }
  }, 300_000);

  it('archives every committed version: `restore` rebuilds it from fragments alone (equal leaves included)', async () => {
    const obj = await owner.create('archived');
    // 4 equal 64 KiB leaves (one BGUID named four times) and a short last leaf.
    const data = new Uint8Array(300_000).map((_, i) => (i * 13) & 255);
    const written = await obj.write(data);
    await written.certified;
    const out = join(dir, 'restored.bin');
    let restored = { code: -1, stdout: '', stderr: '' };
    // Archiving follows the certificate (fallback ranks wait up to a few seconds): poll, bounded.
    for (let attempt = 0; attempt < 30; attempt++) {
      restored = await cli(['restore', obj.aguidHex, '--version', String(written.version), '-o', out]);
      if (restored.code === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
    expect(restored.code, restored.stderr + restored.stdout).toBe(0);
    expect(Buffer.compare(readFileSync(out), Buffer.from(data))).toBe(0);
  }, 180_000);

  it('CLI: put, get, stat, log round-trip a file; --if-version on a stale version exits 3', async () => {
    const identity = join(dir, 'cli-identity.json');
    loadOrCreateIdentity(identity); // the CLI makes only ~/.oceanstore/identity.json by itself
    const input = join(dir, 'in.bin');
    const output = join(dir, 'out.bin');
    const data = randomBytes(200_000);
    writeFileSync(input, data);
    const put = await cli(['put', 'cli-obj', input, '--json'], identity);
    expect(put.code, put.stderr).toBe(0);
    const putResult = JSON.parse(put.stdout) as { version: number };
    const get = await cli(['get', 'cli-obj', '-o', output], identity);
    expect(get.code, get.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(output), data)).toBe(0);
    const stat = JSON.parse((await cli(['stat', 'cli-obj', '--json'], identity)).stdout) as { version: number; sizeBytes: number };
    expect(stat).toMatchObject({ version: putResult.version, sizeBytes: data.length });
    const log = JSON.parse((await cli(['log', 'cli-obj', '--json'], identity)).stdout) as { version: number }[];
    expect(log.map((v) => v.version)).toEqual([0, putResult.version]);
    const stale = await cli(['put', 'cli-obj', input, '--if-version', '0'], identity);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(/predicate failed/);
    const usage = await cli(['get'], identity);
    expect(usage.code).toBe(2);
  }, 180_000);

  it('CLI through cli/launch.mjs (object verbs without tsx): the same bytes and exit codes as through cli/main.ts', async () => {
    const identity = join(dir, 'launch-identity.json');
    loadOrCreateIdentity(identity); // the CLI makes only ~/.oceanstore/identity.json by itself
    const input = join(dir, 'launch-in.bin');
    const output = join(dir, 'launch-out.bin');
    const data = randomBytes(150_000);
    writeFileSync(input, data);
    await cli(['get', '--help'], identity); // builds the bundle if a source changed (through main.ts)
    const put = await cli(['put', 'launch-obj', input, '--json'], identity, true);
    expect(put.code, put.stderr).toBe(0);
    const get = await cli(['get', 'launch-obj', '-o', output], identity, true);
    expect(get.code, get.stderr).toBe(0);
    expect(Buffer.compare(readFileSync(output), data)).toBe(0);
    const stale = await cli(['put', 'launch-obj', input, '--if-version', '0'], identity, true);
    expect(stale.code).toBe(3);
    expect(stale.stderr).toMatch(/predicate failed/);
    expect((await cli(['get'], identity, true)).code).toBe(2);
    const missing = await cli(['get', 'launch-no-such-object'], identity, true);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NotFoundError/);
    // Other verbs fall through to cli/main.ts under tsx.
    const status = await cli(['cluster', 'status', '--json'], undefined, true);
    expect((JSON.parse(status.stdout) as unknown[]).length, status.stderr).toBe(config.nodes.length);
  }, 180_000);
});

tamperingSuite(() => ({ config, owner }));

describe('archiving a large version on a real cluster', () => {
  archivingStallSuite(() => ({ config, owner }));
});
