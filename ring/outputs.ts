/** What ring cores report to their host: for checkers, metrics, and the client's caller. */

export interface ExecutedRequest {
  readonly clientKeyHex: string;
  readonly nonce: number;
  readonly requestDigestHex: string;
  /** 'replay': ordered again (a retransmission or reused nonce) and refused without executing. */
  readonly outcome: 'executed' | 'replay';
}

export type ReplicaOutput =
  | { kind: 'executed'; replica: number; seq: number; view: number; digestHex: string; requests: readonly ExecutedRequest[] }
  | { kind: 'certificate'; replica: number; seq: number; root: Uint8Array; signature: Uint8Array; statements: readonly Uint8Array[] }
  | { kind: 'bad-share'; replica: number; sender: number; seq: number }
  | { kind: 'view-change-started'; replica: number; view: number }
  | { kind: 'view-installed'; replica: number; view: number }
  | { kind: 'checkpoint-stable'; replica: number; seq: number; digestHex: string }
  | { kind: 'state-transferred'; replica: number; seq: number }
  /**
   * With ReplicaConfig.certificateChecks 'host': check `signature` on `message` under the ring's
   * public key (a pairing), off the step, and answer with Replica.onCertificateChecked(token, ...).
   */
  | { kind: 'certificate-check'; replica: number; token: object; message: Uint8Array; signature: Uint8Array };

export type ClientOutput =
  | { kind: 'completed'; clientKeyHex: string; nonce: number; seq: number; result: Uint8Array; latencyMs: number }
  | { kind: 'certified'; clientKeyHex: string; nonce: number; seq: number; statement: Uint8Array; latencyMs: number };

export type RingOutput = ReplicaOutput | ClientOutput;
