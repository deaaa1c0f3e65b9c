/**
 * Randomized reconfigurations in the simulator (issue 10), for a seeded sweep: a key refresh or a
 * member replacement ordered while a writer streams updates over a lossy, duplicating network,
 * with one node at a time crashed and restarted or cut off (any member, the spare, the primary,
 * the member being replaced), or one Byzantine node (ring/sim-faults.ts behaviours on its
 * messages, bad sub-shares as a dealer), which alone then also crashes or is cut off. Faults stay
 * within f = 1. After the fault phase the network heals and every node is up (a Byzantine one
 * keeps lying).
 *
 * Checked: correct replicas never execute different batches at one seq (after every event);
 * then, within bounds of virtual time, every write completes, the round is installed everywhere,
 * the members of the new epoch hold only their new share and execute past the boundary, the
 * replaced member holds no share; every completed write is certified to its writer, no
 * certificate the client was sent fails its check, and every certificate a combiner made
 * verifies under the unchanged ring public key in the epoch its batch header names.
 */
import type { RandomSource } from '../../core/machine.ts';
import { verifySignature } from '../../core/threshold/signing.ts';
import { batchSigningMessage } from '../../core/threshold/statements.ts';
import { kvKeyFor, kvOperation } from '../../ring/kv-service.ts';
import { signerOf } from '../../core/crypto.ts';
import type { DealerBehaviour } from '../../ring/reconfiguration-agent.ts';
import { byzantineBehaviours, byzantineInterceptor, type ByzantineBehaviour } from '../../ring/sim-faults.ts';
import { buildReconfigurationSim } from '../../ring/reconfiguration-sim.ts';
import { secretKeyFor, simRingId } from '../../ring/sim-cluster.ts';
import { Prng } from '../../sim/prng.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { subShareCipher } from '../../runtime/reconfiguration-cipher.ts';

const cipherFor = (secret: Uint8Array, random: RandomSource) => subShareCipher(secret, (n) => random.bytes(n));

export interface SweepResult {
  readonly seed: number;
  /** What the seed drew. */
  readonly plan: string;
  /** Null when every check held, else what failed and the state then. */
  readonly failure: string | null;
  /** A documented limit the run hit (not a failure), or null. */
  readonly limit: string | null;
}

