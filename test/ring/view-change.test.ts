/**
 * Scripted view-change interactions (Castro & Liskov TOCS'02 §4.4–4.5), printing the message trace
 * (status, reply, share and certificate lines left out) in the style of etcd-raft's interaction tests.
 */
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { buildCluster, secretKeyFor, type Cluster } from '../../ring/sim-cluster.ts';
import { byzantineInterceptor } from '../../ring/sim-faults.ts';

const quiet = /: (status|reply|share|certificate) /;
const parameters = { checkpointInterval: 4, watermarkWindow: 16, requestTimeoutMs: 200, viewChangeTimeoutMs: 300, statusIntervalMs: 50 };

function scripted(title: string, seed: number): { cluster: Cluster; trace: string[]; print: () => void } {
  const trace: string[] = [];
  const cluster = buildCluster({
    seed,
    f: 1,
    clientCount: 2,
    crypto: fakeCrypto,
    parameters,
    network: { delayMsMin: 1, delayMsMax: 2 },
    trace: (line) => {
      if (!quiet.test(line)) trace.push(line);
    },
  });
  return { cluster, trace, print: () => console.log(`--- ${title}\n${trace.join('\n')}`) };
}

const op = (c: Cluster, client: number, name: string): Uint8Array =>
  kvOperation(kvKeyFor(c.clientSigners[client]!.publicKey, name), -1, new TextEncoder().encode(name));

describe('view change', () => {
  it('replaces a crashed primary: backups time out, the new primary gathers 2f+1 view changes, the request executes in view 1', () => {
    const { cluster: c, trace, print } = scripted('primary crash', 11);
    c.submit(0, op(c, 0, 'before'));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 1_000)).toBe(true);
    trace.push('### crash ring-0 (primary of view 0)');
    c.sim.crash('ring-0');
    c.submit(0, op(c, 0, 'after'));
    expect(c.sim.runUntil(() => c.completed[0] === 2, 5_000)).toBe(true);
    print();
    for (const i of [1, 2, 3]) {
      expect(c.replica(i)!.view).toBe(1);
      expect(c.replica(i)!.viewActive).toBe(true);
      expect(c.replica(i)!.lastExecuted).toBe(c.replica(1)!.lastExecuted);
    }
    const text = trace.join('\n');
    expect(text).toMatch(/ring-2 -> ring-1: view-change v=1/);
    expect(text).toMatch(/ring-1 -> ring-2: new-view v=1/);
    // The restarted old primary learns the new view from its peers' status answers.
    c.sim.restart('ring-0');
    expect(c.sim.runUntil(() => c.replica(0)!.view === 1 && c.replica(0)!.viewActive, 2_000)).toBe(true);
  });

  it('survives an equivocating primary: conflicting pre-prepares never commit two batches at one seq, a view change follows', () => {
    const { cluster: c, trace, print } = scripted('equivocating primary', 12);
    const signer = signerOf(fakeCrypto, secretKeyFor(fakeCrypto, 12, 'replica', 0));
    c.sim.setInterceptor('ring-0', byzantineInterceptor(['equivocate'], fakeCrypto, signer));
    c.byzantine.add(0);
    for (let k = 0; k < 3; k++) {
      c.submit(0, op(c, 0, `a${k}`));
      c.submit(1, op(c, 1, `b${k}`));
    }
    expect(c.sim.runUntil(() => c.completed[0] === 3 && c.completed[1] === 3, 10_000)).toBe(true);
    print();
    expect(c.replica(1)!.view).toBeGreaterThanOrEqual(1);
    expect(trace.join('\n')).toMatch(/new-view v=1/);
    // The checkers (ring/sim-cluster.ts) already assert that correct replicas agree at each seq; restate it.
    const seqs = [1, 2, 3].map((i) => c.replica(i)!.lastExecuted);
    expect(new Set(seqs).size).toBe(1);
    expect(c.replica(1)!.drops.get('conflicting-pre-prepare') ?? 0).toBeGreaterThanOrEqual(0);
  });

  it('carries a prepared batch into the new view (TOCS\'02 §4.5.2: the new primary re-proposes the highest-view prepared proof)', () => {
    const { cluster: c, print } = scripted('prepared batch survives', 13);
    c.submit(0, op(c, 0, 'x'));
    // Let the pre-prepare and prepares through, then cut the primary off before commits complete everywhere.
    c.sim.runUntil(() => [1, 2, 3].every((i) => c.replica(i)!.slots.get(1)?.prepared !== null && c.replica(i)!.slots.get(1)?.prepared !== undefined), 1_000);
    c.sim.crash('ring-0');
    expect(c.sim.runUntil(() => c.completed[0] === 1, 5_000)).toBe(true);
    print();
    expect(c.executedDigests.get(1)).toBeDefined();
    for (const i of [1, 2, 3]) expect(c.replica(i)!.lastExecuted).toBeGreaterThanOrEqual(1);
    expect(c.replica(1)!.lastExecuted).toBeGreaterThanOrEqual(1);
  });
});

