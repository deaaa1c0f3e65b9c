/**
 * Every message of the inner ring (Castro & Liskov, OSDI'99 §4, TOCS'02 §4–5) plus the client
 * side. Agreement messages carry the sender's replica index and an ed25519 signature over their
 * signed part (ring/signing.ts), so any replica can forward them and they serve as proofs in view
 * changes, commit proofs and checkpoint proofs.
 */

/** A client's signed operation. Dedupe key: (clientKey, nonce); nonces of one client increase. */
export interface ClientRequest {
  readonly kind: 'request';
  /** The client's ed25519 public key: its identity. */
  readonly clientKey: Uint8Array;
  readonly nonce: number;
  /** Where replies go (the client's node name in the configuration or transport). */
  readonly replyTo: string;
  /** The operation bytes, opaque to agreement (a Pond update for the object service). */
  readonly operation: Uint8Array;
  readonly signature: Uint8Array;
}

/** What the primary orders: requests plus its timestamp; `heartbeat` asks for heartbeat certificates. */
export interface Batch {
  readonly timestampMs: number;
  readonly heartbeat: boolean;
  readonly requests: readonly ClientRequest[];
}

export interface PrePrepare {
  readonly kind: 'pre-prepare';
  readonly view: number;
  readonly seq: number;
  /** batchDigest(batch): the signature covers the digest, so proofs can travel without the batch. */
  readonly digest: Uint8Array;
  readonly replica: number;
  readonly signature: Uint8Array;
  /** Not signed (the digest is); null when only the proof is needed. */
  readonly batch: Batch | null;
}

export interface Prepare {
  readonly kind: 'prepare';
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
  readonly replica: number;
  readonly signature: Uint8Array;
}

export interface Commit {
  readonly kind: 'commit';
  readonly view: number;
  readonly seq: number;
  readonly digest: Uint8Array;
  readonly replica: number;
  readonly signature: Uint8Array;
}

export interface Checkpoint {
  readonly kind: 'checkpoint';
  readonly seq: number;
  /** H(checkpoint-tag ‖ snapshot bytes) of the state after executing `seq`. */
  readonly stateDigest: Uint8Array;
  readonly replica: number;
  readonly signature: Uint8Array;
}

/** A pre-prepare (with its batch) and 2f matching prepares from other replicas: "prepared". */
export interface PreparedProof {
  readonly prePrepare: PrePrepare;
  readonly prepares: readonly Prepare[];
}

export interface ViewChange {
  readonly kind: 'view-change';
  readonly newView: number;
  /** Sequence number of the sender's stable checkpoint (0 = the initial state). */
  readonly stableSeq: number;
  /** 2f+1 matching checkpoint messages for stableSeq (empty when stableSeq = 0). */
  readonly checkpointProof: readonly Checkpoint[];
  /** The highest-view prepared proof per sequence number above stableSeq. */
  readonly prepared: readonly PreparedProof[];
  readonly replica: number;
  readonly signature: Uint8Array;
}

export interface NewView {
  readonly kind: 'new-view';
  readonly view: number;
  readonly viewChanges: readonly ViewChange[];
  /** Pre-prepares for view `view`, recomputable from viewChanges (each carries its batch). */
  readonly prePrepares: readonly PrePrepare[];
  readonly replica: number;
  readonly signature: Uint8Array;
}

/** A periodic hint: what the sender has; peers answer with what it lacks. Unsigned (only a hint). */
export interface Status {
  readonly kind: 'status';
  readonly view: number;
  readonly viewActive: boolean;
  readonly lastExecuted: number;
  readonly stableSeq: number;
}

/** A committed slot, forwarded to a replica that lags: pre-prepare with batch and 2f+1 commits. */
export interface CommitProof {
  readonly kind: 'commit-proof';
  readonly prePrepare: PrePrepare;
  readonly commits: readonly Commit[];
}

export interface CheckpointProof {
  readonly kind: 'checkpoint-proof';
  readonly checkpoints: readonly Checkpoint[];
}

export interface StateRequest {
  readonly kind: 'state-request';
  readonly seq: number;
}

/** The snapshot at a checkpoint; the receiver checks its digest against a stable checkpoint proof. */
export interface StateReply {
  readonly kind: 'state-reply';
  readonly seq: number;
  readonly snapshot: Uint8Array;
  readonly checkpoints: readonly Checkpoint[];
}

/** A replica's threshold-signature share over a span's header (seq = the span's last sequence number). */
export interface Share {
  readonly kind: 'share';
  readonly seq: number;
  readonly root: Uint8Array;
  readonly replica: number;
  readonly share: Uint8Array;
}

