/** A few TapestryService instances that all know each other, and a synchronous message pump. */
import type { Effect } from '../../core/machine.ts';
import { Prng } from '../../sim/prng.ts';
import type { NodeRef } from '../../tapestry/id.ts';
import type { TapestryMessage, TapestryOutput } from '../../tapestry/messages.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { TapestryService } from '../../tapestry/service.ts';

export type Effects = Effect<TapestryMessage, TapestryOutput>[];
export const refs: NodeRef[] = ['1', '5', '9', 'd'].map((c, i) => ({ id: c.repeat(40), name: `n${i}` }));
const memberNames = new Set(refs.map((r) => r.name));

/** Services for `refs`, all knowing each other, and a pump that delivers sends until quiet. */
export function overlay() {
  const services = new Map(
    refs.map((self) => [self.name, new TapestryService(new TapestryNode({ self, random: new Prng(7), nowMs: 0 }), { isMember: (n) => memberNames.has(n), clientLookupsMax: 2 })]),
  );
  const toClients: { to: string; message: TapestryMessage }[] = [];
  const outputs: TapestryOutput[] = [];
  let nowMs = 0;
  const pump = (from: string, effects: Effects): void => {
    const queue = effects.map((e) => ({ from, e }));
    for (let i = 0; i < 10_000 && queue.length > 0; i++) {
      const { from: sender, e } = queue.shift()!;
      if (e.kind === 'output') {
        outputs.push(e.event);
        continue;
      }
      const target = services.get(e.to);
      if (!target) {
        toClients.push({ to: e.to, message: e.message });
        continue;
      }
      nowMs += 1;
      for (const next of target.onMessage(sender, e.message, nowMs)) queue.push({ from: e.to, e: next });
    }
  };
  // Introduce everyone to everyone; pings, pongs and backpointers fill the tables.
  for (const [name, s] of services) pump(name, s.node.introduce(refs, 0));
  return { services, toClients, outputs, pump, now: () => ++nowMs };
}

