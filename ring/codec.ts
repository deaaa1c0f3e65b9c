/**
 * Wire encoding of ring messages: msgpack tuples `[tag, ...fields]` (core/codec.ts). The decoder
 * bounds every size and checks every field before the cores see a message; anything else is a
 * DecodeError. The same tuples (minus the signature) are the signed payloads (ring/signing.ts).
 */
import { updateBytesMax } from '../core/update/update-codec.ts';
import {
  asBool,
  asBytesField,
  asList,
  asNullable,
  asString,
  asTuple,
  asUint,
  decode,
  encode,
} from '../core/codec.ts';
import { hashBytes, ed25519PublicKeyBytes, ed25519SignatureBytes } from '../core/crypto.ts';
import { DecodeError } from '../core/errors.ts';
import type {
  Batch,
  Checkpoint,
  ClientRequest,
  Commit,
  PrePrepare,
  Prepare,
  PreparedProof,
  RingMessage,
  ViewChange,
} from './messages.ts';

/** Largest frame a transport should accept for a ring message (a state snapshot is the biggest). */
export const ringFrameBytesMax = 64 * 1024 * 1024;
/** An encoded update, the only operation the object ring runs, is at most this (core/update). */
export const operationBytesMax = updateBytesMax;
export const blockBytesMax = 4 * 1024 * 1024;
export const batchRequestCountMax = 4096;
export const replicaIndexMax = 255;
export const replyToLengthMax = 128;
export const resultBytesMax = 64 * 1024;
export const statementBytesMax = 4096;
export const merklePathLengthMax = 32;
export const shareBytesMax = 256;
export const thresholdSignatureBytesMax = 256;
const proofCountMax = 1024;
const quorumCountMax = replicaIndexMax + 1;

const tags = {
  request: 1,
  'pre-prepare': 2,
  prepare: 3,
  commit: 4,
  checkpoint: 5,
  'view-change': 6,
  'new-view': 7,
  status: 8,
  'commit-proof': 9,
  'checkpoint-proof': 10,
  'state-request': 11,
  'state-reply': 12,
  share: 13,
  reply: 14,
  certificate: 15,
  'put-block': 16,
  'block-stored': 17,
  'fetch-blocks': 18,
  'block-data': 19,
  'sign-request': 20,
  'span-certified': 21,
  'certificate-request': 22,
  'share-refused': 23,
  'nonce-passed': 24,
} as const;
const blockKindCodes = ['data', 'interior', 'root'] as const;
export const fetchBlocksCountMax = 256;

type Tuple = unknown[];

function batchTuple(b: Batch): Tuple {
  return [b.timestampMs, b.heartbeat, b.requests.map(toTuple)];
}

/** The message as a tuple; signed payloads are this minus the trailing signature/batch fields. */
export function toTuple(m: RingMessage): Tuple {
  switch (m.kind) {
    case 'request':
      return [tags.request, m.clientKey, m.nonce, m.replyTo, m.operation, m.signature];
    case 'pre-prepare':
      return [tags['pre-prepare'], m.view, m.seq, m.digest, m.replica, m.signature, m.batch ? batchTuple(m.batch) : null];
    case 'prepare':
    case 'commit':
      return [tags[m.kind], m.view, m.seq, m.digest, m.replica, m.signature];
    case 'checkpoint':
      return [tags.checkpoint, m.seq, m.stateDigest, m.replica, m.signature];
    case 'view-change':
      return [
        tags['view-change'],
        m.newView,
        m.stableSeq,
        m.checkpointProof.map(toTuple),
        m.prepared.map((p) => [toTuple(p.prePrepare), p.prepares.map(toTuple)]),
        m.replica,
        m.signature,
      ];
    case 'new-view':
      return [tags['new-view'], m.view, m.viewChanges.map(toTuple), m.prePrepares.map(toTuple), m.replica, m.signature];
    case 'status':
      return [tags.status, m.view, m.viewActive, m.lastExecuted, m.stableSeq];
    case 'commit-proof':
      return [tags['commit-proof'], toTuple(m.prePrepare), m.commits.map(toTuple)];
    case 'checkpoint-proof':
      return [tags['checkpoint-proof'], m.checkpoints.map(toTuple)];
    case 'state-request':
      return [tags['state-request'], m.seq];
    case 'state-reply':
      return [tags['state-reply'], m.seq, m.snapshot, m.checkpoints.map(toTuple)];
    case 'share':
      return [tags.share, m.seq, m.root, m.replica, m.share];
    case 'sign-request':
      return [tags['sign-request'], m.from, m.to, m.leafCount, m.root, m.replica];
    case 'span-certified':
      return [tags['span-certified'], m.from, m.to, m.leafCount, m.root, m.signature, m.replica];
    case 'reply':
      return [tags.reply, m.view, m.seq, m.clientKey, m.nonce, m.requestDigest, m.result, m.replica, m.signature];
    case 'nonce-passed':
      return [tags['nonce-passed'], m.clientKey, m.nonce, m.requestDigest, m.executedNonce, m.replica, m.signature];
    case 'certificate':
      return [tags.certificate, m.seq, m.clientKey, m.nonce, m.statement, m.leafIndex, m.leafCount, m.path, m.root, m.signature, m.epoch];
    case 'certificate-request':
      return [tags['certificate-request'], m.clientKey, m.nonce];
    case 'share-refused':
      return [tags['share-refused'], m.to, m.floor, m.replica];
    case 'put-block':
      return [tags['put-block'], m.block];
    case 'block-stored':
      return [tags['block-stored'], m.bguid, m.replica];
    case 'fetch-blocks':
      return [tags['fetch-blocks'], m.bguids];
    case 'block-data':
      return [tags['block-data'], blockKindCodes.indexOf(m.blockKind), m.bytes];
  }
}