/** A certifier asks for shares over the span [from, to] of executed statements (ring/replica-certificates.ts). */
export interface SignRequest {
  readonly kind: 'sign-request';
  readonly from: number;
  readonly to: number;
  readonly leafCount: number;
  readonly root: Uint8Array;
  readonly replica: number;
}

/**
 * A replica asked to sign a span it cannot: it no longer holds statements from `from` on (it
 * restarted, took a state transfer, or certified them and forgot them). `floor` is where its
 * statements start; the certifier may skip to it after a stalled round (ring/replica-certificates.ts).
 */
export interface ShareRefused {
  readonly kind: 'share-refused';
  readonly to: number;
  readonly floor: number;
  readonly replica: number;
}

/** A span's combined threshold signature, for the other replicas (each checks it against its own statements). */
export interface SpanCertified {
  readonly kind: 'span-certified';
  readonly from: number;
  readonly to: number;
  readonly leafCount: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
  readonly replica: number;
}

/**
 * The client accepts f+1 matching ones from distinct replicas. Signed by the replica, except over
 * a host with channel integrity, where the signature is empty (ring/replica-execution.ts).
 */
export interface Reply {
  readonly kind: 'reply';
  readonly view: number;
  readonly seq: number;
  readonly clientKey: Uint8Array;
  readonly nonce: number;
  readonly requestDigest: Uint8Array;
  readonly result: Uint8Array;
  readonly replica: number;
  readonly signature: Uint8Array;
}

/**
 * A replica's answer to a client's request whose nonce its record of that client has passed and
 * which never executed (this nonce with another request, or a nonce the record knows did not:
 * ClientRecord.knownFrom and executedBelow, the last 32 executed), so it never will. Several
 * clients with one key (an app and a CLI call sharing an identity) send nonces the others pass;
 * f+1 of these let the client sign its operation again above `executedNonce` (the (f+1)-th highest
 * of them), where it used to go unanswered until the caller's deadline. Signed like a reply.
 */
export interface NoncePassed {
  readonly kind: 'nonce-passed';
  readonly clientKey: Uint8Array;
  readonly nonce: number;
  readonly requestDigest: Uint8Array;
  readonly executedNonce: number;
  readonly replica: number;
  readonly signature: Uint8Array;
}

/** A batch certificate narrowed to one statement: threshold signature on the root + Merkle path. */
export interface CertificateMessage {
  readonly kind: 'certificate';
  readonly seq: number;
  /**
   * The key epoch whose shares signed the span (the header names it, so it is signed: a wrong one
   * only makes the check fail). A client that joins after several key refreshes needs it.
   */
  readonly epoch: number;
  readonly clientKey: Uint8Array;
  readonly nonce: number;
  readonly statement: Uint8Array;
  readonly leafIndex: number;
  readonly leafCount: number;
  readonly path: readonly Uint8Array[];
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * A client that completed a request but has not had its certificate asks the ring again (the
 * certifiers' messages to it may have been lost); a member that sent it one re-sends it to the
 * client, never to anyone else (ring/replica-certificates.ts onCertificateRequest).
 */
export interface CertificateRequest {
  readonly kind: 'certificate-request';
  readonly clientKey: Uint8Array;
  readonly nonce: number;
}

/** A content-addressed block pushed by a client ahead of the update that names it. */
export interface PutBlock {
  readonly kind: 'put-block';
  readonly block: Uint8Array;
}

export interface BlockStored {
  readonly kind: 'block-stored';
  readonly bguid: Uint8Array;
  readonly replica: number;
}

/** A replica asks its peers for blocks it must hold before executing (or after a state transfer). */
export interface FetchBlocks {
  readonly kind: 'fetch-blocks';
  readonly bguids: readonly Uint8Array[];
}

/** A block sent in answer to fetch-blocks; the receiver checks it hashes to a BGUID it asked for. */
export interface BlockData {
  readonly kind: 'block-data';
  readonly blockKind: 'data' | 'interior' | 'root';
  readonly bytes: Uint8Array;
}

export type RingMessage =
  | ClientRequest
  | PrePrepare
  | Prepare
  | Commit
  | Checkpoint
  | ViewChange
  | NewView
  | Status
  | CommitProof
  | CheckpointProof
  | StateRequest
  | StateReply
  | Share
  | SignRequest
  | ShareRefused
  | SpanCertified
  | Reply
  | NoncePassed
  | CertificateMessage
  | CertificateRequest
  | PutBlock
  | BlockStored
  | FetchBlocks
  | BlockData;

export type RingMessageKind = RingMessage['kind'];
