/** fast-check arbitraries for every ring message kind (structurally valid, cryptographically arbitrary). */
import fc from 'fast-check';
import { signerOf } from '../../core/crypto.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import type { Batch, ClientRequest, RingMessage } from '../../ring/messages.ts';
import { signMessage } from '../../ring/signing.ts';

export const signer = signerOf(fakeCrypto, new Uint8Array(32).fill(5));
export const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
const sig = fc.uint8Array({ minLength: 64, maxLength: 64 });
const u = fc.nat({ max: 2 ** 40 });
const idx = fc.nat({ max: 6 });

const request = fc.record({ nonce: u, replyTo: fc.string({ maxLength: 20 }), operation: fc.uint8Array({ maxLength: 300 }) }).map(
  ({ nonce, replyTo, operation }) =>
    signMessage<ClientRequest>(fakeCrypto, signer, { kind: 'request', clientKey: signer.publicKey, nonce, replyTo, operation }),
);
export const batch: fc.Arbitrary<Batch> = fc.record({ timestampMs: u, heartbeat: fc.boolean(), requests: fc.array(request, { maxLength: 3 }) });
export const agreement = <K extends 'prepare' | 'commit'>(kind: K) =>
  fc.record({ view: u, seq: u, digest: hash, replica: idx, signature: sig }).map((m) => ({ kind, ...m }));
export const prePrepare = fc.record({ view: u, seq: u, digest: hash, replica: idx, signature: sig, batch: fc.option(batch, { nil: null }) }).map((m) => ({ kind: 'pre-prepare' as const, ...m }));
const checkpoint = fc.record({ seq: u, stateDigest: hash, replica: idx, signature: sig }).map((m) => ({ kind: 'checkpoint' as const, ...m }));
const viewChange = fc
  .record({
    newView: u,
    stableSeq: u,
    checkpointProof: fc.array(checkpoint, { maxLength: 3 }),
    prepared: fc.array(fc.record({ prePrepare, prepares: fc.array(agreement('prepare'), { maxLength: 2 }) }), { maxLength: 2 }),
    replica: idx,
    signature: sig,
  })
  .map((m) => ({ kind: 'view-change' as const, ...m }));

export const message: fc.Arbitrary<RingMessage> = fc.oneof(
  request,
  prePrepare,
  agreement('prepare'),
  agreement('commit'),
  checkpoint,
  viewChange,
  fc.record({ view: u, viewChanges: fc.array(viewChange, { maxLength: 2 }), prePrepares: fc.array(prePrepare, { maxLength: 2 }), replica: idx, signature: sig }).map((m) => ({ kind: 'new-view' as const, ...m })),
  fc.record({ view: u, viewActive: fc.boolean(), lastExecuted: u, stableSeq: u }).map((m) => ({ kind: 'status' as const, ...m })),
  fc.record({ prePrepare, commits: fc.array(agreement('commit'), { maxLength: 3 }) }).map((m) => ({ kind: 'commit-proof' as const, ...m })),
  fc.record({ checkpoints: fc.array(checkpoint, { maxLength: 3 }) }).map((m) => ({ kind: 'checkpoint-proof' as const, ...m })),
  fc.record({ seq: u }).map((m) => ({ kind: 'state-request' as const, ...m })),
  fc.record({ seq: u, snapshot: fc.uint8Array({ maxLength: 100 }), checkpoints: fc.array(checkpoint, { maxLength: 2 }) }).map((m) => ({ kind: 'state-reply' as const, ...m })),
  fc.record({ seq: u, root: hash, replica: idx, share: fc.uint8Array({ maxLength: 96 }) }).map((m) => ({ kind: 'share' as const, ...m })),
  fc.record({ from: u, to: u, leafCount: u, root: hash, replica: idx }).map((m) => ({ kind: 'sign-request' as const, ...m })),
  fc.record({ from: u, to: u, leafCount: u, root: hash, signature: fc.uint8Array({ maxLength: 96 }), replica: idx }).map((m) => ({ kind: 'span-certified' as const, ...m })),
  fc.record({ view: u, seq: u, clientKey: hash, nonce: u, requestDigest: hash, result: fc.uint8Array({ maxLength: 50 }), replica: idx, signature: sig }).map((m) => ({ kind: 'reply' as const, ...m })),
  fc.record({ clientKey: hash, nonce: u, requestDigest: hash, executedNonce: u, replica: idx, signature: sig }).map((m) => ({ kind: 'nonce-passed' as const, ...m })),
  fc.record({ seq: u, epoch: u, clientKey: hash, nonce: u, statement: fc.uint8Array({ maxLength: 100 }), leafIndex: fc.nat({ max: 10 }), leafCount: fc.nat({ max: 10 }), path: fc.array(hash, { maxLength: 4 }), root: hash, signature: fc.uint8Array({ maxLength: 48 }) }).map((m) => ({ kind: 'certificate' as const, ...m })),
  fc.record({ clientKey: hash, nonce: u }).map((m) => ({ kind: 'certificate-request' as const, ...m })),
  fc.record({ to: u, floor: u, replica: idx }).map((m) => ({ kind: 'share-refused' as const, ...m })),
  fc.record({ block: fc.uint8Array({ maxLength: 200 }) }).map((m) => ({ kind: 'put-block' as const, ...m })),
  fc.record({ bguid: hash, replica: idx }).map((m) => ({ kind: 'block-stored' as const, ...m })),
  fc.record({ bguids: fc.array(hash, { maxLength: 3 }) }).map((m) => ({ kind: 'fetch-blocks' as const, ...m })),
  fc.record({ blockKind: fc.constantFrom('data' as const, 'interior' as const, 'root' as const), bytes: fc.uint8Array({ maxLength: 100 }) }).map((m) => ({ kind: 'block-data' as const, ...m })),
);

