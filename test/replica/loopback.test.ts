/**
 * The tree on the real runtime (authenticated ws transport on 127.0.0.1, MachineHost): a ring
 * root publishes certified updates and a heartbeat, a secondary replica attaches, catches up and
 * serves reads that the reader verifies over the socket (issue 8 "Real processes", in-process).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { verifyReadReply } from '../../replica/verify-read.ts';
import { readVersionRange } from '../../replica/version-walk.ts';
import { waitFor } from '../runtime/wait.ts';
import { startLoopbackCluster, type LoopbackCluster } from './loopback-cluster.ts';
import { TestRingSigner, buildHistory, makeHeartbeat, testObject } from './test-ring.ts';

const crypto = nodeCrypto;
const signer = new TestRingSigner(crypto, 'fake', 61);
const object = testObject(crypto, 'core', 61, 8 * 1024);
const ringBlocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
const history = buildHistory(crypto, signer, object, { versionCount: 10, appendBytes: 20_000, seed: 61, blocks: ringBlocks });
let cluster: LoopbackCluster;

beforeAll(async () => {
  cluster = await startLoopbackCluster(signer, object);
});
afterAll(async () => {
  await cluster?.stop();
});

describe('dissemination tree over the real transport', () => {
  it('a secondary catches up from the ring root and serves verified, fresh 4 KiB reads', async () => {
    for (const h of history) cluster.root.publish(object.aguid, h.version, h.entry);
    cluster.root.publishHeartbeat(object.aguid, makeHeartbeat(crypto, signer, object.aguid, history[9]!, Date.now(), 1 << 20));
    await waitFor(() => cluster.replica.copyOf(object.aguid)?.head?.version === 9, 10_000, 'the secondary to reach version 9');
    await waitFor(() => cluster.replica.copyOf(object.aguid)?.heartbeat !== null, 10_000, 'the heartbeat');
    const last = history[9]!;
    for (let i = 0; i < 20; i++) {
      const offset = i * 7919;
      const { request, reply } = await cluster.read({ aguid: object.aguid, version: null, offset, length: 4096, maxAgeMs: 60_000 });
      const check = verifyReadReply({ crypto, trust: signer.trust(), executor: object.executor }, request, reply, Date.now());
      expect(check.ok, check.ok ? '' : check.reason).toBe(true);
      if (check.ok) expect(bytesEqual(check.read.bytes, readVersionRange(ringBlocks, last.vguid, offset, 4096)!)).toBe(true);
    }
    expect(cluster.replica.counters.get('read:ok')).toBe(20);
  }, 30_000);
});
