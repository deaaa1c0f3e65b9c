/**
 * The simulator's own scenario: nodes ping random peers and count pongs durably. It exercises every
 * network fault and crash/restart, and is what the determinism tests run: same seed -> same trace.
 */
import { u64be } from '../core/bytes.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import { Simulation } from './simulation.ts';

export type EchoMessage = { kind: 'ping'; id: number } | { kind: 'pong'; id: number };
export type EchoOutput = { kind: 'pong-received'; id: number };

/** A node that pings a random peer every few ticks and persists how many pongs it has seen. */
export class EchoNode implements Machine<EchoMessage, EchoOutput> {
  private nextId = 0;
  pongCount: number;

  constructor(
    private readonly context: MachineContext,
    private readonly peers: readonly string[],
  ) {
    const stored = context.store.get('pongs');
    this.pongCount = stored ? Number(new DataView(stored.buffer, stored.byteOffset).getBigUint64(0)) : 0;
  }

  onMessage(from: string, message: EchoMessage): Effect<EchoMessage, EchoOutput>[] {
    if (message.kind === 'ping') return [{ kind: 'send', to: from, message: { kind: 'pong', id: message.id } }];
    this.pongCount++;
    this.context.store.put('pongs', u64be(this.pongCount));
    return [{ kind: 'output', event: { kind: 'pong-received', id: message.id } }];
  }

  onTick(): Effect<EchoMessage, EchoOutput>[] {
    if (this.context.random.int(3) !== 0) return [];
    const others = this.peers.filter((p) => p !== this.context.nodeId);
    const to = others[this.context.random.int(others.length)]!;
    return [{ kind: 'send', to, message: { kind: 'ping', id: this.nextId++ } }];
  }
}

export interface EchoRun {
  traceHash: string;
  pongs: number;
  stats: Simulation<EchoMessage, EchoOutput>['stats'];
}

/** A fault phase (loss, duplication, partition, crashes) then a heal phase. */
export function runEcho(seed: number, nodeCount = 5, durationMs = 5_000): EchoRun {
  const sim = new Simulation<EchoMessage, EchoOutput>({ seed, network: { delayMsMin: 1, delayMsMax: 20 } });
  const ids = Array.from({ length: nodeCount }, (_, i) => `n${i}`);
  for (const id of ids) sim.addNode(id, (ctx) => new EchoNode(ctx, ids));
  let pongs = 0;
  sim.onOutput(() => pongs++);
  sim.setNetwork({ lossRate: 0.1, duplicateRate: 0.05 });
  sim.runFor(durationMs / 4);
  sim.partition([ids.slice(0, 2)]);
  sim.crash(sim.random.pick(ids));
  sim.runFor(durationMs / 4);
  for (const id of ids) if (!sim.isUp(id)) sim.restart(id);
  sim.heal();
  sim.setNetwork({ lossRate: 0, duplicateRate: 0 });
  sim.runFor(durationMs / 2);
  return { traceHash: sim.traceHash(), pongs, stats: sim.stats };
}

export async function run(args: string[]): Promise<void> {
  const seedAt = args.indexOf('--seed');
  const seed = seedAt >= 0 ? Number(args[seedAt + 1]) : 1;
  const result = runEcho(seed);
  console.log(`echo seed=${seed} trace=${result.traceHash} pongs=${result.pongs} ${JSON.stringify(result.stats)}`);
}
