/**
 * The Tapestry wire messages (one union) and the events the core reports to its host. Ids are
 * hex strings here; the codec (codec.ts) turns them into 20 raw bytes on the wire.
 */
import type { NodeRef, TapestryId } from './id.ts';

/** Routed messages carry `level` (digits resolved so far) and `hops` (bounded by hopsMax). */
export type TapestryMessage =
  /** Round-trip probe: beacons, proximity measurement, and "here I am" to a new contact. */
  /**
   * `holding` (beacons only): the sender holds the receiver in its table, so the receiver records
   * it as a backpointer if it has none (a node restarted under its old id, or one that dropped it
   * while either of them was silent). Absent on probes and measurements.
   */
  | { kind: 'ping'; sender: NodeRef; sentAtMs: number; holding?: true }
  | { kind: 'pong'; sender: NodeRef; sentAtMs: number }
  /** The sender holds us in its routing table (add) or no longer does (remove). */
  | { kind: 'backpointer'; sender: NodeRef; add: boolean }
  /** Route to the root of `targetId`; the root answers the origin with routeReply. */
  | { kind: 'route'; requestId: number; origin: NodeRef; targetId: TapestryId; level: number; hops: number }
  | { kind: 'routeReply'; requestId: number; targetId: TapestryId; root: NodeRef; hops: number }
  /**
   * Leave (`publish`) or remove an (object -> server) pointer at every hop to the root: `unpublish`
   * is the server's own withdrawal, `retract` a hop's report that the server failed (it carries
   * the publish statement it retracts). A sideCopy goes to the backups of each hop's slot and is
   * stored, not forwarded (JSAC 2004 §3.3 "publish to backups": a nearby client's first hops then
   * find the pointer sooner).
   */
  | {
      kind: 'publish';
      objectId: TapestryId;
      server: NodeRef;
      level: number;
      hops: number;
      op: PublishOp;
      /**
       * When the server signed its statement (its clock): the pointer's age at every hop, so copies
       * never outlive the original; for a retraction, the statement retracted.
       */
      issuedAtMs: number;
      /** The server's signature of the statement (pointer-auth.ts); empty where nodes run unsigned. */
      signature: Uint8Array;
      sideCopy: boolean;
    }
  /** Route toward the object's root, stopping at the first node with a pointer. */
  | { kind: 'locate'; requestId: number; origin: NodeRef; objectId: TapestryId; level: number; hops: number }
  | {
      kind: 'locateReply';
      requestId: number;
      objectId: TapestryId;
      /** The chosen holder, or null if the root had no pointer. */
      server: NodeRef | null;
      /** The holder's signed publish statement (0 and empty without a holder or unsigned). */
      issuedAtMs: number;
      signature: Uint8Array;
      /** Where the pointer was found (the root when not found). */
      answeredBy: NodeRef;
      hops: number;
    }
  /** A new node routes toward its own id; each hop sends it rows, the root starts the multicast. */
  | { kind: 'joinRequest'; joiner: NodeRef; level: number; hops: number }
  /** Candidate neighbours for the receiver (it pings them to measure and place them). */
  | { kind: 'candidates'; nodes: NodeRef[] }
  /**
   * Acknowledged multicast to every node sharing `rootPrefixLength` digits with the joiner (the
   * root's): each receiver learns the joiner, forwards to one node per sub-prefix and acks its
   * parent (`sender`) when its subtree has acked. `prefixLength` is one more than the digits the
   * sender shares with the receiver (the receiver forwards at longer prefixes only).
   */
  | { kind: 'multicast'; sender: NodeRef; joiner: NodeRef; prefixLength: number; rootPrefixLength: number }
  | { kind: 'multicastAck'; joinerId: TapestryId }
  /** The join's root tells the joiner its multicast finished; the nearest-neighbour search starts. */
  | { kind: 'joinDone'; prefixLength: number }
  /** Asks for our row `level` and backpointers at `level` (nearest-neighbour search, repair). */
  | { kind: 'neighbourQuery'; level: number }
  /** Graceful leave: drop me; `replacements` are nodes of my row at our shared level. */
  | { kind: 'leaving'; sender: NodeRef; replacements: NodeRef[] }
  /**
   * From a client (not an overlay member): locate `objectId` on my behalf. Answered with
   * lookupReply by the node it was sent to (tapestry/service.ts); overlay nodes never forward it.
   */
  | { kind: 'lookup'; requestId: number; objectId: TapestryId }
  | {
      kind: 'lookupReply';
      requestId: number;
      objectId: TapestryId;
      /** The nearest holder found, or null (no pointer at the root, or no answer in time). */
      server: NodeRef | null;
      /** The holder's signed publish statement, for the client to check (0 and empty without one). */
      issuedAtMs: number;
      signature: Uint8Array;
      hops: number;
      /** False when the overlay gave no answer within requestTimeoutMs (or the node was busy). */
      answered: boolean;
    };

export type PublishOp = 'publish' | 'unpublish' | 'retract';

export type TapestryMessageKind = TapestryMessage['kind'];

export type TapestryOutput =
  | { kind: 'routeResult'; requestId: number; targetId: TapestryId; root: NodeRef | null; hops: number }
  | {
      kind: 'locateResult';
      requestId: number;
      objectId: TapestryId;
      server: NodeRef | null;
      /** The holder's signed publish statement (0 and empty without a holder or unsigned). */
      issuedAtMs: number;
      signature: Uint8Array;
      answeredBy: NodeRef | null;
      hops: number;
      /** False when no answer came within requestTimeoutMs. */
      answered: boolean;
    }
  /** The join finished: multicast acknowledged and nearest-neighbour search done. */
  | { kind: 'joined'; neighbourCount: number }
  | { kind: 'neighbourFailed'; neighbour: NodeRef };

/** Counters a host exports as metrics. */
export interface TapestryStats {
  messagesHandled: number;
  /** Input dropped: spoofed identity, unexpected reply, hop limit, stale pointer, full store. */
  dropped: number;
  neighboursFailed: number;
  pointersForwarded: number;
  /** Pointers dropped because their server failed (detected here or retracted from below). */
  pointersRetracted: number;
  /**
   * New pointers a full store refused (their server at its quota, pointer-store.ts). The publish
   * still goes on toward the root; a steady rise means pointersMax is too small for this node.
   */
  pointersRefused: number;
}

/** Limits every decoder and handler enforces. */
export const listCountMax = 256;
export const nameLengthMax = 256;
export const messageBytesMax = 64 * 1024;
