/**
 * Edge cases of a new view and of pre-prepares kept past the vote ceiling (Replica.voteCeiling),
 * each found by a review of the ninth session's ring changes and failing before its fix.
 */
import { describe, expect, it } from 'vitest';
import { aguidOf } from '../../core/crypto.ts';
import { toHex } from '../../core/bytes.ts';
import { encodeUpdate } from '../../core/update/update-codec.ts';
import { signUpdate } from '../../core/update/update-signature.ts';
import { bguidOf } from '../../core/version/block.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { buildCluster } from '../../ring/sim-cluster.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

describe('a new primary behind in stable checkpoint', () => {
  // ring-1 misses every checkpoint, then becomes primary of view 1; installing the view makes the
  // others' stable checkpoint its own. It must not propose on its own in the middle of that: with
  // a heartbeat or a fill batch due it used to send a batch at the next seq, then reset nextSeq
  // and send a second digest for the same (view, seq).
  for (const [heartbeatIntervalMs, fill] of [[40, false], [0, true]] as const) {
    it(`sends one digest per (view, seq) (${fill ? 'fill batches due' : 'heartbeats due'})`, () => {
      const c = buildCluster({
        seed: 3, f: 1, clientCount: 2, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 },
        parameters: { checkpointInterval: 2, watermarkWindow: 8, pipelineDepthMax: 4, batchSizeMax: 1, heartbeatIntervalMs, requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 },
      });
      // As if a member switch were pending at ring-1 (the composite's agreementLimit), far ahead.
      if (fill) (c.replica(1)!.config as { agreementLimit?: () => number }).agreementLimit = () => 1_000_000;
      const digests = new Map<string, string>();
      const twice: string[] = [];
      let blockCheckpoints = true;
      for (let i = 0; i < 4; i++) {
        c.sim.setInterceptor(`ring-${i}`, (m, to) => {
          if (blockCheckpoints && to === 'ring-1' && (m.kind === 'checkpoint' || m.kind === 'checkpoint-proof')) return [];
          for (const pp of m.kind === 'pre-prepare' ? [m] : m.kind === 'new-view' ? m.prePrepares : []) {
            if (pp.replica !== i) continue;
            const key = `ring-${i} v${pp.view} s${pp.seq}`;
            const held = digests.get(key);
            if (held === undefined) digests.set(key, toHex(pp.digest));
            else if (held !== toHex(pp.digest)) twice.push(key);
          }
          return [m];
        });
      }
      const op = (i: number, n: string) => kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, n), -1, new TextEncoder().encode(n));
      for (let k = 0; k < 4; k++) {
        c.submit(0, op(0, `a${k}`));
        expect(c.sim.runUntil(() => c.completed[0] === k + 1, 2_000)).toBe(true);
      }
      c.sim.runFor(30);
      expect(c.replica(1)!.stableSeq).toBeLessThan(c.replica(2)!.stableSeq);
      c.sim.crash('ring-0');
      c.submit(0, op(0, 'x'));
      c.submit(1, op(1, 'y'));
      expect(c.sim.runUntil(() => c.replica(1)!.view === 1 && c.replica(1)!.viewActive, 3_000)).toBe(true);
      blockCheckpoints = false;
      expect(c.sim.runUntil(() => c.completed[0] === 5 && c.completed[1] === 1, 5_000)).toBe(true);
      expect(twice).toEqual([]);
    });
  }
});

