/** The options the session-29 sweep drew for a seed (runtime parameters, 'real' workload: a 4 KiB rewrite, ~300 KiB in blocks and 1000-byte appends). */
import type { WedgeOptions } from './wedge-harness.ts';
import { Prng } from '../../sim/prng.ts';

export function sweepOptions(seed: number): WedgeOptions {
  const r = new Prng(seed).fork('sweep-options');
  return {
    seed, service: 'object', params: 'runtime', workload: 'real', clientCount: 3,
    crashes: 1 + r.int(2) + (r.chance(0.2) ? 1 : 0),
    crashWhen: r.pick(['random', 'after-execute', 'after-checkpoint-exec'] as const),
    downMs: r.pick([0, 20, 200, 1000, 3000]), stagger: r.chance(0.3), secondAfter: r.chance(0.5) ? 'one-write' : 'random',
    lossRate: r.chance(0.3) ? r.float() * 0.05 : 0, delayMax: 2 + r.int(20), blockBytes: r.pick([1024, 4096, 65536]),
    blocksMax: r.pick([2, 6, 20]), skipPutProb: r.pick([0, 0.3, 1]), abandonMs: r.chance(0.5) ? 8000 : undefined, putResendMs: 5000,
  } as WedgeOptions;
}

