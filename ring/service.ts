/**
 * The replicated service a ring executes: deterministic, with a digest-able snapshot for
 * checkpoints and state transfer. The object service (ring/object-service.ts) executes Pond
 * updates; ring/kv-service.ts is a small versioned key-value service for protocol tests.
 */
import type { BlockKind } from '../core/version/block.ts';

export interface ExecutionContext {
  readonly seq: number;
  /** Agreed timestamp of the batch (non-decreasing across batches). */
  readonly timestampMs: number;
  /** Position of the request in its batch. */
  readonly index: number;
}

export interface ExecutionResult {
  /** Bytes returned to the client inside the signed reply. */
  readonly result: Uint8Array;
  /**
   * Certificate statement for this request's outcome (DESIGN.md "Certificates"), threshold-signed
   * through the batch Merkle root; null when the outcome is not certified (e.g. a malformed operation).
   */
  readonly statement: Uint8Array | null;
}

export interface ReplicatedService {
  /**
   * Executes one ordered operation. Must be deterministic in (state, operation, clientKey,
   * context) and must not throw on bad operations (they are client input: return an error result).
   * Writes its durable state through the store it was built with.
   */
  execute(clientKey: Uint8Array, operation: Uint8Array, context: ExecutionContext): ExecutionResult;
  /** Statements re-issued by a heartbeat: the latest version of each object (bounded by the service, which may take a different share of them each `periodMs`). */
  heartbeatStatements(timestampMs: number, periodMs: number): Uint8Array[];
  /** Canonical bytes of the whole state: equal states give equal bytes. */
  snapshot(): Uint8Array;
  /** Replaces the state; false (state unchanged) if the bytes are not a snapshot. */
  restore(snapshot: Uint8Array): boolean;


  // Content-addressed blocks (optional: services whose operations carry everything inline skip them).

  /**
   * Blocks `operation` names that this replica lacks; it must not execute the operation without
   * them. With `limit` (a request the primary queues, asked about on arrival, once the blocks it
   * was found to lack have come, at its re-asks and when a batch takes it): at most that many, and
   * the blocks an earlier call found here may be taken as still here, so a request naming
   * thousands of absent blocks costs about `limit` lookups a call. Execution asks without.
   */
  blocksNeeded?(operation: Uint8Array, limit?: number): Uint8Array[];
  /**
   * Stored blocks found corrupt (and discarded) so far. One found while a batch executes stops the
   * replica (ring/replica-execution.ts): this replica read the block as absent while its peers
   * read it, so its result could differ from theirs.
   */
  corruptBlocksFound?(): number;
  /**
   * Requests a primary must not hold back while it serves others: a backup suspects the primary
   * once one has waited requestTimeoutMs, whatever executed meanwhile (other requests' progress
   * restarts the ordinary timer). Reconfiguration records race a phase deadline: a faulty primary
   * that served everyone else and held members' complaints back until the deadline was never
   * suspected (session-19 second review).
   */
  mustNotWait?(clientKey: Uint8Array, operation: Uint8Array): boolean;
  /** Blocks the current state reaches that are missing (after a state transfer); empty when complete. */
  missingStateBlocks?(): Uint8Array[];
  putBlock?(kind: BlockKind, bytes: Uint8Array): Uint8Array;
  getBlock?(bguid: Uint8Array): { kind: BlockKind; bytes: Uint8Array } | undefined;
}
