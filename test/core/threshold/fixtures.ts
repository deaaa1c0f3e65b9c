/** Shared fixtures for the threshold tests: deterministic keys and statements. */
import { Prng } from '../../../sim/prng.ts';
import { dealRingKey, type CertificateStatement, type DealtRingKey, type HeartbeatStatement } from '../../../core/threshold/index.ts';

const keys = new Map<string, DealtRingKey>();

/** Dealing costs a few G2 multiplications per share: cache by (seed, n, t) across tests. */
export function ringKey(seed: number, n: number, t: number): DealtRingKey {
  const id = `${seed}/${n}/${t}`;
  let key = keys.get(id);
  if (!key) keys.set(id, (key = dealRingKey(new Prng(seed), n, t)));
  return key;
}

export const ringId = new Uint8Array(32).fill(0xa1);

export function filled(byte: number, length = 32): Uint8Array {
  return new Uint8Array(length).fill(byte);
}

export function statement(version: number, overrides: Partial<CertificateStatement> = {}): CertificateStatement {
  return {
    ringId,
    aguid: filled(1),
    version,
    vguid: filled(100 + (version % 100)),
    rootFragmentRoot: filled(2),
    updateDigest: filled(3),
    outcome: 'commit',
    timestampMs: 1_700_000_000_000 + version,
    ...overrides,
  };
}

export function heartbeatStatement(version: number, timestampMs: number): HeartbeatStatement {
  return { ringId, aguid: filled(1), version, vguid: filled(100 + (version % 100)), timestampMs };
}
