/**
 * What a replica and a ring client are built from (besides the host's MachineContext): the ring's
 * members and keys, f, this node's keys, the certificate signer, and the protocol's limits.
 */
import { assert } from '../core/assert.ts';
import type { Crypto, Signer } from '../core/crypto.ts';
import { checkArgument } from '../core/errors.ts';
import type { KvStore } from '../core/store.ts';
import type { CertificateSigner, CertificateVerifier } from './certificate-signer.ts';
import type { ReplicatedService } from './service.ts';

export interface RingMember {
  /** Node name in the transport / simulator (e.g. 'ring-0'). */
  readonly id: string;
  /** Ed25519 public key the member signs agreement messages with. */
  readonly publicKey: Uint8Array;
}

export interface ProtocolParameters {
  /** Most requests in one pre-prepare. */
  readonly batchSizeMax: number;
  /** Most batches the primary keeps in flight (assigned, not yet executed); more requests wait and batch up. */
  readonly pipelineDepthMax: number;
  /** A replica waits at most this long for a queued request before issuing a partial batch (when the pipeline has room). */
  readonly batchDelayMs: number;
  /** K: a checkpoint every K sequence numbers. */
  readonly checkpointInterval: number;
  /** L: sequence numbers accepted above the stable checkpoint (a multiple of K). */
  readonly watermarkWindow: number;
  /** A backup suspects the primary when a request it knows stays unexecuted this long. */
  readonly requestTimeoutMs: number;
  /** First view-change timeout; doubles for each further view tried without progress. */
  readonly viewChangeTimeoutMs: number;
  /** Period of status messages (retransmission, catch-up). */
  readonly statusIntervalMs: number;
  /** Period of heartbeat batches issued by the primary (0 = none). */
  readonly heartbeatIntervalMs: number;
  /** Least time between two certificate rounds started by one certifier (bounds the BLS work per second). */
  readonly certifyIntervalMs: number;
  /** A certifier of rank k takes over when the oldest uncertified batch has waited k times this; a round is retried after it. */
  readonly certifyTakeoverMs: number;
  /**
   * Δ: how far ahead of its own clock a backup accepts a new batch's timestamp (the primary's
   * choice). Readers' freshness checks (maxAgeMs) trust the agreed clock up to this much; a primary
   * whose clock runs further ahead of 2f backups' is replaced as a faulty one would be.
   */
  readonly timestampAheadMaxMs: number;
  /**
   * How far behind its own clock a backup accepts a new batch's timestamp, judged from when it
   * first received that pre-prepare (a retransmission after a block fetch keeps the original
   * stamp). Execution keeps the highest timestamp agreed, so a primary stamping behind freezes the
   * ring's certified clock: readers' maxAgeMs checks fail and tree members take the old
   * heartbeats for a dead parent. A primary whose batches lag 2f backups' clocks by more is replaced.
   */
  readonly timestampBehindMaxMs: number;
}

export const defaultProtocolParameters: ProtocolParameters = {
  batchSizeMax: 256,
  pipelineDepthMax: 4,
  batchDelayMs: 2,
  checkpointInterval: 16,
  watermarkWindow: 64,
  requestTimeoutMs: 400,
  viewChangeTimeoutMs: 600,
  statusIntervalMs: 100,
  heartbeatIntervalMs: 0,
  certifyIntervalMs: 20,
  certifyTakeoverMs: 1000,
  timestampAheadMaxMs: 1000,
  // 10 s. Honest lateness is clock skew (within Δ, 1 s), network delay, and a backup's event loop
  // busy for a few seconds under load (a stall near the runtime's 6 s request timeout changes the
  // view anyway); a pre-prepare held back by a block fetch or parked above the vote ceiling is
  // judged from when it was first received. Certified heartbeats then lag true time by at most
  // this plus a certificate round and the tree's hops, well inside the ~33.5 s (parentTimeoutMs +
  // heartbeatSlackMs, replica/parent-link.ts) after which tree members call a heartbeat stale and
  // leave an honest parent: over 20 s stay for the heartbeat period (1 s in the runtime), slow
  // certificate rounds (a takeover after 3 s) and the hops down the tree.
  timestampBehindMaxMs: 10_000,
};