export function encodeRingMessage(message: RingMessage): Uint8Array {
  return encode(toTuple(message));
}

export function decodeRingMessage(bytes: Uint8Array): RingMessage {
  return fromTuple(decode(bytes, ringFrameBytesMax, 'ring message'));
}

const hash = (v: unknown, what: string): Uint8Array => asBytesField(v, what, { bytes: hashBytes });
const sig = (v: unknown, what: string): Uint8Array => asBytesField(v, what, { bytes: ed25519SignatureBytes });
/** A reply's signature, or none (empty) from a replica whose channel to the client has integrity. */
function replySignature(v: unknown): Uint8Array {
  const bytes = asBytesField(v, 'reply.signature', { bytesMax: ed25519SignatureBytes });
  if (bytes.length !== 0 && bytes.length !== ed25519SignatureBytes) throw new DecodeError(`reply.signature: ${bytes.length} bytes, expected 0 or ${ed25519SignatureBytes}`);
  return bytes;
}
const replicaIndex = (v: unknown, what: string): number => asUint(v, what, replicaIndexMax);

function asRequest(v: unknown): ClientRequest {
  const t = asTuple(v, 'request', 6);
  if (t[0] !== tags.request) throw new DecodeError('request: wrong tag');
  return {
    kind: 'request',
    clientKey: asBytesField(t[1], 'request.clientKey', { bytes: ed25519PublicKeyBytes }),
    nonce: asUint(t[2], 'request.nonce'),
    replyTo: asString(t[3], 'request.replyTo', replyToLengthMax),
    operation: asBytesField(t[4], 'request.operation', { bytesMax: operationBytesMax }),
    signature: sig(t[5], 'request.signature'),
  };
}

function asBatch(v: unknown): Batch {
  const t = asTuple(v, 'batch', 3);
  return {
    timestampMs: asUint(t[0], 'batch.timestampMs'),
    heartbeat: asBool(t[1], 'batch.heartbeat'),
    requests: asList(t[2], 'batch.requests', batchRequestCountMax, asRequest),
  };
}

function asAgreement<K extends 'prepare' | 'commit'>(kind: K, v: unknown): Prepare | Commit {
  const t = asTuple(v, kind, 6);
  if (t[0] !== tags[kind]) throw new DecodeError(`${kind}: wrong tag`);
  return {
    kind,
    view: asUint(t[1], `${kind}.view`),
    seq: asUint(t[2], `${kind}.seq`),
    digest: hash(t[3], `${kind}.digest`),
    replica: replicaIndex(t[4], `${kind}.replica`),
    signature: sig(t[5], `${kind}.signature`),
  } as Prepare | Commit;
}
const asPrepare = (v: unknown): Prepare => asAgreement('prepare', v) as Prepare;
const asCommit = (v: unknown): Commit => asAgreement('commit', v) as Commit;

function asPrePrepare(v: unknown): PrePrepare {
  const t = asTuple(v, 'pre-prepare', 7);
  if (t[0] !== tags['pre-prepare']) throw new DecodeError('pre-prepare: wrong tag');
  return {
    kind: 'pre-prepare',
    view: asUint(t[1], 'pre-prepare.view'),
    seq: asUint(t[2], 'pre-prepare.seq'),
    digest: hash(t[3], 'pre-prepare.digest'),
    replica: replicaIndex(t[4], 'pre-prepare.replica'),
    signature: sig(t[5], 'pre-prepare.signature'),
    batch: asNullable(t[6], asBatch),
  };
}

