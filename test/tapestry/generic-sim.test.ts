/**
 * The same node core under the team's generic simulator (sim/simulation.ts), which adds what the
 * purpose-built driver does not: message loss, duplication, reordering and crash/restart.
 */
import { describe, expect, it } from 'vitest';
import { Simulation } from '../../sim/simulation.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { createTapestryNode } from '../../tapestry/index.ts';
import type { TapestryMessage, TapestryOutput } from '../../tapestry/index.ts';
import type { TapestryNode } from '../../tapestry/node.ts';
import { digitAt } from '../../tapestry/id.ts';

const config = { beaconIntervalMs: 2_000, beaconMissesMax: 4, maintenanceIntervalMs: 3_000, joinStepTimeoutMs: 1_000, multicastTimeoutMs: 2_000 };

function trueRoot(target: string, ids: string[]): string {
  let candidates = ids;
  for (let level = 0; level < 40 && candidates.length > 1; level++) {
    for (let k = 0; k < 16; k++) {
      const sub = candidates.filter((c) => digitAt(c, level) === (digitAt(target, level) + k) % 16);
      if (sub.length > 0) {
        candidates = sub;
        break;
      }
    }
  }
  return candidates[0]!;
}

describe('Tapestry under the generic simulator (loss, duplication, crash/restart)', () => {
  it('joins converge to consistent tables despite 5% loss and 5% duplication, and again after restarts', () => {
    const sim = new Simulation<TapestryMessage, TapestryOutput>({ seed: 9, tickMs: 250, network: { delayMsMin: 2, delayMsMax: 40, lossRate: 0.05, duplicateRate: 0.05 } });
    const names = Array.from({ length: 40 }, (_, i) => `t${i}`);
    for (const [i, name] of names.entries()) {
      const publicKey = nodeCrypto.sha256([new TextEncoder().encode(name)]);
      sim.addNode(name, (context) =>
        createTapestryNode(context, { crypto: nodeCrypto, publicKey, config, ...(i === 0 ? {} : { gateway: names[Math.floor(i / 2)]! }) }),
      );
    }
    const node = (name: string): TapestryNode => sim.machine(name) as TapestryNode;
    const consistent = (): boolean => {
      const up = names.filter((n) => sim.isUp(n));
      const ids = up.map((n) => node(n).self.id);
      for (let t = 0; t < 16; t++) {
        const target = nodeCrypto.sha256([Uint8Array.of(t)]).subarray(0, 20);
        const hex = Buffer.from(target).toString('hex');
        const root = trueRoot(hex, ids);
        for (const start of up) {
          let at = node(start);
          let level = 0;
          for (let hops = 0; ; hops++) {
            if (hops > 40) return false;
            const next = at.table.nextHop(hex, level);
            if (!next) break;
            if (!sim.isUp(next.hop.name)) return false;
            at = node(next.hop.name);
            level = next.level;
          }
          if (at.self.id !== root) return false;
        }
      }
      return true;
    };
    /** Checks once per virtual second (the check walks 16 ids from every node). */
    const within = (timeMsMax: number): boolean => {
      for (let waitedMs = 0; waitedMs < timeMsMax; waitedMs += 1_000) {
        sim.runFor(1_000);
        if (consistent()) return true;
      }
      return false;
    };
    expect(within(120_000)).toBe(true);
    for (const name of ['t5', 't17', 't30']) sim.crash(name);
    sim.runFor(1_000);
    for (const name of ['t5', 't17', 't30']) sim.restart(name);
    expect(within(120_000)).toBe(true);
    expect(names.every((n) => node(n).isMember)).toBe(true);
  });
});
