/**
 * The ring client core alone (ring/client.ts): replies count only from the member at the index
 * they name, and after setMembers() (a member replaced, as the admin-signed descriptor says) from
 * the new member at that index and no longer from the old one.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { RingClient } from '../../ring/client.ts';
import type { ClientConfig, RingMember } from '../../ring/config.ts';
import type { ClientRequest, Reply, RingMessage } from '../../ring/messages.ts';
import { requestDigest } from '../../ring/signing.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';
import { decode } from '../../core/codec.ts';
import { BatchMerkleTree, batchLeafHash } from '../../core/threshold/batch-merkle.ts';
import { batchHeaderFromTuple } from '../../core/threshold/statements.ts';
import type { CertificateMessage } from '../../ring/messages.ts';

const memberOf = (id: string, seed: number): RingMember => ({ id, publicKey: nodeCrypto.ed25519PublicKey(new Uint8Array(32).fill(seed)) });
const ring = ['r0', 'r1', 'r2', 'r3'].map((id, i) => memberOf(id, i + 1));
const spare = memberOf('spare', 9);

type Effects = ReturnType<RingClient['onTick']>;
const sentTo = (effects: Effects): string[] => effects.flatMap((e) => (e.kind === 'send' ? [e.to] : []));
const outputs = (effects: Effects) => effects.flatMap((e) => (e.kind === 'output' ? [e.event] : []));

function clientOf(verify: (message: Uint8Array) => boolean = () => true, certificateBinding?: ClientConfig['certificateBinding']): RingClient {
  return new RingClient(
    { nodeId: 'client-1', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    {
      members: ring, f: 1, crypto: nodeCrypto, signer: signerOf(nodeCrypto, new Uint8Array(32).fill(7)), certificateVerifier: { verify }, retransmitMs: 1000, channelIntegrity: true,
      ...(certificateBinding ? { certificateBinding } : {}),
    },
  );
}

function replyTo(request: ClientRequest, replica: number): Reply {
  return {
    kind: 'reply', view: 0, seq: 1, clientKey: request.clientKey, nonce: request.nonce, requestDigest: requestDigest(nodeCrypto, request),
    result: Uint8Array.of(1), replica, signature: new Uint8Array(0),
  };
}

describe('ring client: who counts as a replica', () => {
  it('after setMembers, the request in flight goes to every new member, and the old member at the replaced index no longer counts', () => {
    const client = clientOf();
    const submitted = client.submit(Uint8Array.of(42), 0);
    expect(sentTo(submitted)).toEqual(['r0']); // the primary of view 0
    const request = (submitted[0] as { message: RingMessage }).message as ClientRequest;

    // r0 answers; then r0 is replaced by the spare at index 0 (r0 was the primary).
    expect(outputs(client.onMessage('r0', replyTo(request, 0), 1))).toEqual([]);
    const moved = client.setMembers([spare, ring[1]!, ring[2]!, ring[3]!]);
    expect(sentTo(moved).sort()).toEqual(['r1', 'r2', 'r3', 'spare']);

    // Replies gathered from the old list are dropped: r0's earlier one and r1's are not f+1.
    expect(outputs(client.onMessage('r1', replyTo(request, 1), 2))).toEqual([]);
    // r0's reply under index 0 is refused now; the spare's counts, and with r1's that is f+1.
    expect(outputs(client.onMessage('r0', replyTo(request, 0), 5))).toEqual([]);
    expect(client.counters.badReplies).toBe(1);
    const done = outputs(client.onMessage('spare', replyTo(request, 0), 6));
    expect(done).toEqual([expect.objectContaining({ kind: 'completed', seq: 1 })]);

    // The next request goes to the primary of the new list.
    expect(sentTo(client.submit(Uint8Array.of(43), 10))).toEqual(['spare']);
    expect(() => client.setMembers([spare, ring[1]!, ring[2]!])).toThrow(/3f\+1/);
  });
});

describe('ring client: certificates', () => {
  it('checks a certificate under the key epoch it names, however many refreshes the ring has had', () => {
    // The ring key "verifies" only headers of epoch 5 (five key refreshes before this client started).
    const client = clientOf((message) => batchHeaderFromTuple(decode(message, 4096)).epoch === 5);
    const submitted = client.submit(Uint8Array.of(42), 0);
    const request = (submitted[0] as { message: RingMessage }).message as ClientRequest;
    client.onMessage('r0', replyTo(request, 0), 1);
    expect(outputs(client.onMessage('r1', replyTo(request, 1), 2))).toEqual([expect.objectContaining({ kind: 'completed' })]);
    const statement = Uint8Array.of(9, 9, 9);
    const tree = new BatchMerkleTree(nodeCrypto, [batchLeafHash(nodeCrypto, statement)]);
    const certificate = (epoch: number): CertificateMessage => ({
      kind: 'certificate', seq: 1, epoch, clientKey: request.clientKey, nonce: request.nonce, statement,
      leafIndex: 0, leafCount: 1, path: tree.pathOf(0), root: tree.root, signature: Uint8Array.of(1),
    });
    // Naming another epoch only fails the check (the epoch is in the signed header).
    expect(outputs(client.onMessage('r0', certificate(4), 3))).toEqual([]);
    expect(client.counters.badCertificates).toBe(1);
    expect(outputs(client.onMessage('r1', certificate(5), 4))).toEqual([expect.objectContaining({ kind: 'certified', seq: 1 })]);
  });

  it('with 1,024 certificates awaited, a new completion stops the wait for the oldest only', () => {
    const client = clientOf();
    const statement = Uint8Array.of(9, 9, 9);
    const tree = new BatchMerkleTree(nodeCrypto, [batchLeafHash(nodeCrypto, statement)]);
    const requests: ClientRequest[] = [];
    for (let i = 0; i < 1025; i++) {
      const request = (client.submit(Uint8Array.of(i & 255), i)[0] as { message: RingMessage }).message as ClientRequest;
      requests.push(request);
      client.onMessage('r0', replyTo(request, 0), i);
      client.onMessage('r1', replyTo(request, 1), i);
    }
    expect(requests.length).toBe(1025);
    expect(client.certificatesAwaited).toBe(1024);
    const certificate = (request: ClientRequest): CertificateMessage => ({
      kind: 'certificate', seq: 1, epoch: 0, clientKey: request.clientKey, nonce: request.nonce, statement,
      leafIndex: 0, leafCount: 1, path: tree.pathOf(0), root: tree.root, signature: Uint8Array.of(1),
    });
    expect(outputs(client.onMessage('r0', certificate(requests[0]!), 2000))).toEqual([]);
    expect(outputs(client.onMessage('r0', certificate(requests[1]!), 2001))).toEqual([expect.objectContaining({ kind: 'certified', nonce: requests[1]!.nonce })]);
  });

  it('checks at most one certificate per member and request after a failed one, and none from a non-member', () => {
    let checks = 0;
    const client = clientOf((message) => {
      checks++;
      return batchHeaderFromTuple(decode(message, 4096)).epoch === 0;
    });
    const submitted = client.submit(Uint8Array.of(42), 0);
    const request = (submitted[0] as { message: RingMessage }).message as ClientRequest;
    const statement = Uint8Array.of(9, 9, 9);
    const tree = new BatchMerkleTree(nodeCrypto, [batchLeafHash(nodeCrypto, statement)]);
    const certificate = (epoch: number): CertificateMessage => ({
      kind: 'certificate', seq: 1, epoch, clientKey: request.clientKey, nonce: request.nonce, statement,
      leafIndex: 0, leafCount: 1, path: tree.pathOf(0), root: tree.root, signature: Uint8Array.of(1),
    });
    // Early (before the replies) and after completion alike, r0's lies are checked once.
    for (let i = 0; i < 5; i++) expect(outputs(client.onMessage('r0', certificate(7), 1 + i))).toEqual([]);
    client.onMessage('r1', replyTo(request, 1), 10);
    expect(outputs(client.onMessage('r2', replyTo(request, 2), 11))).toEqual([expect.objectContaining({ kind: 'completed' })]);
    for (let i = 0; i < 5; i++) expect(outputs(client.onMessage('r0', certificate(0), 12 + i))).toEqual([]);
    expect(outputs(client.onMessage('stranger', certificate(0), 20))).toEqual([]);
    expect([checks, client.counters.badCertificates]).toEqual([1, 1]);
    expect(outputs(client.onMessage('r3', certificate(0), 21))).toEqual([expect.objectContaining({ kind: 'certified', seq: 1 })]);
    expect(checks).toBe(2);
  });

  it('with a binding, takes only the certificate of its own update: another leaf of a signed span relabelled with its key and nonce is refused', () => {
    // Toy binding: an operation's key is its bytes; a statement's key is its bytes after the first.
    const client = clientOf(() => true, { operationKey: (op) => op, statementKey: (st) => st.subarray(1) });
    const submitted = client.submit(Uint8Array.of(42), 0);
    const request = (submitted[0] as { message: RingMessage }).message as ClientRequest;
    const ours = Uint8Array.of(0, 42);
    const theirs = Uint8Array.of(0, 43);
    const tree = new BatchMerkleTree(nodeCrypto, [theirs, ours].map((s) => batchLeafHash(nodeCrypto, s)));
    const leaf = (statement: Uint8Array, leafIndex: number): CertificateMessage => ({
      kind: 'certificate', seq: 1, epoch: 0, clientKey: request.clientKey, nonce: request.nonce, statement,
      leafIndex, leafCount: 2, path: tree.pathOf(leafIndex), root: tree.root, signature: Uint8Array.of(1),
    });
    // Before any reply (the early path) and after completion alike, the other update's leaf is refused.
    expect(outputs(client.onMessage('r2', leaf(theirs, 0), 1))).toEqual([]);
    client.onMessage('r0', replyTo(request, 0), 2);
    expect(outputs(client.onMessage('r1', replyTo(request, 1), 3))).toEqual([expect.objectContaining({ kind: 'completed' })]);
    expect(outputs(client.onMessage('r3', leaf(theirs, 0), 4))).toEqual([]);
    expect(client.counters.badCertificates).toBe(2);
    expect(outputs(client.onMessage('r0', leaf(ours, 1), 5))).toEqual([expect.objectContaining({ kind: 'certified', statement: ours })]);
  });
});
