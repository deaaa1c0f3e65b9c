/** Builds an overlay the honest way: nodes join one at a time through the real join protocol. */
import type { TapestryNetwork, SimNode } from './network.ts';

export interface BuildReport {
  readonly nodeCount: number;
  readonly messages: number;
  readonly messagesPerJoin: number;
  readonly wallMs: number;
}

/**
 * Adds `count` nodes: the first starts alone, each next one joins through a random member and the
 * network runs until idle (no ticks) before the next join, so every join completes.
 */
export function buildOverlay(net: TapestryNetwork, count: number, pickGateway: (members: SimNode[]) => SimNode): BuildReport {
  const started = performance.now();
  const before = net.messagesDelivered;
  const members: SimNode[] = net.live();
  for (let i = 0; i < count; i++) {
    const sim = net.addNode();
    if (members.length > 0) {
      net.join(sim.ref.name, pickGateway(members).ref.name);
      net.runUntilIdle();
    }
    members.push(sim);
  }
  const messages = net.messagesDelivered - before;
  return { nodeCount: count, messages, messagesPerJoin: messages / Math.max(1, count - 1), wallMs: performance.now() - started };
}
