// The ring descriptor after a membership change (issue 10, "the descriptor still lists OLD"): the
// admin re-signs it with the ring's current members; clients read the ring from it.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { ConfigError } from '../../core/errors.ts';
import { clusterViewOf } from '../../client/session.ts';
import { clusterPaths, loadClusterConfig } from '../../runtime/cluster-config.ts';
import { currentRingOf, initCluster, loadAdminKey, loadDescriptor, resignRing } from '../../runtime/cluster-keys.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

const dir = mkdtempSync(join(tmpdir(), 'oceanstore-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ring descriptor', () => {
  it('is re-signed with the current ring; a client view follows it; tampering with the list is refused', async () => {
    const config = loadClusterConfig(await scratchClusterConfig('cluster-configs/local.json', dir));
    const initial = initCluster(config, nodeCrypto);
    // Before any change the ring is the nodes of role 'ring', as `cluster init` dealt them.
    expect(initial.ring).toBeUndefined();
    expect(currentRingOf(loadDescriptor(config, nodeCrypto)).map((m) => m.id)).toEqual(['ring-0', 'ring-1', 'ring-2', 'ring-3']);

    const admin = loadAdminKey(config, initial, nodeCrypto);
    const members = ['ring-0', 'ring-1', 'ring-2', 'replica-1'];
    resignRing(config, initial, admin, 1, members, nodeCrypto);
    const after = loadDescriptor(config, nodeCrypto);
    expect(after.ring).toEqual({ epoch: 1, members });
    expect(after.ringPublicKey).toBe(initial.ringPublicKey);
    const ring = currentRingOf(after);
    expect(ring.map((m) => m.id)).toEqual(members);
    expect(toHex(ring[3]!.publicKey)).toBe(after.nodes.find((n) => n.name === 'replica-1')!.publicKey);
    expect(clusterViewOf(after).ring.map((m) => m.id)).toEqual(members);

    // Anyone who edits the list without the admin key is refused, and the file is left as it was.
    const path = clusterPaths(config).descriptor;
    const good = readFileSync(path, 'utf8');
    const forged = JSON.parse(good) as { ring: { members: string[] } };
    forged.ring.members = ['ring-0', 'ring-1', 'ring-2', 'replica-0'];
    writeFileSync(path, JSON.stringify(forged));
    expect(() => loadDescriptor(config, nodeCrypto)).toThrow(/admin signature does not verify/);
    writeFileSync(path, good);

    expect(() => resignRing(config, after, admin, 2, ['ring-0', 'ring-1', 'ring-2', 'nobody'], nodeCrypto)).toThrow(ConfigError);
    expect(() => resignRing(config, after, admin, 2, ['ring-0', 'ring-1', 'ring-2'], nodeCrypto)).toThrow(ConfigError);
    expect(readFileSync(path, 'utf8')).toBe(good);
  });
});
