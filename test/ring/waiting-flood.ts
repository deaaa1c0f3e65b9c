/**
 * Object-service rings with requests that wait at the primary for blocks never uploaded, for the
 * tests of the bounds on held and waiting requests (nonce-flood, waiting-requests).
 */
import { expect } from 'vitest';
import { aguidOf, signerOf, type Signer } from '../../core/crypto.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import { bguidOf } from '../../core/version/block.ts';
import type { ClientRequest } from '../../ring/messages.ts';
import { buildCluster, type Cluster, type ClusterOptions } from '../../ring/sim-cluster.ts';
import { signMessage } from '../../ring/signing.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

export const neverUploaded = new Uint8Array(4096).fill(9);

export const updateBy = (c: Cluster, w: Signer, nonce: number, name: string, clauses: Clause[]): Uint8Array =>
  encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, name), writerPublicKey: w.publicKey, nonce, clauses }));

export const create = (name: string): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];

/** An update's clause appending `blocks` by reference. */
export const appendRefs = (c: Cluster, blocks: readonly Uint8Array[]): Clause[] => [
  { predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: blocks.map((b) => ({ kind: 'ref' as const, bguid: bguidOf(c.crypto, 'data', b), length: b.length })) }] },
];

export const freshSigner = (i: number, salt: number): Signer => signerOf(fakeCrypto, Uint8Array.from({ length: 32 }, (_, j) => ((i >> (8 * (j % 4))) & 255) ^ j ^ salt));

/** An object-service ring whose client 0 has created 'o1'. */
export function objectRing(options: Partial<ClusterOptions>): Cluster {
  const c = buildCluster({ seed: 51, f: 1, clientCount: 3, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 2 }, ...options });
  c.submit(0, updateBy(c, c.clientSigners[0]!, 1, 'o1', create('o1')));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  return c;
}

/** A request under a fresh key (i, salt) naming `blocks` (by default one never uploaded), sent by `origin` to `to`. */
export function sendWaiting(c: Cluster, i: number, salt: number, origin: string, to: string, blocks: readonly Uint8Array[] = [neverUploaded]): ClientRequest {
  const w = freshSigner(i, salt);
  const request = signMessage<ClientRequest>(fakeCrypto, w, { kind: 'request', clientKey: w.publicKey, nonce: 1, replyTo: origin, operation: updateBy(c, w, 1, 'x', appendRefs(c, blocks)) });
  c.sim.send(origin, to, request);
  return request;
}

export const viewChanges = (c: Cluster): number => Math.max(...[0, 1, 2, 3].map((r) => c.replica(r)!.counters.viewChanges));
