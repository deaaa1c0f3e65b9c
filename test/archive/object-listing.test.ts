/**
 * Restoring one object lists that object's certificates, not the whole archive's: each archive
 * server indexes its certificates (c/<bguid>) by the object their statements name, and
 * `listCertificates` may name an object. Before, a restore of a 1-byte object verified every
 * certificate in the archive (1.7-3.6 s with 320 versions stored, and growing with the archive).
 * Also: the index follows a certificate replaced or deleted, and is rebuilt from the stored
 * certificates when a server starts.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { decodeCertificate } from '../../core/threshold/index.ts';
import type { ArchiveMessage } from '../../archive/messages.ts';
import type { ArchiveSource } from '../../archive/shell/archive-source.ts';
import { discoverVersions } from '../../archive/shell/restore.ts';
import { runRestore } from '../../archive/shell/restore-tool.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { SimArchive } from '../../archive/sim/sim-archive.ts';
import { Prng } from '../../sim/prng.ts';
import { archiveAll, crypto, k, m, makeCluster, makeHistory } from './sim-helpers.ts';

/** `source` with some requests answered by `answer` instead (undefined: passed through). */
function intercepting(source: ArchiveSource, answer: (server: string, message: ArchiveMessage) => ArchiveMessage | null | undefined): ArchiveSource {
  return {
    servers: source.servers,
    request: async (server, message) => {
      const answered = answer(server, message);
      return answered === undefined ? source.request(server, message) : answered;
    },
  };
}

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

  it('lists a server that drops the per-object request (one from before it) whole instead', async () => {
    const cluster = makeCluster(65);
    const history = makeHistory(65, 3, 2, 3_000, 1024);
    archiveAll(cluster, history);
    let dropped = 0;
    let whole = 0;
    // A DecodeError there: no reply.
    const old = intercepting(cluster.source(), (_, message) => {
      if (message.type !== 'listCertificates') return undefined;
      if (message.aguid) return (dropped++, null);
      whole++;
      return undefined;
    });
    const target = history.versions.filter((v) => v.name === 'object-0');
    const got: Uint8Array[] = [];
    const report = await runRestore({ crypto, source: old, ringPublicKey: history.ringPublicKey, k, m, target: { aguid: target[0]!.aguid }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(dropped).toBe(cluster.archiveServers.length);
    expect(whole).toBeGreaterThanOrEqual(cluster.archiveServers.length);
    expect(report.unreachableServers).toEqual([]);
    expect(got).toEqual([target[target.length - 1]!.content]);
  });

  it('leaves a listing of only empty pages unfinished, not complete (junk between two versions must not end it early)', async () => {
    const cluster = makeCluster(66);
    const history = makeHistory(66, 2, 2, 3_000, 1024);
    archiveAll(cluster, history);
    let emptyPages = 0;
    // archive-3 spends every request's checks on junk: empty pages, `next` moving on, forever.
    const source = intercepting(cluster.source(), (server, message) => {
      if (server !== 'archive-3' || message.type !== 'listCertificates') return undefined;
      emptyPages++;
      return { type: 'certificates', requestId: message.requestId, certificates: [], next: `c/${String(emptyPages).padStart(8, '0')}` };
    });
    const target = history.versions.filter((v) => v.name === 'object-1');
    const report = await runRestore({ crypto, source, ringPublicKey: history.ringPublicKey, k, m, target: { aguid: target[0]!.aguid }, sink: () => undefined }, () => 0);
    expect(emptyPages).toBe(1025);
    expect(report.unreachableServers).toEqual(['archive-3']);
    expect(report.failed).toEqual([]);
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

  it('is rebuilt from the stored certificates when a server restarts', async () => {
    const cluster = makeCluster(63);
    const history = makeHistory(63, 3, 2, 3_000, 1024);
    archiveAll(cluster, history);
    for (const id of cluster.archiveServers) {
      cluster.sim.crash(id);
      cluster.sim.restart(id);
    }
    const target = history.versions.filter((v) => v.name === 'object-1');
    const { source, listed } = recording(cluster.source());
    const got: Uint8Array[] = [];
    const report = await runRestore({ crypto, source, ringPublicKey: history.ringPublicKey, k, m, target: { aguid: target[0]!.aguid }, sink: (r) => void got.push(r.bytes) }, () => 0);
    expect(report.failed).toEqual([]);
    expect(got).toEqual([target[target.length - 1]!.content]);
    expect(new Set(listed)).toEqual(new Set([toHex(target[0]!.aguid)]));
  });

  it('follows a certificate replaced or deleted: junk naming another object, stored first, is neither listed nor left indexed', async () => {
    const history = makeHistory(64, 2, 1, 3_000, 1024);
    // Ten servers: A's root block goes to eight, so two keep the junk.
    const cluster = new SimArchive({ seed: 64, crypto, archiveServerCount: 10, ringServerCount: 4, k, m, ringPublicKey: history.ringPublicKey });
    const [a, b] = history.versions;
    // A faulty writer stores, beside A's root block, B's genuine certificate (it decodes and names
    // B, but does not certify this block): on every server first, before the honest archivers.
    const junk = makeFragments(crypto, k, m, a!.vguid, new Prng(1).bytes(10));
    for (const id of cluster.archiveServers) {
      const item = { fragment: encodeFragment(junk.fragments[0]!), fragmentRoot: junk.fragmentRoot, certificate: b!.certificate };
      cluster.server(id)!.onMessage('ring-3', { type: 'store', requestId: 1, items: [item] }, cluster.sim.nowMs);
    }
    archiveAll(cluster, history);
    const listedFor = (id: string, aguid: Uint8Array): string[] => {
      const reply = cluster.server(id)!.onMessage('anyone', { type: 'listCertificates', requestId: 1, after: '', limit: 100, aguid }, cluster.sim.nowMs).find((e) => e.kind === 'send');
      const message = reply?.kind === 'send' ? (reply.message as ArchiveMessage) : null;
      if (message?.type !== 'certificates') throw new Error('no listing reply');
      return message.certificates.map((c) => toHex(decodeCertificate(c).statement.vguid));
    };
    const aKey = `c/${toHex(a!.vguid)}`;
    // Where A's genuine certificate came (its root block's holders), it replaced the junk, and the
    // entry moved from B to A.
    const holders = cluster.archiveServers.filter((id) => cluster.sim.store(id).keys(`f/${toHex(a!.vguid)}/`).some((key) => !key.includes(toHex(junk.fragmentRoot))));
    expect(holders.length).toBeGreaterThan(0);
    for (const id of holders) {
      expect(listedFor(id, a!.aguid)).toEqual([toHex(a!.vguid)]);
      expect(listedFor(id, b!.aguid)).not.toContain(toHex(a!.vguid));
    }
    // Elsewhere the junk is kept unchecked until a listing checks it: then it is deleted, entry and all.
    const others = cluster.archiveServers.filter((id) => !holders.includes(id) && cluster.sim.store(id).get(aKey) !== undefined);
    expect(others.length).toBeGreaterThan(0);
    for (const id of others) {
      const server = cluster.server(id)!;
      expect(server.fragments.certificateEntriesAfter('', 100, b!.aguid).entries.map((e) => toHex(e.bguid))).toContain(toHex(a!.vguid));
      expect(listedFor(id, b!.aguid)).not.toContain(toHex(a!.vguid));
      expect(cluster.sim.store(id).get(aKey)).toBeUndefined();
      expect(server.fragments.certificateEntriesAfter('', 100, b!.aguid).entries.map((e) => toHex(e.bguid))).not.toContain(toHex(a!.vguid));
    }
    // Bytes that are not a certificate are indexed under no object.
    const fragments = cluster.server(holders[0]!)!.fragments;
    fragments.putCertificate(a!.vguid, Uint8Array.of(1, 2, 3));
    expect(fragments.certificateEntriesAfter('', 100, a!.aguid).entries).toEqual([]);
    fragments.deleteCertificate(a!.vguid);
    expect(fragments.certificateEntriesAfter('', 100).entries.map((e) => toHex(e.bguid))).not.toContain(toHex(a!.vguid));
  });
});
