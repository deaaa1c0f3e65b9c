/**
 * A block corrupted at rest on one ring server (lmdb keeps no checksums: one flipped bit) is
 * discarded and fetched again from the peers, like any block the replica lacks. Before session 19
 * the block store threw IntegrityError: a corrupt root or interior block stopped the replica at
 * every start (the start walks the heads' blocks) and a corrupt data block crashed it at any peer's
 * fetch of it. Found by the session-19 durability review.
 */
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.ts';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { kindOfCode } from '../../core/version/block.ts';
import type { ObjectService } from '../../ring/object-service.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

function update(c: Cluster, w: Signer, nonce: number, clauses: Clause[]): Uint8Array {
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, 'doc'), writerPublicKey: w.publicKey, nonce, clauses }));
}
const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A ring where client 0 wrote 'doc' (version 0), every write staged. */
function ring(seed: number): Cluster {
  const c = buildCluster({ seed, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 2 } });
  const create: Clause[] = [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name: 'doc', blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }, { kind: 'append', bytes: text('hello') }] }];
  c.submit(0, update(c, c.clientSigners[0]!, 1, create));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 10_000)).toBe(true);
  c.sim.runFor(200);
  return c;
}

function flipAt(c: Cluster, id: string, key: string, index: number): void {
  const store = c.sim.store(id);
  const bytes = store.get(key)!.slice();
  bytes[index < 0 ? bytes.length + index : index]! ^= 1;
  store.put(key, bytes);
}

const service = (c: Cluster, i: number): ObjectService => c.replica(i)!.service as ObjectService;

describe('a block corrupted at rest on a ring server', () => {
  it('a corrupt root block: the replica starts, fetches it again and executes the next update with the others', () => {
    const c = ring(41);
    const aguid = aguidOf(c.crypto, c.clientSigners[0]!.publicKey, 'doc');
    const { vguid } = service(c, 3).headOf(aguid)!;
    c.sim.crash('ring-3');
    flipAt(c, 'ring-3', c.sim.store('ring-3').keys('').find((k) => k.endsWith(`blk/${toHex(vguid)}`))!, -1);
    c.sim.restart('ring-3');
    c.submit(0, update(c, c.clientSigners[0]!, 2, [{ predicates: [{ kind: 'version-is', version: 0 }], actions: [{ kind: 'append', bytes: text('!') }] }]));
    expect(c.sim.runUntil(() => c.completed[0] === 2 && c.replica(3)!.lastExecuted >= c.replica(0)!.lastExecuted, 10_000)).toBe(true);
    expect(service(c, 3).headOf(aguid)!.version).toBe(1);
    expect(toHex(service(c, 3).headOf(aguid)!.vguid)).toBe(toHex(service(c, 0).headOf(aguid)!.vguid));
  });

  it('a corrupt data block: a peer asking for it gets nothing (no crash); the next start fetches it again', () => {
    const c = ring(42);
    c.sim.crash('ring-3');
    const store = c.sim.store('ring-3');
    const metaKey = store.keys('').find((k) => /blkm\/[0-9a-f]{64}$/.test(k) && kindOfCode(store.get(k)![0]!) === 'data')!;
    const hex = metaKey.slice(-64);
    const good = store.get(metaKey.replace('blkm/', 'blk/'))!.slice();
    flipAt(c, 'ring-3', metaKey.replace('blkm/', 'blk/'), 0);
    c.sim.restart('ring-3'); // the start's walk asks only whether data blocks are there
    let answered = false;
    c.sim.setInterceptor('ring-3', (m) => {
      if ((m as { kind: string }).kind === 'block-data') answered = true;
      return [m];
    });
    c.sim.send('ring-0', 'ring-3', { kind: 'fetch-blocks', bguids: [fromHex(hex)] });
    c.sim.runFor(50);
    expect(answered).toBe(false);
    expect(service(c, 3).getBlock(fromHex(hex))).toBeUndefined();
    c.sim.crash('ring-3');
    c.sim.restart('ring-3');
    expect(c.sim.runUntil(() => service(c, 3).getBlock(fromHex(hex)) !== undefined, 5_000)).toBe(true);
    expect(service(c, 3).getBlock(fromHex(hex))!.bytes).toEqual(good);
  });
});
