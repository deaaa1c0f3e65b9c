/**
 * Disaster recovery (issue 9 must-show, in the simulator): 50 objects x 5 versions are archived on
 * commit, then every ring server is stopped and the history object (the only copy of the ring's
 * state in this test) is set aside; only the ring public key and the archive servers remain, and
 * every version is rebuilt exactly (Pond FAST 2003 section 3.4: the archive as the durable copy).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { BlockFetcher, defaultBlockFetcherOptions } from '../../archive/shell/block-fetcher.ts';
import { discoverVersions, restoreVersions } from '../../archive/shell/restore.ts';
import { archiveAll, crypto, expectedContent, k, m, makeCluster, makeHistory } from './sim-helpers.ts';

describe('disaster: restore everything from the archive alone', () => {
  it('rebuilds all 250 versions of 50 objects byte-identically from archive servers and the ring public key', async () => {
    const cluster = makeCluster(21);
    const history = makeHistory(21, 50, 5, 3000, 2048);
    archiveAll(cluster, history);
    const expected = expectedContent(history);
    const ringPublicKey = history.ringPublicKey;
    for (const id of cluster.ringServers) cluster.sim.crash(id);
    for (const id of cluster.ringServers) expect(cluster.sim.isUp(id)).toBe(false);

    const source = cluster.source();
    const discovery = await discoverVersions(crypto, source, ringPublicKey);
    expect(discovery.versions).toHaveLength(250);
    expect(discovery.conflicts).toEqual([]);
    const fetcher = new BlockFetcher(crypto, source, { k, m, ...defaultBlockFetcherOptions });
    const restored = new Map<string, Uint8Array>();
    const report = await restoreVersions(fetcher, discovery.versions, (r) => {
      restored.set(`${toHex(r.ref.aguid)}@${r.ref.version}`, r.bytes);
    });
    expect(report.failed).toEqual([]);
    expect(report.chainBreaks).toEqual([]);
    expect(report.restored).toBe(250);
    expect(restored.size).toBe(expected.size);
    for (const [key, bytes] of expected) expect(restored.get(key)).toEqual(bytes);
  }, 60_000);
});