describe('request timer (TOCS\'02 §4.5.2)', () => {
  const backlogParameters = { batchSizeMax: 1, pipelineDepthMax: 1, requestTimeoutMs: 150, viewChangeTimeoutMs: 300 };

  it('a replica alone in a higher view waits there (no timer without 2f+1 at that view or later), and the others reach it when they change view', () => {
    const { cluster: c, trace, print } = scripted('lone replica', 13);
    c.submit(0, op(c, 0, 'before'));
    expect(c.sim.runUntil(() => c.completed[0] === 1, 1_000)).toBe(true);
    // ring-3 hears the clients but none of its peers: its request timer fires and it changes view alone.
    trace.push('### partition ring-3 from its peers for 10 s');
    const peers = ['ring-0', 'ring-1', 'ring-2', 'ring-3'];
    const cut = (from: string) => c.sim.setInterceptor(from, (m, to) => ((from === 'ring-3') !== (to === 'ring-3') && peers.includes(to) ? [] : [m]));
    for (const id of peers) cut(id);
    // The client's request reaches ring-3 too (as a retransmission to every replica would).
    const send = c.sim.send.bind(c.sim);
    c.sim.send = (from, to, m) => {
      send(from, to, m);
      if (m.kind === 'request' && to !== 'ring-3') send(from, 'ring-3', m);
    };
    c.submit(0, op(c, 0, 'during'));
    c.sim.send = send;
    c.sim.runFor(10_000);
    expect(c.completed[0]).toBe(2);
    // Before TOCS'02's first rule it climbed a view per (doubling) timeout: view 5 by now.
    expect(c.replica(3)!.view).toBe(1);
    expect(c.replica(3)!.viewActive).toBe(false);
    for (const id of peers) c.sim.setInterceptor(id, null);
    trace.push('### heal; crash ring-0 (primary of view 0)');
    c.sim.crash('ring-0');
    c.submit(0, op(c, 0, 'after'));
    // ring-1 (primary of view 1) gathers the others' view changes with ring-3's: view 1 at once.
    expect(c.sim.runUntil(() => c.completed[0] === 3, 3_000), `views ${[1, 2, 3].map((i) => c.replica(i)!.view)}`).toBe(true);
    print();
    for (const i of [1, 2, 3]) expect(c.replica(i)!.view).toBe(1);
  });

  it('a backlog that drains (in any order) for far longer than the request timeout causes no view change', () => {
    // 24 clients, one request per batch, one batch in flight, 5–10 ms links: ~20 ms per request,
    // ~0.5 s to drain, while every client re-sends to all replicas (so backups wait on all of them,
    // in their own arrival order, not the primary's).
    const c = buildCluster({ seed: 21, f: 1, clientCount: 24, crypto: fakeCrypto, parameters: backlogParameters, network: { delayMsMin: 5, delayMsMax: 10 } });
    for (let i = 0; i < 24; i++) c.submit(i, op(c, i, `q${i}`));
    expect(c.sim.runUntil(() => c.completed.every((k) => k === 1), 10_000)).toBe(true);
    expect(c.sim.nowMs).toBeGreaterThan(3 * backlogParameters.requestTimeoutMs);
    expect(c.replica(1)!.pending.size + c.replica(2)!.pending.size).toBe(0);
    expect(c.events.viewChanges).toBe(0);
  });
});
