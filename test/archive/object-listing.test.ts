/**
 * Restoring one object lists that object's certificates, not the whole archive's: each archive
 * server keeps a per-object index (a/<aguid>/<bguid>) beside its certificates (c/<bguid>) and
 * `listCertificates` may name an object. Before, a restore of a 1-byte object verified every
 * certificate in the archive (1.7-3.6 s with 320 versions stored, and growing with the archive).
 * Also: the index follows a certificate replaced or deleted, and is built once for certificates
 * stored before it existed.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { decodeCertificate } from '../../core/threshold/index.ts';
import type { ArchiveMessage } from '../../archive/messages.ts';
import type { ArchiveSource } from '../../archive/shell/archive-source.ts';
import { discoverVersions } from '../../archive/shell/restore.ts';
import { runRestore } from '../../archive/shell/restore-tool.ts';
import { archiveAll, crypto, k, m, makeCluster, makeHistory } from './sim-helpers.ts';

/** A source that records the statements' objects of every certificate listed to it. */
function recording(source: ArchiveSource): { source: ArchiveSource; listed: string[] } {
  const listed: string[] = [];
  return {
    listed,
    source: {
      servers: source.servers,
      request: async (server, message) => {
        const reply = await source.request(server, message);
        if (reply?.type === 'certificates') for (const c of reply.certificates) listed.push(toHex(decodeCertificate(c).statement.aguid));
        return reply;
      },
    },
  };
}

describe('per-object certificate listing', () => {
  it('a restore of one object is sent only that object\'s certificates, and restores it exactly', async () => {
    const cluster = makeCluster(61);
    const history = makeHistory(61, 5, 3, 6_000, 2048);
    archiveAll(cluster, history);
    const target = history.versions.filter((v) => v.name === 'object-2');
    const { source, listed } = recording(cluster.source());
    const got: Uint8Array[] = [];
    const report = await runRestore({ crypto, source, ringPublicKey: history.ringPublicKey, k, m, target: { aguid: target[0]!.aguid, allVersions: true }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(report.failed).toEqual([]);
    expect(got).toEqual(target.map((v) => v.content));
    expect(listed.length).toBeGreaterThan(0);
    expect(new Set(listed)).toEqual(new Set([toHex(target[0]!.aguid)]));

    // The whole archive's listing still has every object.
    const all = recording(cluster.source());
    const discovery = await discoverVersions(crypto, all.source, history.ringPublicKey);
    expect(discovery.versions.length).toBe(history.versions.length);
    expect(new Set(all.listed).size).toBe(5);
  });

  it('pages an object\'s listing in key order like the whole listing', async () => {
    const cluster = makeCluster(62);
    const history = makeHistory(62, 2, 12, 3_000, 1024);
    archiveAll(cluster, history);
    const aguid = history.versions[0]!.aguid;
    const server = cluster.server('archive-0')!;
    const pages: string[][] = [];
    let after = '';
    for (let request = 1; request < 100; request++) {
      const reply = server.onMessage('anyone', { type: 'listCertificates', requestId: request, after, limit: 3, aguid }, 0).find((e) => e.kind === 'send');
      const message = reply?.kind === 'send' ? (reply.message as ArchiveMessage) : null;
      if (message?.type !== 'certificates') throw new Error('no listing reply');
      pages.push(message.certificates.map((c) => `c/${toHex(decodeCertificate(c).statement.vguid)}`));
      if (message.next === null) break;
      after = message.next;
    }
    const keys = pages.flat();
    expect(keys.length).toBeGreaterThan(3);
    expect([...keys].sort()).toEqual(keys);
    expect(new Set(keys).size).toBe(keys.length);
    const mine = history.versions.filter((v) => toHex(v.aguid) === toHex(aguid)).map((v) => toHex(v.vguid));
    for (const key of keys) expect(mine).toContain(key.slice(2));
  });

  it('indexes certificates stored before the index existed, once, when a server starts', async () => {
    const cluster = makeCluster(63);
    const history = makeHistory(63, 3, 2, 3_000, 1024);
    archiveAll(cluster, history);
    // Take every server back to the old layout: certificates without index entries or marker.
    for (const id of cluster.archiveServers) {
      const store = cluster.sim.store(id);
      for (const key of [...store.keys('a/'), ...store.keys('m/')]) store.delete(key);
      cluster.sim.crash(id);
      cluster.sim.restart(id);
    }
    expect(cluster.sim.store('archive-0').keys('a/').length).toBeGreaterThan(0);
    const target = history.versions.filter((v) => v.name === 'object-1');
    const got: Uint8Array[] = [];
    const report = await runRestore({ crypto, source: cluster.source(), ringPublicKey: history.ringPublicKey, k, m, target: { aguid: target[0]!.aguid }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(report.failed).toEqual([]);
    expect(got).toEqual([target[target.length - 1]!.content]);
  });

  it('drops an index entry with its certificate, and moves it when a certificate is replaced', () => {
    const cluster = makeCluster(64);
    const history = makeHistory(64, 2, 1, 3_000, 1024);
    archiveAll(cluster, history);
    const [a, b] = history.versions;
    const holder = cluster.archiveServers.find((id) => cluster.server(id)!.fragments.certificateOf(a!.vguid) !== null)!;
    const fragments = cluster.server(holder)!.fragments;
    const store = cluster.sim.store(holder);
    expect(store.keys(`a/${toHex(a!.aguid)}/`)).toEqual([`a/${toHex(a!.aguid)}/${toHex(a!.vguid)}`]);
    // Another object's certificate put in its place (what a faulty writer's first store could be).
    fragments.putCertificate(a!.vguid, b!.certificate);
    expect(store.keys(`a/${toHex(a!.aguid)}/`)).toEqual([]);
    expect(store.keys(`a/${toHex(b!.aguid)}/`)).toContain(`a/${toHex(b!.aguid)}/${toHex(a!.vguid)}`);
    fragments.deleteCertificate(a!.vguid);
    expect(store.keys(`a/${toHex(b!.aguid)}/`)).not.toContain(`a/${toHex(b!.aguid)}/${toHex(a!.vguid)}`);
    // Bytes that are not a certificate get no entry.
    fragments.putCertificate(a!.vguid, Uint8Array.of(1, 2, 3));
    expect(store.keys('a/').filter((key) => key.endsWith(toHex(a!.vguid)))).toEqual([]);
  });
});
