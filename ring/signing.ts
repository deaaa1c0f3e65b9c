/**
 * Digests and signatures of ring messages. A signed message's payload is its wire tuple without
 * the signature (and, for a pre-prepare, without the batch: the batch digest stands for it), hashed
 * under the ring-message domain tag, so a signature of one kind can never pass as another.
 */
import { encode } from '../core/codec.ts';
import { HashTag, signTagged, taggedHash, verifyTagged, type Crypto, type Signer } from '../core/crypto.ts';
import { toTuple } from './codec.ts';
import type {
  Batch,
  Checkpoint,
  ClientRequest,
  Commit,
  NewView,
  NoncePassed,
  PrePrepare,
  Prepare,
  Reply,
  ViewChange,
} from './messages.ts';

export type SignedReplicaMessage = PrePrepare | Prepare | Commit | Checkpoint | ViewChange | NewView | Reply | NoncePassed;

type Unsigned<T> = T extends unknown ? Omit<T, 'signature'> : never;

/** The bytes a signature covers. */
export function signedPayload(m: SignedReplicaMessage | ClientRequest): Uint8Array {
  const full = toTuple({ ...m, ...(m.kind === 'pre-prepare' ? { batch: null } : {}) } as SignedReplicaMessage);
  // The signature is the last field, except in a pre-prepare where the (unsigned) batch follows it.
  const cut = m.kind === 'pre-prepare' ? full.length - 2 : full.length - 1;
  return encode(full.slice(0, cut));
}

function tagOf(m: SignedReplicaMessage | ClientRequest): HashTag {
  return m.kind === 'reply' || m.kind === 'nonce-passed' ? HashTag.reply : HashTag.ringMessage;
}

/** Fills in the signature of a message built without one. */
export function signMessage<T extends SignedReplicaMessage | ClientRequest>(
  crypto: Crypto,
  signer: Signer,
  unsigned: Unsigned<T>,
): T {
  const withPlaceholder = { ...unsigned, signature: new Uint8Array(64) } as unknown as T;
  const signature = signTagged(crypto, signer, tagOf(withPlaceholder), signedPayload(withPlaceholder));
  return { ...withPlaceholder, signature };
}

export function verifyMessage(crypto: Crypto, publicKey: Uint8Array, m: SignedReplicaMessage | ClientRequest): boolean {
  return verifyTagged(crypto, publicKey, tagOf(m), signedPayload(m), m.signature);
}

/**
 * Requests are immutable once decoded, and a replica asks for one's digest several times
 * (validity, the batch digest a pre-prepare signs, execution, the reply): each asked for a fresh
 * encoding and hash of the whole operation, so the digest is kept beside the object.
 */
const requestDigests = new WeakMap<ClientRequest, { crypto: Crypto; digest: Uint8Array }>();

/**
 * Identity of a request: (client, nonce, operation), the dedupe and reply-cache key. The reply
 * address is left out on purpose: it is a routing hint, and a copy of a request re-sent with
 * another address (by a relay) is the same
 * request, so the real client's retransmission still finds the cached reply.
 */
export function requestDigest(crypto: Crypto, request: ClientRequest): Uint8Array {
  const known = requestDigests.get(request);
  if (known && known.crypto === crypto) return known.digest;
  const digest = taggedHash(crypto, HashTag.ringMessage, encode(['request-id', request.clientKey, request.nonce, request.operation]));
  requestDigests.set(request, { crypto, digest });
  return digest;
}

/** What a pre-prepare signs for its batch: the timestamp, the heartbeat flag and the request digests. */
export function batchDigest(crypto: Crypto, batch: Batch): Uint8Array {
  const digests = batch.requests.map((r) => requestDigest(crypto, r));
  return taggedHash(crypto, HashTag.ringMessage, encode([batch.timestampMs, batch.heartbeat, digests]));
}