function asCheckpoint(v: unknown): Checkpoint {
  const t = asTuple(v, 'checkpoint', 5);
  if (t[0] !== tags.checkpoint) throw new DecodeError('checkpoint: wrong tag');
  return {
    kind: 'checkpoint',
    seq: asUint(t[1], 'checkpoint.seq'),
    stateDigest: hash(t[2], 'checkpoint.stateDigest'),
    replica: replicaIndex(t[3], 'checkpoint.replica'),
    signature: sig(t[4], 'checkpoint.signature'),
  };
}

function asPreparedProof(v: unknown): PreparedProof {
  const t = asTuple(v, 'prepared proof', 2);
  return { prePrepare: asPrePrepare(t[0]), prepares: asList(t[1], 'prepared.prepares', quorumCountMax, asPrepare) };
}

function asViewChange(v: unknown): ViewChange {
  const t = asTuple(v, 'view-change', 7);
  if (t[0] !== tags['view-change']) throw new DecodeError('view-change: wrong tag');
  return {
    kind: 'view-change',
    newView: asUint(t[1], 'view-change.newView'),
    stableSeq: asUint(t[2], 'view-change.stableSeq'),
    checkpointProof: asList(t[3], 'view-change.checkpointProof', quorumCountMax, asCheckpoint),
    prepared: asList(t[4], 'view-change.prepared', proofCountMax, asPreparedProof),
    replica: replicaIndex(t[5], 'view-change.replica'),
    signature: sig(t[6], 'view-change.signature'),
  };
}

