/**
 * `npm run bench -- reconfiguration [--full]`: what a key refresh costs (issue 10).
 *  - Sealing one sub-share to a member (x25519 + ChaCha20-Poly1305) and opening it, next to the
 *    baseline of one BLS signature share (what every replica pays per certified batch).
 *  - A whole refresh in the simulator with real BLS and writes flowing: agreed (virtual) time from
 *    the admin's record to the new epoch decided, to it certifying, and to old shares deleted;
 *    CPU and wall time of the run; with an honest ring and with one Byzantine dealer.
 * --full adds f = 2 (7 members). Real-process figures: test/runtime/reconfiguration.test.ts prints
 * the wall time of `cluster refresh-keys` with clients writing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RandomSource } from '../core/machine.ts';
import { dealRingKey } from '../core/threshold/dealer.ts';
import { hashMessage } from '../core/threshold/points.ts';
import { signShare } from '../core/threshold/signing.ts';
import { kvKeyFor, kvOperation } from '../ring/kv-service.ts';
import { sealedSubShareContext } from '../ring/reconfiguration-codec.ts';
import { buildReconfigurationSim } from '../ring/reconfiguration-sim.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { subShareCipher } from '../runtime/reconfiguration-cipher.ts';
import { Prng } from '../sim/prng.ts';
import { machineDescription } from './_machine.ts';

/** [wall µs, CPU µs] per call: on a loaded machine the CPU figure is the one to compare. */
function timeUs(count: number, fn: () => void): [number, number] {
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let i = 0; i < count; i++) fn();
  const cpu = process.cpuUsage(cpu0);
  return [Number(process.hrtime.bigint() - start) / 1000 / count, (cpu.user + cpu.system) / count];
}

function microRows(): Record<string, [number, number]> {
  const key = dealRingKey(new Prng(1), 4, 2);
  const hashed = hashMessage(new TextEncoder().encode('baseline batch header'));
  const recipientSecret = new Uint8Array(32).fill(3);
  const recipient = subShareCipher(recipientSecret);
  const dealer = subShareCipher(new Uint8Array(32).fill(4));
  const recipientPublic = nodeCrypto.ed25519PublicKey(recipientSecret);
  const context = sealedSubShareContext(1, 1, 2);
  const sealed = dealer.seal(recipientPublic, key.shares[0]!.secretKey, context);
  return {
    'BLS share sign (baseline)': timeUs(20, () => signShare(key.shares[0]!, hashed)),
    'seal one sub-share': timeUs(200, () => dealer.seal(recipientPublic, key.shares[0]!.secretKey, context)),
    'open one sub-share': timeUs(200, () => recipient.open(sealed, context)),
  };
}

interface RoundFigures {
  readonly ring: string;
  readonly decidedMs: number;
  readonly certifyingMs: number;
  readonly oldDeletedMs: number;
  readonly writesCompleted: number;
  readonly cpuMs: number;
  readonly wallMs: number;
}

function simulateRound(f: number, byzantine: boolean): RoundFigures {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const s = buildReconfigurationSim({
    seed: 77 + f, f, writerCount: 1, crypto: nodeCrypto,
    cipherFor: (secret: Uint8Array, random: RandomSource) => subShareCipher(secret, (n) => random.bytes(n)),
    dealers: byzantine ? new Map([[3 * f, 'bad-sub-shares' as const]]) : undefined,
    parameters: { checkpointInterval: 8, watermarkWindow: 32 },
    network: { delayMsMin: 1, delayMsMax: 4 },
  });
  const writer = s.writers[0]!;
  for (let k = 0; k < 40; k++) s.submit(0, kvOperation(kvKeyFor(writer.publicKey, 'k'), -1, new Uint8Array(64).fill(k)));
  s.sim.runFor(100);
  const startMs = s.sim.nowMs;
  s.reconfigure(1, { kind: 'refresh' });
  const n = 3 * f + 1;
  const all = (p: (i: number) => boolean) => Array.from({ length: n }, (_, i) => i).every(p);
  const at = (p: () => boolean) => (s.sim.runUntil(p, 120_000) ? s.sim.nowMs - startMs : Number.NaN);
  const decidedMs = at(() => all((i) => s.replica(i)!.state.current.epoch === 1));
  const certifyingMs = at(() => s.certificates.some((c) => c.epoch === 1));
  const oldDeletedMs = at(() => all((i) => s.replica(i)!.agent.heldEpochs().join() === '1'));
  const cpu = process.cpuUsage(cpu0);
  return {
    ring: `n = ${n}${byzantine ? ', 1 Byzantine dealer' : ''}`,
    decidedMs, certifyingMs, oldDeletedMs, writesCompleted: s.completed[0]!,
    cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - wall0,
  };
}

export async function run(args: string[]): Promise<void> {
  const full = args.includes('--full');
  const machine = machineDescription();
  const loadBefore = loadavg()[0]!;
  const micro = microRows();
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}; load average ${loadBefore.toFixed(1)}`);
  console.log('\n| step | wall µs | CPU µs |\n|---|---|---|');
  for (const [k, [wall, cpu]] of Object.entries(micro)) console.log(`| ${k} | ${wall.toFixed(0)} | ${cpu.toFixed(0)} |`);
  const rounds: RoundFigures[] = [simulateRound(1, false), simulateRound(1, true)];
  if (full) rounds.push(simulateRound(2, false));
  console.log('\nwhole refresh in the simulator (real BLS, writes flowing; times are agreed/virtual ms after the admin record)');
  console.log('| ring | decided | certifying | old shares deleted | writes done | CPU ms | wall ms |\n|---|---|---|---|---|---|---|');
  for (const r of rounds) {
    console.log(`| ${r.ring} | ${r.decidedMs.toFixed(0)} | ${r.certifyingMs.toFixed(0)} | ${r.oldDeletedMs.toFixed(0)} | ${r.writesCompleted} | ${r.cpuMs.toFixed(0)} | ${r.wallMs.toFixed(0)} |`);
  }
  const loadAfter = loadavg()[0]!;
  console.log(`load average after: ${loadAfter.toFixed(1)}`);
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'reconfiguration.json'), JSON.stringify({ machine, loadBefore, loadAfter, micro, rounds }, null, 2) + '\n');
}
