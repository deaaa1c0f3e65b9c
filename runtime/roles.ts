/**
 * What each role hosts. A role adapter builds the role's cores as host bindings, maps their
 * output events to metrics, reports protocol status for `cluster status`, and says when the node
 * is ready. Cores are plugged in here as the protocol modules land (ring/, tapestry/, archive/,
 * replica/); a role whose core is not wired yet runs the transport and admin port only.
 */
import type { Logger } from 'pino';
import type { Crypto } from '../core/crypto.ts';
import type { ClusterConfig, NodeConfig } from './cluster-config.ts';
import type { RingDescriptor } from './cluster-keys.ts';
import type { Binding, DurableKvStore } from './machine-host.ts';
import type { NodeMetrics } from './metrics.ts';

export interface RoleContext {
  readonly config: ClusterConfig;
  readonly descriptor: RingDescriptor;
  readonly node: NodeConfig;
  readonly secretKey: Uint8Array;
  readonly crypto: Crypto;
  readonly store: DurableKvStore;
  readonly metrics: NodeMetrics;
  readonly log: Logger;
  readonly nowMs: number;
}

export interface RoleAdapter {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly bindings: readonly Binding<any, any>[];
  status(): Record<string, unknown>;
  /** Ready to serve, given the names of connected peers. */
  ready(connectedPeers: readonly string[]): boolean;
}

/** Frame channels: one byte per protocol, fixed so mixed versions fail loudly rather than misparse. */
export const channels = { ring: 1, tapestry: 2, archive: 3, replica: 4 } as const;

/** Connected to enough ring servers to reach a quorum (2f+1 counting itself for a ring server). */
export function ringQuorumConnected(ctx: RoleContext, connectedPeers: readonly string[]): boolean {
  const ring = new Set(ctx.descriptor.nodes.filter((n) => n.role === 'ring').map((n) => n.name));
  const connected = connectedPeers.filter((p) => ring.has(p)).length;
  const needed = ctx.node.role === 'ring' ? 2 * ctx.config.f : 2 * ctx.config.f + 1;
  return connected >= needed;
}

export function buildRole(ctx: RoleContext): RoleAdapter {
  return {
    bindings: [],
    status: () => ({ protocol: 'none', note: `no ${ctx.node.role} core wired yet: transport and admin port only` }),
    ready: (peers) => ringQuorumConnected(ctx, peers),
  };
}
