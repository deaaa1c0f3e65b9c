/**
 * A certifier skips statements only on evidence (ring/replica-certificates.ts nextStart): a round
 * that stalls because shares are slow keeps its start however long they take, even while a
 * replica that restarted without its statements or a Byzantine one refuses; once all but f others
 * answered (shares or refusals) without f+1 shares, the certifier skips to where f of them can
 * sign and certifies again.
 */
import { describe, expect, it } from 'vitest';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster, restartWithoutStatements } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { holdersOnly } from './uncertified-writes.ts';

type Cluster = ReturnType<typeof buildCluster>;
const writes = 6;

function submit(c: Cluster, first: number): void {
  for (let i = 0; i < c.clientSigners.length; i++) {
    for (let k = first; k < first + writes; k++) c.submit(i, kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, `k${k}`), -1, Uint8Array.of(k)));
  }
}

/**
 * Six certified writes per client; then six more while no replica's share gets through (and
 * `refuser`, if any, sends a refusal under a floor far ahead instead, as a Byzantine replica may);
 * ring-2 restarts if `restart`, without its statement records (as after a state transfer), so it
 * refuses too; `blockMs` later the
 * shares flow again, and six more writes follow. Returns each client's certificates.
 */
function run(options: { restart: boolean; refuser?: number; blockMs: number }): number[] {
  const c = buildCluster({ seed: 5, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 3 } });
  let blocking = false;
  c.replicaIds.forEach((id, i) => {
    c.sim.setInterceptor(id, (m): RingMessage[] => {
      // The refuser runs no certificate rounds of its own either (it would take over as a holder).
      if (i === options.refuser && m.kind === 'sign-request') return [];
      if (m.kind !== 'share') return [m];
      if (i === options.refuser) return [{ kind: 'share-refused', to: m.seq, floor: 1_000_000, replica: i }];
      return blocking ? [] : [m];
    });
  });
  submit(c, 0);
  expect(c.sim.runUntil(() => c.certified.every((n) => n === writes), 10_000)).toBe(true);
  blocking = true;
  submit(c, 100);
  expect(c.sim.runUntil(() => c.completed.every((n) => n === 2 * writes), 10_000)).toBe(true);
  if (options.restart) restartWithoutStatements(c, 2);
  c.sim.runFor(options.blockMs);
  blocking = false;
  submit(c, 200);
  c.sim.runUntil(() => c.completed.every((n) => n === 3 * writes) && c.certified.every((n) => n === 3 * writes), 15_000);
  expect(c.completed).toEqual([3 * writes, 3 * writes]);
  return [...c.certified];
}

describe('certificate rounds skip statements only on evidence', () => {
  it('no share for four takeover periods while one replica refuses (restarted, or Byzantine): every write is still certified', () => {
    expect(run({ restart: true, blockMs: 4_000 })).toEqual([18, 18]);
    expect(run({ restart: false, refuser: 3, blockMs: 4_000 })).toEqual([18, 18]);
  });

  it('all but f others refuse (one restarted, one Byzantine) and the last is silent: the certifier skips and certifies what follows', () => {
    const certified = run({ restart: true, refuser: 3, blockMs: 4_000 });
    // The writes ring-2 lost were held by the certifier, silent ring-1 and lying ring-3 only: given
    // up after a stalled round. Those after ring-2's restart are certified.
    expect(certified.every((n) => n >= 2 * writes && n < 3 * writes)).toBe(true);
  });

  it('a round whose skip rests on all but f answers asks the silent ones once more first: a lost request costs no certificate', () => {
    // The first writes are never certified, so the silent holder takes over as the partition
    // heals: the one request its round sends the other holder before widening may be lost, and
    // the certifiers refuse.
    const { c, write } = holdersOnly(0);
    for (let k = 3; k < 6; k++) {
      write(k);
      c.sim.runFor(300);
    }
    expect(c.sim.runUntil(() => c.certified.every((n) => n === 6), 15_000)).toBe(true);
  });
});
