/** What ring cores report to their host: for checkers, metrics, and the client's caller. */
import type { KeyShare } from '../core/threshold/dealer.ts';
import type { IndexedShare } from './certificate-signer.ts';

export interface ExecutedRequest {
  readonly clientKeyHex: string;
  readonly nonce: number;
  readonly requestDigestHex: string;
  /** 'replay': ordered again (a retransmission or reused nonce) and refused without executing. */
  readonly outcome: 'executed' | 'replay';
}

export type ReplicaOutput =
  | { kind: 'executed'; replica: number; seq: number; view: number; digestHex: string; requests: readonly ExecutedRequest[] }
  | {
      kind: 'certificate';
      replica: number;
      seq: number;
      root: Uint8Array;
      signature: Uint8Array;
      statements: readonly Uint8Array[];
      /**
       * The members (ids) that certify in this replica's view, rank 0 first: in the normal case
       * they are the ones that learn this certificate, so a host can tell which peers got it too
       * (the archiver ranks them first, runtime/object-roles.ts).
       */
      certifiers: readonly string[];
    }
  | { kind: 'bad-share'; replica: number; sender: number; seq: number }
  | { kind: 'view-change-started'; replica: number; view: number }
  | { kind: 'view-installed'; replica: number; view: number }
  | { kind: 'checkpoint-stable'; replica: number; seq: number; digestHex: string }
  | { kind: 'state-transferred'; replica: number; seq: number }
  /**
   * With ReplicaConfig.certificateWork 'host': certificate cryptography for the host to run off
   * the step (runtime/certificate-thread.ts), answered with Replica.onCertificateWork(token, ...).
   * `run` does it here, as the replica's own signer and verifier would (a host without a thread, or
   * whose thread failed); `threadable` says the work is threshold BLS a thread may do instead.
   */
  | { kind: 'certificate-work'; replica: number; token: object; work: CertificateWork; threadable: boolean; run(): CertificateWorkResult };

/** Certificate cryptography a replica hands its host. */
export type CertificateWork =
  /** Is `signature` the ring's signature over `message`? (A pairing.) */
  | { readonly op: 'check'; readonly message: Uint8Array; readonly signature: Uint8Array }
  /** This replica's share over `message` with `keyShare` (null: only `run` knows what to answer). */
  | { readonly op: 'share'; readonly message: Uint8Array; readonly keyShare: KeyShare | null }
  /** The ring signature over `message` combined from exactly f+1 `shares`, then checked (a pairing). */
  | { readonly op: 'combine'; readonly message: Uint8Array; readonly shares: readonly IndexedShare[] };

/** 'check': `valid`; 'share': the share in `signature`; 'combine': the combined `signature` and whether it is `valid`. */
export interface CertificateWorkResult {
  readonly valid: boolean;
  readonly signature: Uint8Array | null;
}

export type ClientOutput =
  | { kind: 'completed'; clientKeyHex: string; nonce: number; seq: number; result: Uint8Array; latencyMs: number }
  | { kind: 'certified'; clientKeyHex: string; nonce: number; seq: number; statement: Uint8Array; latencyMs: number };

export type RingOutput = ReplicaOutput | ClientOutput;