/** One seed's run; never throws for a broken check (it is reported in `failure`). */
export function runReconfigurationSeed(seed: number): SweepResult {
  const rng = new Prng(seed).fork('reconfiguration-plan');
  const n = 4;
  const replace = rng.chance(0.5);
  const replaced = rng.int(n); // member index the spare replaces (replace only)
  const network = { delayMsMin: 1, delayMsMax: 2 + rng.int(7), lossRate: rng.chance(0.5) ? rng.float() * 0.06 : 0, duplicateRate: rng.chance(0.5) ? rng.float() * 0.03 : 0 };
  const nodes = replace ? [0, 1, 2, 3, 4] : [0, 1, 2, 3];
  // At most one faulty node at a time (f = 1): either one Byzantine node, which alone may also
  // crash or be cut off, or none, and then any one node at a time.
  const byzantine = rng.chance(0.4) ? nodes[rng.int(nodes.length)]! : -1;
  const behaviours: ByzantineBehaviour[] = byzantine < 0 ? [] : [rng.chance(0.2) ? 'false-prefix' : byzantineBehaviours[rng.int(byzantineBehaviours.length)]!];
  const liar = byzantine >= 0 && byzantine < n && rng.chance(0.5) ? byzantine : -1; // also deals bad sub-shares
  const dealers = new Map<number, DealerBehaviour>(liar >= 0 ? [[liar, 'bad-sub-shares']] : []);
  const faults: { kind: 'crash' | 'cut'; node: number; atMs: number; downMs: number }[] = [];
  let freeAtMs = 0;
  for (let k = 0; k < 3 && rng.chance(0.7); k++) {
    const node = byzantine >= 0 ? byzantine : nodes[rng.int(nodes.length)]!;
    const atMs = freeAtMs + rng.int(1500);
    const downMs = 200 + rng.int(3000);
    faults.push({ kind: rng.chance(0.3) ? 'cut' : 'crash', node, atMs, downMs });
    freeAtMs = atMs + downMs + 1;
  }
  const reconfigureAtMs = rng.int(1500);
  const name = (i: number): string => (i === n ? 'spare' : `ring-${i}`);
  const plan = [
    `${replace ? `replace ring-${replaced}` : 'refresh'} at ${reconfigureAtMs} ms`,
    `network ${JSON.stringify({ ...network, lossRate: +network.lossRate.toFixed(4), duplicateRate: +network.duplicateRate.toFixed(4) })}`,
    ...(byzantine >= 0 ? [`${name(byzantine)} Byzantine (${behaviours.join()}${liar >= 0 ? ', bad sub-shares' : ''})`] : []),
    `faults ${faults.map((c) => `${c.kind} ${name(c.node)}@${c.atMs}+${c.downMs}`).join(', ') || 'none'}`,
  ].join('; ');

  const s = buildReconfigurationSim({
    seed, f: 1, writerCount: 1, crypto: nodeCrypto, cipherFor, dealers, phaseMs: 1000,
    ...(replace ? { spare: true, spareReplaces: replaced } : {}),
    certificateWork: rng.chance(0.5) ? 'host' : 'inline',
    parameters: { checkpointInterval: 4, watermarkWindow: 16 },
    network,
  });
  const members = replace ? [0, 1, 2, 3, 4].filter((i) => i !== replaced) : [0, 1, 2, 3];
  const idOf = (i: number): string => (i === n ? s.spareMember!.id : s.members[i]!.id);
  if (byzantine >= 0) {
    const at = byzantine;
    s.sim.setInterceptor(idOf(at), byzantineInterceptor(behaviours, nodeCrypto, signerOf(nodeCrypto, secretKeyFor(nodeCrypto, seed, 'replica', at)), {
      replica: () => s.replica(at)?.replica ?? null,
      prefixRandom: new Prng(seed).fork('reconfiguration-false-prefix'),
    }));
  }
  const writer = s.writers[0]!;
  let queued = 0;
  const queue = (count: number): void => {
    for (let k = 0; k < count; k++, queued++) s.submit(0, kvOperation(kvKeyFor(writer.publicKey, `k${queued % 3}`), -1, new TextEncoder().encode(`v${queued}`)));
  };

  // Correct replicas agree (the Byzantine node runs the correct code, but its output is not trusted).
  const executed = new Map<number, string>();
  let safety: string | null = null;
  const certificates: { node: string; seq: number; epoch: number; leafCount: number; root: Uint8Array; signature: Uint8Array }[] = [];
  s.sim.onOutput((node, event) => {
    if (event.kind === 'certificate') {
      certificates.push({ node, seq: event.seq, epoch: event.epoch, leafCount: event.statements.length, root: event.root, signature: event.signature });
      return;
    }
    if (event.kind !== 'executed' || safety) return;
    if (byzantine >= 0 && node === idOf(byzantine)) return;
    const held = executed.get(event.seq);
    if (held !== undefined && held !== event.digestHex) safety = `${node} executed ${event.digestHex.slice(0, 12)} at seq ${event.seq}, another replica ${held.slice(0, 12)}`;
    else executed.set(event.seq, event.digestHex);
  });

  const state = (): string => {
    const rows = nodes.map((i) => {
      const r = s.replica(i);
      if (!r) return `${idOf(i)} down`;
      return `${idOf(i)} v${r.replica.view} x${r.replica.lastExecuted} e${r.state.current.epoch} shares[${r.agent.heldEpochs().join()}] sw${r.switchCount}`;
    });
    const w = s.writer(0)!;
    const boundary = s.replica(members[0]!)?.state.current.firstSeq;
    const ranOut = nodes.filter((i) => (s.replica(i)?.switchesWithoutCertificates ?? 0) > 0).map(name);
    return `completed ${s.completed[0]}/${queued}, certified ${w.counters.certified} (awaited at seqs [${w.awaitedCertificateSeqs().join()}], epoch 1 from ${boundary}; switch wait ran out on [${ranOut.join()}]), bad ${w.counters.badCertificates}; ${rows.join('; ')}`;
  };
  const fail = (what: string): SweepResult => ({ seed, plan, failure: `${what}: ${state()}`, limit: null });

  // Clients follow a replacement as runtime clients follow the descriptor the admin re-signs once
  // the round is installed (the CLI does it then; nodes pass it on).
  let followed = !replace;
  s.sim.onStep(() => {
    if (followed) return;
    const installed = members.map((i) => s.replica(i)).find((r) => r && r.state.epochs.length > 1);
    if (!installed) return;
    followed = true;
    s.setClientMembers(installed.state.current.members);
  });

  // The fault phase: writes keep coming, the reconfiguration is ordered, faults come and go.
  queue(6);
  const events: { atMs: number; run: () => void }[] = [
    { atMs: reconfigureAtMs, run: () => {
      s.reconfigure(1, replace ? { kind: 'replace', oldIndex: replaced + 1, newId: s.spareMember!.id, newPublicKey: s.spareMember!.publicKey } : { kind: 'refresh' });
    } },
    ...faults.flatMap((c) => [
      { atMs: reconfigureAtMs + c.atMs, run: () => (c.kind === 'crash' ? s.sim.crash(idOf(c.node)) : s.sim.partition([[idOf(c.node)]])) },
      { atMs: reconfigureAtMs + c.atMs + c.downMs, run: () => (c.kind === 'crash' ? s.sim.restart(idOf(c.node)) : s.sim.heal()) },
    ]),
    ...Array.from({ length: 6 }, (_, k) => ({ atMs: reconfigureAtMs + k * 600 + 100, run: () => queue(2 + (k % 3)) })),
  ].sort((a, b) => a.atMs - b.atMs);
  let nowMs = 0;
  for (const e of events) {
    s.sim.runFor(e.atMs - nowMs);
    nowMs = e.atMs;
    e.run();
    if (safety) return fail(safety);
  }

  // Heal: no loss, every node up, a few more writes.
  s.sim.setNetwork({ lossRate: 0, duplicateRate: 0 });
  s.sim.heal();
  for (const i of nodes) if (!s.sim.isUp(idOf(i))) s.sim.restart(idOf(i));
  queue(4);
  const settled = s.sim.runUntil(() => {
    if (safety || s.completed[0] !== queued) return false;
    const rs = members.map((i) => s.replica(i)!);
    const top = Math.max(...rs.map((r) => r.replica.lastExecuted));
    return rs.every((r) => r.state.current.epoch === 1 && r.agent.heldEpochs().join() === '1' && r.replica.lastExecuted >= r.state.current.firstSeq && r.replica.lastExecuted >= top - 4);
  }, 120_000);
  if (safety) return fail(safety);
  if (!settled) return fail('not settled 120 s after the heal');
  const outcome = s.replica(members[0]!)!.state.outcome;
  if (outcome?.result !== 'installed') return fail(`round outcome ${JSON.stringify(outcome)}`);
  // A replaced member deletes its share once it has executed the boundary. One that was down, cut
  // off or behind (messages lost) when the others switched may never get there: the ring no longer
  // talks to it, and it keeps its old share until the operator wipes it (replace-node stops it and
  // says so). A known limit (docs/reconfiguration.md), reported apart; one that reached the
  // boundary and kept its share fails.
  let limit: string | null = null;
  const leaving = replace ? s.replica(replaced)! : null;
  if (leaving && leaving.agent.heldEpochs().length !== 0) {
    const boundary = s.replica(members[0]!)!.state.current.firstSeq - 1;
    if (leaving.replica.lastExecuted >= boundary) return fail(`the replaced ring-${replaced} still holds shares [${leaving.agent.heldEpochs().join()}]`);
    limit = `the replaced ring-${replaced} stopped at seq ${leaving.replica.lastExecuted} below the boundary ${boundary} and keeps its old share`;
  }

  const w = (): NonNullable<ReturnType<typeof s.writer>> => s.writer(0)!;
  if (!s.sim.runUntil(() => w().counters.certified >= s.completed[0]!, 60_000)) return fail('completed writes not certified 60 s after settling');
  // A Byzantine member may send the writer certificates that fail its check; no correct one does.
  if (byzantine < 0 && w().counters.badCertificates !== 0) return fail('the writer was sent certificates that failed its check');
  for (const c of certificates) {
    const message = batchSigningMessage({ ringId: simRingId, epoch: c.epoch, sequence: c.seq, leafCount: c.leafCount, root: c.root });
    if (!verifySignature(s.key.publicKey, message, c.signature)) return fail(`certificate of seq ${c.seq} (epoch ${c.epoch}, by ${c.node}) does not verify under the ring key`);
  }
  if (safety) return fail(safety);
  return { seed, plan, failure: null, limit };
}
