/** A simulated object ring for the batch-timestamp tests: heartbeats every 200 ms, ring-1's certified heartbeat times recorded. */
import { expect } from 'vitest';
import { decode } from '../../core/codec.ts';
import { aguidOf, type Signer } from '../../core/crypto.ts';
import { heartbeatStatementFromTuple, statementKindOf } from '../../core/threshold/statements.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import type { Clause } from '../../core/update/update.ts';
import type { ProtocolParameters } from '../../ring/config.ts';
import { buildCluster, type Cluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

export function update(c: Cluster, w: Signer, nonce: number, name: string, clauses: Clause[]): Uint8Array {
  return encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, name), writerPublicKey: w.publicKey, nonce, clauses }));
}

export const create = (name: string): Clause[] => [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name, blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }];

/** The ring, after client 0 created 'o'; heartbeatTimes fills as ring-1 certifies heartbeats. */
export function objectRing(seed: number, parameters: Partial<ProtocolParameters>): { c: Cluster; heartbeatTimes: number[] } {
  const c = buildCluster({ seed, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', parameters: { heartbeatIntervalMs: 200, ...parameters }, network: { delayMsMin: 1, delayMsMax: 2 } });
  const heartbeatTimes: number[] = [];
  c.sim.onOutput((node, event) => {
    if (event.kind !== 'certificate' || node !== 'ring-1') return;
    for (const s of event.statements) {
      const v = decode(s, 4096);
      if (statementKindOf(v) === 'heartbeat') heartbeatTimes.push(heartbeatStatementFromTuple(v).timestampMs);
    }
  });
  c.submit(0, update(c, c.clientSigners[0]!, 1, 'o', create('o')));
  expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
  return { c, heartbeatTimes };
}