export interface ReplicaConfig {
  readonly members: readonly RingMember[];
  readonly f: number;
  readonly crypto: Crypto;
  readonly signer: Signer;
  readonly certificateSigner: CertificateSigner;
  readonly certificateVerifier: CertificateVerifier;
  /** Builds the replicated service over the replica's durable store (called on every (re)start). */
  readonly service: (store: KvStore) => ReplicatedService;
  readonly parameters?: Partial<ProtocolParameters>;
  /** Ring id in certificate batch headers (default 32 zero bytes). */
  readonly ringId?: Uint8Array;
  /** Key epoch in certificate batch headers (default 0). */
  readonly epoch?: number;
  /**
   * The key epoch of the certificate whose header names sequence `seq` (overrides `epoch`): after
   * a key refresh (ring/reconfiguration-*.ts) batches above the boundary are signed by new shares.
   * Must be deterministic in `seq` for every replica that executed through `seq`.
   */
  readonly epochAt?: (seq: number) => number;
  /**
   * The last seq this member list may agree on (default: no limit). While a switch to another
   * list is pending (ring/reconfiguration-replica.ts) it is the boundary, so the primary proposes
   * nothing after it under the old list and no replica accepts a proposal after it. A finite
   * limit also has an idle primary fill the ring up to it with empty batches (replica-requests.ts).
   */
  readonly agreementLimit?: () => number;
  /**
   * The host guarantees not only who sent a message (core/machine.ts) but that it was not altered
   * on the way: the simulator's network, an in-process bus, the runtime's transport (every frame
   * tagged under keys agreed in the authenticated handshake). Then a commit that arrives from the
   * replica it names counts without a signature check (ring/replica-agreement.ts). Off by default:
   * a host over bare connections must have every commit checked on arrival.
   */
  readonly channelIntegrity?: boolean;
  /**
   * Who does the certificate cryptography (this replica's shares, combining f+1 shares and checking
   * the result, checking another certifier's span-certified): 'inline' (default) inside the step
   * with certificateSigner and certificateVerifier; 'host' hands each piece to the host as a
   * `certificate-work` output, whose result comes back with Replica.onCertificateWork. A pairing
   * costs ~5 ms and a share ~2 ms, several times a normal-case step: a host can do them on another
   * thread (runtime/certificate-thread.ts) so agreement does not wait for them. (The f+1 share
   * checks after a failed combination, a Byzantine case, stay inline.)
   */
  readonly certificateWork?: 'inline' | 'host';
}

export interface ClientConfig {
  readonly members: readonly RingMember[];
  readonly f: number;
  readonly crypto: Crypto;
  readonly signer: Signer;
  readonly certificateVerifier: CertificateVerifier;
  /** Resend a request to all replicas after this long without f+1 matching replies. */
  readonly retransmitMs: number;
  /**
   * Ask every member for a completed request's certificate after this long without it, then after
   * twice that, three times in all (default 4 x retransmitMs; Infinity: never ask).
   */
  readonly certificateRetryMs?: number;
  /** Ring id of certificate batch headers (default: 32 zero bytes). */
  readonly ringId?: Uint8Array;
  /**
   * Ties a certificate to the request it answers. The ring signs a span's root; any member can
   * relabel one leaf of it (the statement of some other update) with this client's key and nonce,
   * which are not signed. With a binding, a certificate counts only if its statement's key equals
   * the operation's (for Pond updates: the update digest both carry; the ring executes an update
   * once, so one certified statement carries it). Keys are compared as bytes; null = no key (the
   * certificate is refused). Without a binding any certified statement is taken (services whose
   * statements do not name their operation).
   */
  readonly certificateBinding?: {
    operationKey(operation: Uint8Array): Uint8Array | null;
    statementKey(statement: Uint8Array): Uint8Array | null;
  };
  /**
   * As ReplicaConfig.channelIntegrity, for the channels from each member to this client: a reply
   * that arrives from the member it names counts without a signature check (replicas on such a
   * host send them unsigned). Off by default: every reply must carry a valid signature.
   */
  readonly channelIntegrity?: boolean;
  /**
   * A floor for each request's nonce, read as it is sent (the SDK: the clock in microseconds).
   * Several clients with one key (an app and a CLI call sharing an identity) then each send above
   * what the others sent before: replicas ignore a request at or below the last nonce they
   * executed for the key, and a client opened earlier went on below a later one's nonces with no
   * answer for good. With a floor, `nextNonce` is only a lower bound.
   */
  readonly nonceFloor?: () => number;
}

export function checkRingShape(members: readonly RingMember[], f: number): void {
  checkArgument(Number.isSafeInteger(f) && f >= 1, 'f', 'an integer >= 1');
  checkArgument(members.length === 3 * f + 1, 'members', `exactly 3f+1 = ${3 * f + 1} members`);
  const ids = new Set(members.map((m) => m.id));
  checkArgument(ids.size === members.length, 'members', 'distinct ids');
}

export function resolveParameters(p: Partial<ProtocolParameters> | undefined): ProtocolParameters {
  const out = { ...defaultProtocolParameters, ...p };
  checkArgument(out.batchSizeMax >= 1, 'batchSizeMax', '>= 1');
  checkArgument(out.pipelineDepthMax >= 1, 'pipelineDepthMax', '>= 1');
  checkArgument(out.checkpointInterval >= 1, 'checkpointInterval', '>= 1');
  checkArgument(
    out.watermarkWindow >= 2 * out.checkpointInterval && out.watermarkWindow % out.checkpointInterval === 0,
    'watermarkWindow',
    'a multiple of checkpointInterval, at least twice it',
  );
  checkArgument(out.certifyIntervalMs >= 0 && out.certifyTakeoverMs > 0, 'certifyIntervalMs, certifyTakeoverMs', '>= 0 and > 0');
  checkArgument(out.timestampAheadMaxMs >= 0, 'timestampAheadMaxMs', '>= 0');
  // 0 would refuse every batch that took a millisecond to arrive.
  checkArgument(out.timestampBehindMaxMs > 0, 'timestampBehindMaxMs', '> 0');
  assert(out.requestTimeoutMs > 0 && out.viewChangeTimeoutMs > 0 && out.statusIntervalMs > 0, 'timeouts are positive');
  return out;
}

/** Quorum sizes for n = 3f+1 (Castro & Liskov §4.2). */
export const quorum = (f: number): number => 2 * f + 1;
export const primaryOf = (view: number, n: number): number => view % n;
