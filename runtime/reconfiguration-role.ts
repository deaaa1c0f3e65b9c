/**
 * The ring server's replica as a reconfigurable one (issue 10): wraps the replica config the
 * role builds with the descriptor's admin key and epoch-0 key, this node's epoch-0 share (unless
 * a refresh retired it), and the x25519/ChaCha20-Poly1305 sub-share cipher of its identity. The
 * agent's outputs retire the epoch-0 share file and are logged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex } from '../core/bytes.ts';
import type { RingMember } from '../ring/config.ts';
import { clusterPaths, reconfigurationPhaseMs, type ClusterConfig } from './cluster-config.ts';
import type { MachineContext } from '../core/machine.ts';
import type { ReconfigurationOutput } from '../ring/reconfiguration-agent.ts';
import { ReconfiguringReplica, type ReconfiguringReplicaConfig } from '../ring/reconfiguration-replica.ts';
import { loadKeyShareIfHeld, retireKeyShare } from './cluster-keys.ts';
import { subShareCipher } from './reconfiguration-cipher.ts';
import type { RoleContext } from './roles.ts';

type BaseConfig = Omit<ReconfiguringReplicaConfig, 'adminPublicKey' | 'initialKey' | 'initialShare' | 'cipher'>;

/** Where `cluster replace-node` tells a spare the member list it joins (ids and ed25519 keys, hex). */
export function joinFileOf(config: ClusterConfig, name: string): string {
  return join(clusterPaths(config).nodeDir(name), 'join.json');
}

/** The member list a spare joins as, or null (not a spare, or not replacing anyone yet). */
export function joiningMembersOf(ctx: RoleContext): RingMember[] | null {
  if (ctx.node.role !== 'spare') return null;
  const file = joinFileOf(ctx.config, ctx.node.name);
  if (!existsSync(file)) return null;
  const list = JSON.parse(readFileSync(file, 'utf8')) as { id: string; publicKey: string }[];
  return list.map((m) => ({ id: m.id, publicKey: fromHex(m.publicKey) }));
}

export function reconfiguringReplicaOf(ctx: RoleContext, replicaCtx: MachineContext, base: BaseConfig): ReconfiguringReplica {
  const d = ctx.descriptor;
  const initialShare = ctx.node.role === 'ring' ? loadKeyShareIfHeld(ctx.config, d, ctx.node.name) : null;
  const replica = new ReconfiguringReplica(replicaCtx, {
    ...base,
    adminPublicKey: fromHex(d.adminPublicKey),
    initialKey: { threshold: d.threshold, publicKey: fromHex(d.ringPublicKey), commitments: d.commitments.map(fromHex) },
    initialShare,
    cipher: subShareCipher(ctx.secretKey),
    phaseMs: reconfigurationPhaseMs,
    membershipChange: true,
    resubmitMs: 1000,
  });
  // A crash between deleting the epoch-0 share from the store and retiring its file: finish now.
  if (initialShare && !replica.agent.heldEpochs().includes(0)) retireKeyShare(ctx.config, ctx.node.name, replica.state.current.epoch);
  return replica;
}

export function isReconfigurationOutput(event: { kind: string }): event is ReconfigurationOutput {
  return event.kind === 'share-installed' || event.kind === 'old-share-deleted' || event.kind === 'retired';
}

export function onReconfigurationOutput(ctx: RoleContext, event: ReconfigurationOutput): void {
  switch (event.kind) {
    case 'share-installed':
      ctx.log.info({ epoch: event.epoch, shareIndex: event.shareIndex }, 'key share of the new epoch installed');
      return;
    case 'old-share-deleted':
      // Epoch 0's share also lives in a file from `cluster init`; later ones only in the store.
      if (event.epoch === 0) retireKeyShare(ctx.config, ctx.node.name, event.epoch + 1);
      ctx.log.info({ epoch: event.epoch }, 'old key share deleted');
      return;
    case 'retired':
      ctx.log.warn({ epoch: event.epoch }, 'no longer a ring member: holds no key share');
      return;
  }
}

/** For `cluster status` and the admin /status endpoint. */
export function reconfigurationStatus(r: ReconfiguringReplica): Record<string, unknown> {
  const state = r.state;
  const round = state.round;
  return {
    epoch: state.epochAt(r.replica.lastExecuted),
    epochScheduled: state.current.epoch,
    epochFirstSeq: state.current.firstSeq,
    members: r.replica.config.members.map((m) => m.id),
    shareEpochs: r.agent.heldEpochs(),
    round: round ? { epoch: round.epoch, phase: round.phase, deals: round.deals.size, verdicts: round.verdicts.size, openComplaints: round.openComplaints().length } : null,
    lastRound: state.outcome,
  };
}