function fromTuple(value: unknown): RingMessage {
  if (!Array.isArray(value) || value.length === 0) throw new DecodeError('ring message: expected a tagged tuple');
  const t = value as Tuple;
  switch (t[0]) {
    case tags.request:
      return asRequest(t);
    case tags['pre-prepare']:
      return asPrePrepare(t);
    case tags.prepare:
      return asPrepare(t);
    case tags.commit:
      return asCommit(t);
    case tags.checkpoint:
      return asCheckpoint(t);
    case tags['view-change']:
      return asViewChange(t);
    case tags['new-view']: {
      asTuple(t, 'new-view', 6);
      return {
        kind: 'new-view',
        view: asUint(t[1], 'new-view.view'),
        viewChanges: asList(t[2], 'new-view.viewChanges', quorumCountMax, asViewChange),
        prePrepares: asList(t[3], 'new-view.prePrepares', proofCountMax, asPrePrepare),
        replica: replicaIndex(t[4], 'new-view.replica'),
        signature: sig(t[5], 'new-view.signature'),
      };
    }
    case tags.status:
      asTuple(t, 'status', 5);
      return {
        kind: 'status',
        view: asUint(t[1], 'status.view'),
        viewActive: asBool(t[2], 'status.viewActive'),
        lastExecuted: asUint(t[3], 'status.lastExecuted'),
        stableSeq: asUint(t[4], 'status.stableSeq'),
      };
    case tags['commit-proof']:
      asTuple(t, 'commit-proof', 3);
      return {
        kind: 'commit-proof',
        prePrepare: asPrePrepare(t[1]),
        commits: asList(t[2], 'commit-proof.commits', quorumCountMax, asCommit),
      };
    case tags['checkpoint-proof']:
      asTuple(t, 'checkpoint-proof', 2);
      return { kind: 'checkpoint-proof', checkpoints: asList(t[1], 'checkpoint-proof.checkpoints', quorumCountMax, asCheckpoint) };
    case tags['state-request']:
      asTuple(t, 'state-request', 2);
      return { kind: 'state-request', seq: asUint(t[1], 'state-request.seq') };
    case tags['state-reply']:
      asTuple(t, 'state-reply', 4);
      return {
        kind: 'state-reply',
        seq: asUint(t[1], 'state-reply.seq'),
        snapshot: asBytesField(t[2], 'state-reply.snapshot', { bytesMax: ringFrameBytesMax }),
        checkpoints: asList(t[3], 'state-reply.checkpoints', quorumCountMax, asCheckpoint),
      };
    case tags.share:
      asTuple(t, 'share', 5);
      return {
        kind: 'share',
        seq: asUint(t[1], 'share.seq'),
        root: hash(t[2], 'share.root'),
        replica: replicaIndex(t[3], 'share.replica'),
        share: asBytesField(t[4], 'share.share', { bytesMax: shareBytesMax }),
      };
    case tags['sign-request']:
      asTuple(t, 'sign-request', 6);
      return {
        kind: 'sign-request',
        from: asUint(t[1], 'sign-request.from'),
        to: asUint(t[2], 'sign-request.to'),
        leafCount: asUint(t[3], 'sign-request.leafCount'),
        root: hash(t[4], 'sign-request.root'),
        replica: replicaIndex(t[5], 'sign-request.replica'),
      };
    case tags['span-certified']:
      asTuple(t, 'span-certified', 7);
      return {
        kind: 'span-certified',
        from: asUint(t[1], 'span-certified.from'),
        to: asUint(t[2], 'span-certified.to'),
        leafCount: asUint(t[3], 'span-certified.leafCount'),
        root: hash(t[4], 'span-certified.root'),
        signature: asBytesField(t[5], 'span-certified.signature', { bytesMax: thresholdSignatureBytesMax }),
        replica: replicaIndex(t[6], 'span-certified.replica'),
      };
    case tags.reply:
      asTuple(t, 'reply', 9);
      return {
        kind: 'reply',
        view: asUint(t[1], 'reply.view'),
        seq: asUint(t[2], 'reply.seq'),
        clientKey: asBytesField(t[3], 'reply.clientKey', { bytes: ed25519PublicKeyBytes }),
        nonce: asUint(t[4], 'reply.nonce'),
        requestDigest: hash(t[5], 'reply.requestDigest'),
        result: asBytesField(t[6], 'reply.result', { bytesMax: resultBytesMax }),
        replica: replicaIndex(t[7], 'reply.replica'),
        signature: replySignature(t[8]),
      };
    case tags['nonce-passed']:
      asTuple(t, 'nonce-passed', 7);
      return {
        kind: 'nonce-passed',
        clientKey: asBytesField(t[1], 'nonce-passed.clientKey', { bytes: ed25519PublicKeyBytes }),
        nonce: asUint(t[2], 'nonce-passed.nonce'),
        requestDigest: hash(t[3], 'nonce-passed.requestDigest'),
        executedNonce: asUint(t[4], 'nonce-passed.executedNonce'),
        replica: replicaIndex(t[5], 'nonce-passed.replica'),
        signature: replySignature(t[6]),
      };
    case tags.certificate:
      asTuple(t, 'certificate', 11);
      return {
        kind: 'certificate',
        seq: asUint(t[1], 'certificate.seq'),
        clientKey: asBytesField(t[2], 'certificate.clientKey', { bytes: ed25519PublicKeyBytes }),
        nonce: asUint(t[3], 'certificate.nonce'),
        statement: asBytesField(t[4], 'certificate.statement', { bytesMax: statementBytesMax }),
        leafIndex: asUint(t[5], 'certificate.leafIndex', batchRequestCountMax * 64),
        leafCount: asUint(t[6], 'certificate.leafCount', batchRequestCountMax * 64),
        path: asList(t[7], 'certificate.path', merklePathLengthMax, (p) => hash(p, 'certificate.path[]')),
        root: hash(t[8], 'certificate.root'),
        signature: asBytesField(t[9], 'certificate.signature', { bytesMax: thresholdSignatureBytesMax }),
        epoch: asUint(t[10], 'certificate.epoch'),
      };
    case tags['certificate-request']:
      asTuple(t, 'certificate-request', 3);
      return {
        kind: 'certificate-request',
        clientKey: asBytesField(t[1], 'certificate-request.clientKey', { bytes: ed25519PublicKeyBytes }),
        nonce: asUint(t[2], 'certificate-request.nonce'),
      };
    case tags['share-refused']:
      asTuple(t, 'share-refused', 4);
      return { kind: 'share-refused', to: asUint(t[1], 'share-refused.to'), floor: asUint(t[2], 'share-refused.floor'), replica: replicaIndex(t[3], 'share-refused.replica') };
    case tags['put-block']:
      asTuple(t, 'put-block', 2);
      return { kind: 'put-block', block: asBytesField(t[1], 'put-block.block', { bytesMax: blockBytesMax }) };
    case tags['block-stored']:
      asTuple(t, 'block-stored', 3);
      return { kind: 'block-stored', bguid: hash(t[1], 'block-stored.bguid'), replica: replicaIndex(t[2], 'block-stored.replica') };
    case tags['fetch-blocks']:
      asTuple(t, 'fetch-blocks', 2);
      return { kind: 'fetch-blocks', bguids: asList(t[1], 'fetch-blocks.bguids', fetchBlocksCountMax, (b) => hash(b, 'fetch-blocks.bguid')) };
    case tags['block-data']:
      asTuple(t, 'block-data', 3);
      return {
        kind: 'block-data',
        blockKind: blockKindCodes[asUint(t[1], 'block-data.kind', blockKindCodes.length - 1)]!,
        bytes: asBytesField(t[2], 'block-data.bytes', { bytesMax: blockBytesMax }),
      };
    default:
      throw new DecodeError(`ring message: unknown tag ${String(t[0])}`);
  }
}

/** Round-trips through bytes: the simulator's cloneMessage, so no two nodes share an object. */
export function cloneRingMessage(message: RingMessage): RingMessage {
  return decodeRingMessage(encodeRingMessage(message));
}

export { asRequest as decodeClientRequestTuple, asBatch as decodeBatchTuple };
