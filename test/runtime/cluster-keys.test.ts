// The ring descriptor after a membership change (issue 10, "the descriptor still lists OLD"): the
// admin re-signs it with the ring's current members; clients read the ring from it.
import { mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { ConfigError } from '../../core/errors.ts';
import { clusterViewOf } from '../../client/session.ts';
import { clusterPaths, loadClusterConfig } from '../../runtime/cluster-config.ts';
import { currentRingOf, descriptorSignedPart, initCluster, isLaterRing, loadAdminKey, loadDescriptor, resignRing, watchDescriptorFile, type RingDescriptor } from '../../runtime/cluster-keys.ts';
import { waitFor } from './wait.ts';
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

  it('a running client takes a re-signed later ring only under the admin key it started with (isLaterRing, watchDescriptorFile)', async () => {
    const config = loadClusterConfig(await scratchClusterConfig('cluster-configs/local.json', join(dir, 'later')));
    const initial = initCluster(config, nodeCrypto);
    const admin = loadAdminKey(config, initial, nodeCrypto);
    const path = clusterPaths(config).descriptor;
    const seen: RingDescriptor[] = [];
    const errors: Error[] = [];
    const stop = watchDescriptorFile(path, 20, (d) => seen.push(d), (e) => errors.push(e));
    try {
      // The first look reads the file as it is (a re-sign between the caller's read and the
      // watch is not missed); the caller's isLaterRing finds it the same.
      await waitFor(() => seen.length === 1, 5_000, 'the watcher to read the file once');
      expect(seen[0]).toEqual(initial);
      const later = resignRing(config, initial, admin, 1, ['ring-0', 'ring-1', 'ring-2', 'replica-1'], nodeCrypto);
      await waitFor(() => seen.length === 2, 5_000, 'the watcher to read the re-signed file');
      expect(seen[1]).toEqual(later);
      // Replaced by the same bytes with the same mtime (as two writes within the clock's
      // granularity would be): only the new inode shows it. Whole seconds, so the times are exact.
      const t = Math.floor(Date.now() / 1000) - 60;
      utimesSync(path, t, t);
      await waitFor(() => seen.length === 3, 5_000, 'the watcher to see the new mtime');
      writeFileSync(`${path}.copy`, readFileSync(path));
      utimesSync(`${path}.copy`, t, t);
      renameSync(`${path}.copy`, path);
      await waitFor(() => seen.length === 4, 5_000, 'the watcher to see a file replaced by an equal one');
      expect(errors).toEqual([]);
    } finally {
      stop();
    }
    // What the reader refuses (it throws) goes to onError; the watcher keeps going.
    const refused: Error[] = [];
    const stopRefusing = watchDescriptorFile(path, 20, () => { throw new ConfigError('refused'); }, (e) => refused.push(e));
    try {
      await waitFor(() => refused.length === 1, 5_000, 'the refusal to reach onError');
      expect(refused[0]!.message).toBe('refused');
    } finally {
      stopRefusing();
    }
    const later = loadDescriptor(config, nodeCrypto);
    expect(isLaterRing(initial, later, nodeCrypto)).toBe(true);
    expect(isLaterRing(later, later, nodeCrypto)).toBe(false);
    expect(isLaterRing(later, initial, nodeCrypto)).toBe(false); // an old file replayed

    // Signed by another key (a whole new descriptor under a key the client never trusted), or
    // altered after signing, or naming another ring key: refused with ConfigError.
    const attacker = new Uint8Array(32).fill(9);
    const otherAdmin = nodeCrypto.ed25519PublicKey(attacker);
    // This ring's list, properly signed, but by a key the client never trusted: the pin refuses it.
    const { signature: _s, ...body } = { ...later, adminPublicKey: toHex(otherAdmin), ring: { epoch: 2, members: ['ring-0', 'ring-1', 'ring-2', 'replica-0'] } };
    const attackerSigned = { ...body, signature: toHex(nodeCrypto.ed25519Sign(attacker, descriptorSignedPart(body))) };
    expect(() => isLaterRing(initial, attackerSigned, nodeCrypto)).toThrow(/not signed by this ring's admin key/);
    expect(() => isLaterRing(initial, { ...later, ring: { epoch: 3, members: ['ring-0', 'ring-1', 'ring-1', 'ring-2'] } }, nodeCrypto)).toThrow(ConfigError);
    const other = initCluster(loadClusterConfig(await scratchClusterConfig('cluster-configs/local.json', join(dir, 'other'))), nodeCrypto);
    expect(() => isLaterRing(initial, { ...other, ring: { epoch: 5, members: ['ring-0', 'ring-1', 'ring-2', 'ring-3'] } }, nodeCrypto)).toThrow(/not signed by this ring's admin key/);
    expect(() => isLaterRing(initial, other, nodeCrypto)).toThrow(ConfigError);
    expect(() => isLaterRing(initial, { ...later, ring: { epoch: 2, members: ['ring-0', 'ring-1', 'ring-2', 'replica-0'] } }, nodeCrypto)).toThrow(/not signed by this ring's admin key/);
    expect(() => isLaterRing(initial, { ...later, adminPublicKey: toHex(otherAdmin) }, nodeCrypto)).toThrow(/not signed by this ring's admin key/);
    expect(() => isLaterRing(initial, { ...later, ringPublicKey: other.ringPublicKey }, nodeCrypto)).toThrow(ConfigError);
  });
});