describe('pre-prepares kept past the vote ceiling', () => {
  it("a forged pre-prepare (from a client) does not displace the new primary's own kept re-proposal", () => {
    const c = buildCluster({
      seed: 7, f: 1, clientCount: 4, crypto: fakeCrypto, network: { delayMsMin: 1, delayMsMax: 2 },
      parameters: { checkpointInterval: 2, watermarkWindow: 16, pipelineDepthMax: 4, batchSizeMax: 1, requestTimeoutMs: 300, viewChangeTimeoutMs: 400, statusIntervalMs: 50 },
    });
    // ring-1 hears no agreement and no state, so it falls far behind in execution.
    let isolate = true;
    let blockCommits = false;
    const cut = new Set(['commit', 'commit-proof', 'checkpoint', 'checkpoint-proof', 'state-reply', 'pre-prepare']);
    for (let i = 0; i < 4; i++) {
      c.sim.setInterceptor(`ring-${i}`, (m: RingMessage, to) => ((isolate && to === 'ring-1' && cut.has(m.kind)) || (blockCommits && m.kind === 'commit') ? [] : [m]));
    }
    const op = (i: number, n: string) => kvOperation(kvKeyFor(c.clientSigners[i]!.publicKey, n), -1, new TextEncoder().encode(n));
    for (let k = 0; k < 8; k++) {
      c.submit(0, op(0, `a${k}`));
      expect(c.sim.runUntil(() => c.completed[0] === k + 1, 3_000)).toBe(true);
    }
    // Two more get prepared but not committed; then the primary crashes and ring-1 takes over.
    blockCommits = true;
    c.submit(1, op(1, 'x'));
    c.submit(2, op(2, 'y'));
    c.sim.runFor(20);
    c.sim.crash('ring-0');
    blockCommits = false;
    expect(c.sim.runUntil(() => c.replica(1)!.view === 1 && c.replica(1)!.viewActive, 5_000)).toBe(true);
    const ring1 = c.replica(1)!;
    const kept = [...ring1.agreementState.parked.keys()];
    expect(kept.length).toBeGreaterThan(0); // its own re-proposals, past its ceiling
    for (const seq of kept) {
      c.sim.send('client-3', 'ring-1', {
        kind: 'pre-prepare', view: 1, seq, digest: new Uint8Array(32), replica: 1, signature: new Uint8Array(64),
        batch: { timestampMs: 0, heartbeat: false, requests: [] },
      } as RingMessage);
    }
    c.sim.runFor(10);
    isolate = false;
    // Before the fix the forgeries replaced them, failed when taken up, and nobody resent them:
    // view 1 never completed the two writes and the ring moved on to view 2.
    expect(c.sim.runUntil(() => c.completed[1] === 1 && c.completed[2] === 1, 10_000)).toBe(true);
    expect([1, 2, 3].map((i) => c.replica(i)!.view)).toEqual([1, 1, 1]);
  });
});

describe('an idle primary with a request whose blocks have not arrived', () => {
  it('waits for the blocks instead of looping (a client could hang each primary in turn)', () => {
    const c = buildCluster({ seed: 32, f: 1, clientCount: 1, crypto: fakeCrypto, service: 'object', network: { delayMsMin: 1, delayMsMax: 2 } });
    const w = c.clientSigners[0]!;
    const update = (nonce: number, clauses: unknown[]) =>
      encodeUpdate(signUpdate(c.crypto, w, { aguid: aguidOf(c.crypto, w.publicKey, 'big'), writerPublicKey: w.publicKey, nonce, clauses } as never));
    c.submit(0, update(1, [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'create', name: 'big', blockBytes: 4096, fanoutMax: 8, writerPublicKeys: [] }] }]));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
    // Bounded: the loop asked the service for the missing blocks without end.
    const service = c.replica(0)!.service as { blocksNeeded: (operation: Uint8Array) => Uint8Array[] };
    const blocksNeeded = service.blocksNeeded.bind(service);
    let calls = 0;
    service.blocksNeeded = (operation) => {
      if (++calls > 10_000) throw new Error('the primary loops over a request whose blocks are missing');
      return blocksNeeded(operation);
    };
    const bguid = bguidOf(c.crypto, 'data', new Uint8Array(4096).fill(7)); // never uploaded
    c.submit(0, update(2, [{ predicates: [{ kind: 'always' }], actions: [{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid, length: 4096 }] }] }]));
    c.sim.runFor(500);
    expect(calls).toBeLessThan(10_000);
    expect(c.completed[0]).toBe(1);
  });
});
