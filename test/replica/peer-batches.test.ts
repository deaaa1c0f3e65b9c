/**
 * PeerBatches: when a ring server may trust a batch signature its peers shared (f+1 identical
 * copies, or one verified under the ring key after waitMs). Here: what one Byzantine peer can
 * cost a correct ring server.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import { batchLeafHash, BatchMerkleTree } from '../../core/threshold/batch-merkle.ts';
import { nodeCrypto as crypto } from '../../runtime/node-crypto.ts';
import { PeerBatches, type SharedBatch } from '../../replica/peer-batches.ts';

const statements = [new Uint8Array([1, 2, 3])];
const root = new BatchMerkleTree(crypto, statements.map((s) => batchLeafHash(crypto, s))).root;
const goodSignature = new Uint8Array(48).fill(7);

function batch(signature: Uint8Array): SharedBatch {
  return { type: 'batch-certificate', sequence: 9, epoch: 0, root, signature, statements };
}

function junkSignature(i: number): Uint8Array {
  const signature = new Uint8Array(48);
  signature[0] = i & 255;
  signature[1] = i >> 8;
  signature[47] = 1;
  return signature;
}

describe('PeerBatches', () => {
  it('one peer filing 1,000 different copies of a batch costs at most one signature check per peer', () => {
    let checks = 0;
    const check = { verify: (_message: Uint8Array, signature: Uint8Array) => (checks++, bytesEqual(signature, goodSignature)) };
    const batches = new PeerBatches({ crypto, ringId: new Uint8Array(32), peers: ['evil', 'good'], vouchersNeeded: 2, waitMs: 500, check });
    for (let i = 0; i < 1000; i++) expect(batches.offer('evil', batch(junkSignature(i)), 0)).toBeNull();
    expect(batches.offer('good', batch(goodSignature), 0)).toBeNull();
    const due = batches.due(600);
    expect(due.map((b) => b.signature)).toEqual([goodSignature]);
    expect(checks).toBeLessThanOrEqual(2);
  });

  it('checks the copy most peers sent first', () => {
    let checks = 0;
    const check = { verify: (_message: Uint8Array, signature: Uint8Array) => (checks++, bytesEqual(signature, goodSignature)) };
    const batches = new PeerBatches({ crypto, ringId: new Uint8Array(32), peers: ['evil', 'a', 'b'], vouchersNeeded: 3, waitMs: 500, check });
    batches.offer('evil', batch(junkSignature(1)), 0);
    batches.offer('a', batch(goodSignature), 0);
    batches.offer('b', batch(goodSignature), 0);
    expect(batches.due(600).map((b) => b.signature)).toEqual([goodSignature]);
    expect(checks).toBe(1);
  });

  it('a peer that sends another copy replaces its first: it cannot vouch for two', () => {
    const batches = new PeerBatches({ crypto, ringId: new Uint8Array(32), peers: ['a', 'b'], vouchersNeeded: 2, waitMs: 500 });
    expect(batches.offer('a', batch(goodSignature), 0)).toBeNull();
    expect(batches.offer('a', batch(junkSignature(1)), 0)).toBeNull();
    expect(batches.offer('b', batch(goodSignature), 0)).toBeNull(); // a's vote moved to the junk copy
    expect(batches.offer('a', batch(goodSignature), 0)?.signature).toEqual(goodSignature);
  });
});
