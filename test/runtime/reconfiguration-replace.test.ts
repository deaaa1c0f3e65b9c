/**
 * Replacing a ring server on real processes (issue 10): four ring servers, a spare and two
 * archive servers on loopback; chained writers write without pause while `oceanstore cluster
 * replace-node ring-3 --with spare-0` runs. The ring reshares to the new member set, switches
 * PBFT to it at the checkpoint boundary, the spare catches up by state transfer and votes, ring-3
 * deletes its share and is stopped. No acknowledged write is lost, the client keeps the ring
 * public key it started with (and its member list: f+1 replies come from the staying servers),
 * and every certificate it received verifies under that key. The descriptor is then re-signed
 * with the new members, a client that starts afterwards talks to spare-0, not ring-3, and a key
 * refresh runs on the new ring.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterPaths, type ClusterConfig } from '../../runtime/cluster-config.ts';
import { currentRingOf, loadDescriptor } from '../../runtime/cluster-keys.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { fetchJson, runningPid } from '../../runtime/cluster-launcher.ts';
import { connect } from '../../client/oceanstore.ts';
import { newIdentity } from '../../client/identity.ts';
import { ringReconfigurationStatus } from '../../runtime/reconfiguration-client.ts';
import type { RingSession } from '../../runtime/ring-session.ts';
import { startChainedWriting, startSmallCluster, stopSmallCluster, waitEveryWriteCertified, type SmallCluster } from './reconfiguration-cluster.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
let config: ClusterConfig;
let cluster: SmallCluster | undefined;
let session: RingSession | undefined;

beforeAll(async () => {
  cluster = await startSmallCluster('replace', ['ring-0', 'ring-1', 'ring-2', 'ring-3', 'spare-0', 'spare-1', 'archive-0', 'archive-1']);
  config = cluster.config;
}, 150_000);

afterAll(async () => {
  await session?.stop();
  await stopSmallCluster(cluster);
});

describe('cluster replace-node on real processes', () => {
  it('replaces ring-3 by spare-0 while clients write; nothing acknowledged is lost; ring-3 is out; the ring key holds', async () => {
    const descriptorBefore = loadDescriptor(config, nodeCrypto);
    const writing = await startChainedWriting(config, 'replace', 9, 60_000);
    session = writing.session;
    const { writers, value, atStart } = writing;

    const startedMs = Date.now();
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', 'replace-node', 'ring-3', '--with', 'spare-0', '--config', config.file], { timeout: 200_000 });
    const replaceMs = Date.now() - startedMs;
    expect(stdout).toMatch(/ring members \[ring-0, ring-1, ring-2, spare-0\]; ring-3 stopped/);
    expect(stdout).toMatch(/ring descriptor re-signed: ring members \[ring-0, ring-1, ring-2, spare-0\]/);
    expect(runningPid(config, 'ring-3')).toBeNull();
    expect(writers.every((w, i) => w.version > atStart[i]! + 2)).toBe(true); // writes went on
    const afterReplace = writers.map((w) => w.version);
    await waitFor(() => writers.every((w, i) => w.version >= afterReplace[i]! + 3), 60_000, 'writes after the replacement');
    await writing.stop();
    for (const w of writers) {
      const before = w.version;
      await w.write(value, 60_000);
      expect(w.version).toBe(before + 1); // the chain demanded the last acknowledged version: none lost
    }

    const rows = await ringReconfigurationStatus(config, ['ring-0', 'ring-1', 'ring-2', 'spare-0']);
    for (const r of rows) {
      expect(r.status?.members).toEqual(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
      expect(r.status?.epoch).toBe(1);
      expect(r.status?.shareEpochs).toEqual([1]);
    }
    // ring-3's epoch-0 share file is retired; the descriptor keeps the ring key and ids and now
    // lists the new members under the admin's signature (loadDescriptor checks it).
    expect(JSON.parse(readFileSync(clusterPaths(config).share('ring-3'), 'utf8'))).toEqual({ retired: 1 });
    const descriptorAfter = loadDescriptor(config, nodeCrypto);
    expect(descriptorAfter.ring).toEqual({ epoch: 1, members: ['ring-0', 'ring-1', 'ring-2', 'spare-0'] });
    expect([descriptorAfter.ringPublicKey, descriptorAfter.ringId, descriptorAfter.nodes]).toEqual([descriptorBefore.ringPublicKey, descriptorBefore.ringId, descriptorBefore.nodes]);
    const status = JSON.parse((await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', 'status', '--json', '--config', config.file])).stdout) as { name: string; ringMember: boolean }[];
    expect(status.filter((r) => r.ringMember).map((r) => r.name)).toEqual(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
    // Every write before, across and after the switch is certified, and every certificate the
    // client received verified under the ring key it started with (a failure is counted as bad).
    const s = session;
    await waitEveryWriteCertified(s, 30_000, 'the writes before, across and after the replacement');
    expect(s.clients.map((c) => c.counters.badCertificates)).toEqual([0, 0]);

    // A client that starts now learns the ring from the re-signed descriptor, and a key refresh
    // runs on the new ring (it waits for the members the descriptor lists, not the stopped ring-3).
    const later = await startChainedWriting(config, 'after-replace', 7, 60_000);
    try {
      expect(later.session.ringNames).toEqual(['ring-0', 'ring-1', 'ring-2', 'spare-0']);
      const refresh = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', 'refresh-keys', '--config', config.file], { timeout: 120_000 });
      expect(refresh.stdout).toMatch(/epoch 2 in force/);
      for (const r of await ringReconfigurationStatus(config, ['ring-0', 'ring-1', 'ring-2', 'spare-0'])) expect(r.status?.shareEpochs).toEqual([2]);
      const from = later.writers.map((w) => w.version);
      await waitFor(() => later.writers.every((w, i) => w.version >= from[i]! + 2), 60_000, 'writes of a client started after the replacement');
      await later.stop();
      expect(later.session.clients.map((c) => c.counters.badCertificates)).toEqual([0, 0]);
    } finally {
      await later.stop();
      await later.session.stop();
    }
    console.log(`replace-node: ${replaceMs} ms wall (CLI: ${stdout.trim().split('\n').pop()}); writes ${writers.map((w) => w.version).join('+')}; certified ${s.counters.certified}, completed ${s.counters.completed}`);
  }, 300_000);

  it('replaces the primary while clients that follow the descriptor write: they move to the new ring, lose nothing and get its certificates', async () => {
    const members = currentRingOf(loadDescriptor(config, nodeCrypto)).map((m) => m.id);
    const statusOf = async (name: string) => fetchJson(`http://127.0.0.1:${config.nodes.find((n) => n.name === name)!.adminPort}/status`, 2000);
    const primary = String((await statusOf(members[1]!))?.primary);
    expect(members).toContain(primary);
    const writing = await startChainedWriting(config, 'replace-primary', 5, 60_000, true);
    const s = writing.session;
    // An SDK client given the config follows the descriptor file by itself; one given the
    // descriptor as an object (as on a machine without the file) learns it from the nodes.
    const store = await connect({ config: config.file, identity: newIdentity(), connectTimeoutMs: 30_000 });
    const remote = await connect({ descriptor: loadDescriptor(config, nodeCrypto), identity: newIdentity(), connectTimeoutMs: 30_000 });
    try {
      const object = await store.create('through-a-primary-replacement');
      await (await object.append(Uint8Array.of(1))).certified;
      const remoteObject = await remote.create('written-from-afar');
      await (await remoteObject.append(Uint8Array.of(1))).certified;
      const epochBefore = loadDescriptor(config, nodeCrypto).ring?.epoch ?? 0;

      const { stdout } = await run(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'cluster', 'replace-node', primary, '--with', 'spare-1', '--config', config.file], { timeout: 200_000 });
      const after = members.map((m) => (m === primary ? 'spare-1' : m));
      expect(stdout).toMatch(new RegExp(`ring members \\[${after.join(', ')}\\]; ${primary} stopped`));
      expect(s.ringNames).toEqual(after); // the session took the re-signed descriptor while running
      // The descriptor was re-signed as soon as the round was installed, before spare-1 started as
      // the joining member: clients move before the switch, so before spare-1 can be a primary
      // they would not hear from (nodes do not rewrite a file that already holds the new ring).
      const joined = await statusOf('spare-1');
      const joinedStartMs = Date.now() - Number(joined?.uptimeMs);
      expect(statSync(clusterPaths(config).descriptor).mtimeMs).toBeLessThan(joinedStartMs);
      expect(s.counters.ringChanges).toBe(1);
      const from = writing.writers.map((w) => w.version);
      await waitFor(() => writing.writers.every((w, i) => w.version >= from[i]! + 3), 60_000, 'writes after the primary was replaced');
      await writing.stop();
      await waitEveryWriteCertified(s, 30_000, 'the writes before, across and after the primary\'s replacement');
      expect(s.clients.map((c) => c.counters.badCertificates)).toEqual([0, 0]);

      // The SDK client writes through the new ring and its update is certified under the ring key.
      const written = await object.append(Uint8Array.of(2), { timeoutMs: 60_000 });
      await written.certified;
      expect(written.version).toBe(2);
      expect(await object.read()).toEqual(Uint8Array.of(1, 2));

      // The client without the file was told by the nodes: it sends to the new ring and gets
      // the new primary's certificates (a client left on the old list waited for them in vain).
      expect(remote.ringMembers).toEqual(after);
      const remoteWritten = await remoteObject.append(Uint8Array.of(2), { timeoutMs: 60_000 });
      await remoteWritten.certified;
      expect(await remoteObject.read()).toEqual(Uint8Array.of(1, 2));

      // Every node that is up took the re-signed descriptor from its peers (none reads the file
      // while running), and its role was handed the new list (ringFollowed: what onDescriptor
      // gave it; what each part does with it is unit-tested in test/archive/archive-writers.test.ts,
      // test/archive/archiver-steps.test.ts and test/replica/ring-server-member.test.ts).
      const epoch = loadDescriptor(config, nodeCrypto).ring!.epoch;
      expect(epoch).toBeGreaterThan(epochBefore);
      const up = config.nodes.map((n) => n.name).filter((name) => name !== primary && runningPid(config, name) !== null);
      await waitFor(async () => (await Promise.all(up.map(statusOf))).every((st) => st?.ringEpoch === epoch), 15_000, 'every node at the new ring epoch');
      for (const name of up) expect((await statusOf(name)) as Record<string, unknown>).toMatchObject({ ringMembers: after, ringFollowed: after });

    } finally {
      await writing.stop();
      await s.stop();
      await store.close();
      await remote.close();
    }
  }, 300_000);
});
