/**
 * Real processes on loopback: the 14-node topology of cluster-configs/local.json started by the
 * CLI, probed from outside (admin port, impostor and garbage-sending peers), crashed and restarted,
 * and brought down with no process left behind.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromHex } from '../../core/bytes.ts';
import { clusterPaths, loadClusterConfig, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { initCluster, loadDescriptor } from '../../runtime/cluster-keys.ts';
import { fetchJson, isNodeProcess, runningPid, spawnNode, stopAll, stopNode, waitReady } from '../../runtime/cluster-launcher.ts';
import { memoryLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { RingSession } from '../../runtime/ring-session.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { chainWriter, type ChainWriter } from '../../runtime/chain-writer.ts';
import { logLines, tempClusterConfig } from './cluster-fixture.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
let config: ClusterConfig;
let dir: string;
let members: Map<string, PeerAddress>;
const transports: Transport[] = [];
let session: RingSession;

async function cli(...args: string[]): Promise<{ stdout: string; ms: number }> {
  const startedMs = Date.now();
  const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args, '--config', config.file], { timeout: 60_000 });
  return { stdout, ms: Date.now() - startedMs };
}

beforeAll(async () => {
  const temp = await tempClusterConfig('cluster-configs/local.json');
  dir = temp.dir;
  config = loadClusterConfig(temp.file);
  initCluster(config, nodeCrypto);
  const descriptor = loadDescriptor(config, nodeCrypto);
  members = new Map(descriptor.nodes.map((n) => [n.name, { publicKey: fromHex(n.publicKey), url: n.url }]));
});

afterAll(async () => {
  await session?.stop();
  for (const t of transports) await t.stop();
  if (config) await stopAll(config, { kill: true });
  rmSync(dir, { recursive: true, force: true });
});

async function statusOf(name: string): Promise<Record<string, unknown>> {
  const node = config.nodes.find((n) => n.name === name)!;
  return (await fetchJson(`http://127.0.0.1:${node.adminPort}/status`, 2000)) ?? {};
}

function valueOf(writer: ChainWriter): Uint8Array {
  return new Uint8Array(4096).fill((writer.version * 31) & 0xff);
}

function ringLog(name: string) {
  return logLines(clusterPaths(config).log(name));
}

describe('cluster of real processes (local.json topology)', () => {
  it('comes up from nothing with `cluster up --detach` within the 20 s readiness bound, every node meshed', async () => {
    const { stdout, ms } = await cli('cluster', 'up', '--detach', '--timeout-ms', '20000');
    expect(stdout).toMatch(/14 nodes ready in/);
    console.log(`cluster up --detach: ${ms} ms wall (CLI start included)`);
    type Row = { name: string; state: string; status: { peers: string[]; cores: string[] } };
    const statusRows = async () => JSON.parse((await cli('cluster', 'status', '--json')).stdout) as Row[];
    let rows = await statusRows();
    expect(rows.map((r) => r.state)).toEqual(Array(14).fill('up'));
    // Ready means a quorum of ring servers connected; the full mesh can take a moment longer on a
    // loaded machine (several such clusters run at once in the suite).
    for (let i = 0; i < 20 && !rows.every((r) => r.status.peers.length === 13); i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      rows = await statusRows();
    }
    expect(rows.filter((r) => r.status.peers.length !== 13).map((r) => `${r.name}: ${r.status.peers.length}`)).toEqual([]);
    // Each role hosts its cores: PBFT replica, archive server, and a Tapestry node everywhere.
    const coresOf = (name: string) => rows.find((r) => r.name === name)!.status.cores;
    expect(coresOf('ring-0')).toEqual(expect.arrayContaining(['ring', 'tapestry']));
    expect(coresOf('archive-0')).toEqual(expect.arrayContaining(['archive', 'tapestry']));
    expect(coresOf('replica-0')).toEqual(expect.arrayContaining(['tapestry']));
  });

  it('takes writes: 4 clients x 5 chained 4 KiB updates, each acknowledged by f+1 signed replies, certificates valid', async () => {
    session = new RingSession({ descriptor: loadDescriptor(config, nodeCrypto), crypto: nodeCrypto, log: memoryLogger('client', 'warn').log, clientCount: 4, certificates: 'deferred' });
    await session.start();
    const writers = await Promise.all([0, 1, 2, 3].map((i) => chainWriter(session, i, 'warmup')));
    await Promise.all(writers.map((w) => w.prepare(20_000)));
    await Promise.all(writers.map(async (w) => {
      for (let i = 0; i < 5; i++) await w.write(valueOf(w), 20_000);
    }));
    expect(writers.map((w) => w.version)).toEqual([5, 5, 5, 5]);
    await waitFor(() => session.verifyRecordedCertificates()[1] > 0, 10_000, 'a certificate');
    const [valid, total] = session.verifyRecordedCertificates();
    expect(valid).toBe(total);
    // Ring servers sign shares, combine and check certificates on their certificate thread
    // (runtime/certificate-thread.ts), never inline: the launcher bundles that thread too (runtime/node-bundle.ts).
    const threads = await Promise.all(['ring-0', 'ring-1', 'ring-2', 'ring-3'].map(async (n) => (await statusOf(n)).certificateThread as { onThread: number; inline: number }));
    expect(threads.reduce((sum, c) => sum + c.onThread, 0)).toBeGreaterThan(0);
    expect(threads.map((c) => c.inline)).toEqual([0, 0, 0, 0]);
  });

  it('kill -9 of the primary during a stream of writes: view change, writes go on, the restarted server catches up, nothing acknowledged is lost (PBFT §4.4, §4.5)', async () => {
    const writers = await Promise.all([0, 1, 2, 3].map((i) => chainWriter(session, i, 'stream')));
    await Promise.all(writers.map((w) => w.prepare(20_000)));
    let running = true;
    const loops = writers.map(async (w) => {
      for (let i = 0; i < 10_000 && running; i++) await w.write(valueOf(w), 30_000);
    });
    await waitFor(() => writers.every((w) => w.acknowledged >= 3), 20_000, 'writes before the crash');
    const primary = String((await statusOf('ring-1')).primary);
    expect(primary).toBe('ring-0');
    await stopNode(config, primary, { kill: true });
    const ackedAtCrash = writers.map((w) => w.acknowledged);
    await waitFor(() => writers.every((w, i) => w.acknowledged >= ackedAtCrash[i]! + 3), 45_000, 'writes after the crash');
    const view = Number((await statusOf('ring-1')).view);
    expect(view).toBeGreaterThanOrEqual(1);
    await spawnNode(config, primary);
    await waitReady(config, [primary], 20_000);
    const ackedAtRestart = writers.map((w) => w.acknowledged);
    await waitFor(() => writers.every((w, i) => w.acknowledged >= ackedAtRestart[i]! + 2), 30_000, 'writes after the restart');
    running = false;
    await Promise.all(loops);
    // Catch-up: the restarted server reaches the sequence number the others executed.
    let target = 0;
    await waitFor(async () => {
      const seqs = await Promise.all(['ring-1', 'ring-2', 'ring-3'].map(async (n) => Number((await statusOf(n)).seq)));
      target = Math.max(...seqs);
      return Number((await statusOf(primary)).seq) >= target;
    }, 30_000, `${primary} catching up`);
    expect(Number((await statusOf(primary)).seq)).toBeGreaterThanOrEqual(target);
    // Nothing acknowledged lost: one more write per chain, demanding the acknowledged version, commits
    // as the next version (with the KV service it also extends the VGUID chain of every acknowledged value).
    for (const w of writers) await w.write(valueOf(w), 20_000);
    const [valid, total] = session.verifyRecordedCertificates();
    expect(valid).toBe(total);
    console.log(`kill -9 ${primary}: view ${view}; acknowledged ${writers.map((w) => w.acknowledged).join('/')} writes, all present`);
  });

  it('serves /health and Prometheus /metrics on the admin port', async () => {
    const ring0 = config.nodes.find((n) => n.name === 'ring-0')!;
    const health = (await (await fetch(`http://127.0.0.1:${ring0.adminPort}/health`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', name: 'ring-0', ready: true });
    const metrics = await (await fetch(`http://127.0.0.1:${ring0.adminPort}/metrics`)).text();
    for (const name of ['oceanstore_requests_total', 'oceanstore_commits_total', 'oceanstore_view_changes_total', 'oceanstore_batch_size',
      'oceanstore_request_latency_seconds', 'oceanstore_bytes_stored', 'oceanstore_fragments_held', 'oceanstore_repairs_total']) {
      expect(metrics).toContain(name);
    }
  });

  it('refuses an impostor that claims a ring server name with a key not in the config', async () => {
    const impostor = new Transport({
      name: 'ring-1', secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members, frameBytesMax: 1 << 20,
      log: memoryLogger().log, reconnectMsMin: 200, reconnectMsMax: 1000,
    });
    transports.push(impostor);
    await impostor.start();
    impostor.send('ring-0', Uint8Array.of(1, 2, 3));
    await waitFor(() => ringLog('ring-0').some((l) => String(l.reason).startsWith("impostor: key does not match config member 'ring-1'")), 10_000, 'refusal logged');
    expect(impostor.connectedPeers()).toEqual([]);
    await impostor.stop();
    const { stdout } = await cli('cluster', 'status', '--json');
    const ring0 = (JSON.parse(stdout) as { name: string; state: string; status: { peers: string[] } }[]).find((r) => r.name === 'ring-0')!;
    expect(ring0.state).toBe('up');
    expect(ring0.status.peers).toContain('ring-1'); // the real ring-1 is still connected
  });

  it('drops malformed and oversized frames with a logged reason and keeps running', async () => {
    const client = new Transport({
      name: 'test-client', secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members, frameBytesMax: 4 << 20, log: memoryLogger().log,
    });
    transports.push(client);
    await client.start();
    client.send('ring-0', new Uint8Array(0));
    client.send('ring-0', Uint8Array.of(200, 1, 2));
    client.send('ring-0', Uint8Array.of(1, 0xc1, 0xff, 0x00)); // channel 1 (ring), not msgpack
    const tooBig = new Uint8Array(100 * 1024);
    tooBig[0] = 2; // the Tapestry channel, whose frames are limited to 64 KiB
    client.send('ring-0', tooBig);
    await waitFor(() => {
      const reasons = ringLog('ring-0').filter((l) => String(l.msg).startsWith('frame dropped')).map((l) => `${l.msg} ${l.reason ?? ''}`);
      return reasons.some((r) => r.includes('empty frame')) && reasons.some((r) => r.includes('unknown channel 200')) &&
        reasons.some((r) => r.includes('oversized')) && reasons.some((r) => r.includes('malformed')) && reasons.length >= 4;
    }, 10_000, 'four drops logged');
    const ring0 = config.nodes.find((n) => n.name === 'ring-0')!;
    const health = (await (await fetch(`http://127.0.0.1:${ring0.adminPort}/health`)).json()) as Record<string, unknown>;
    expect(health.ready).toBe(true);
    expect(client.connectedPeers()).toEqual(['ring-0']);
  });

  it('`cluster down` leaves no process behind', async () => {
    const pids = config.nodes.map((n) => [n.name, runningPid(config, n.name)] as const);
    expect(pids.every(([, p]) => p !== null)).toBe(true);
    const { stdout } = await cli('cluster', 'down');
    expect(stdout).toMatch(/stopped 14 nodes$/m);
    for (const [name, pid] of pids) expect(isNodeProcess(pid!, name, config.file), name).toBe(false);
    expect(pids.every(([name]) => runningPid(config, name) === null)).toBe(true);
  });
});
