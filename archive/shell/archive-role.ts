/**
 * What runtime/roles.ts needs to host the archive in real processes, in one call per role:
 *
 *   archive role:  const a = archiveServerRole(ctx);  bindings: [a.binding, tapestry.binding]
 *                  (with the node's metrics: repairs, fragments held)
 *   ring role:     const r = ringArchiverRole(ctx);   bindings: [..., r.binding]
 *                  and on each committed version (once its certificate exists):
 *                  host.execute(channels.archive, (nowMs) => r.archiver.archive(blocks, vguid, encodedCertificate, nowMs))
 *
 * The cores keep their state under 'archive/' in the node's lmdb store. Timing defaults suit real
 * processes (lost after 10 s of silence, a scrub pass a minute after the previous one ended).
 */
import { fromHex } from '../../core/bytes.ts';
import type { RoleContext } from '../../runtime/roles.ts';
import { secureRandom } from '../../runtime/cluster-keys.ts';
import { PrefixedKvStore } from '../../runtime/prefixed-kv-store.ts';
import type { ArchiveServer } from '../archive-server.ts';
import type { Archiver } from '../archiver.ts';
import { archiveServerBinding, archiverBinding } from './archive-binding.ts';

function namesOf(ctx: RoleContext, role: 'archive' | 'ring'): string[] {
  return ctx.descriptor.nodes.filter((n) => n.role === role).map((n) => n.name);
}

export function archiveServerRole(ctx: RoleContext) {
  const context = { nodeId: ctx.node.name, store: new PrefixedKvStore(ctx.store, 'archive/'), random: secureRandom, nowMs: ctx.nowMs };
  const { binding, server } = archiveServerBinding({
    context,
    crypto: ctx.crypto,
    secretKey: ctx.secretKey,
    archiveServers: namesOf(ctx, 'archive'),
    ringServers: namesOf(ctx, 'ring'),
    coding: ctx.config.erasure,
    ringPublicKey: fromHex(ctx.descriptor.ringPublicKey),
    tickMs: 100,
    onOutput: (event) => {
      if (event.kind === 'repaired') ctx.metrics.repairs.inc(event.indexes.length);
      else if (event.kind === 'corrupt') ctx.log.warn({ key: event.key, foundBy: event.foundBy }, 'corrupt fragment dropped, queued for repair');
      else if (event.kind === 'peer-lost') ctx.log.warn({ peer: event.peer }, 'archive peer lost: re-protecting its fragments');
      else if (event.kind === 'unrepairable') ctx.log.error({ reason: event.reason }, 'block could not be repaired');
      else if (event.kind === 'coding-mismatch') {
        ctx.log.error({ peer: event.peer, theirs: event.theirs, ours: event.ours }, 'archive peer has another config.erasure: every node needs the same (k, m); repair to and from it fails');
      }
      if (event.kind === 'stored' || event.kind === 'repaired') ctx.metrics.fragmentsHeld.set(server.fragments.fragmentCount());
    },
  });
  return { binding, server, status: () => archiveStatusOf(server) };
}

/** Fields for `cluster status` (fragmentsHeld is the column it already prints). */
export function archiveStatusOf(server: ArchiveServer): Record<string, unknown> {
  const s = server.status();
  return {
    fragmentsHeld: s.fragmentCount,
    certificatesHeld: s.certificateCount,
    fragmentsScrubbed: s.scrubbedCount,
    corruptFound: s.corruptFoundCount,
    repairQueued: s.repairQueuedCount,
    repairedFragments: s.repairedFragmentCount,
    repairFailed: s.repairFailedCount,
    lostPeers: s.lostPeers,
  };
}

export function ringArchiverRole(ctx: RoleContext): { binding: ReturnType<typeof archiverBinding>['binding']; archiver: Archiver } {
  const archiveServers = ctx.descriptor.nodes.filter((n) => n.role === 'archive');
  const context = { nodeId: ctx.node.name, store: new PrefixedKvStore(ctx.store, 'archive/'), random: secureRandom, nowMs: ctx.nowMs };
  return archiverBinding(
    context,
    {
      crypto: ctx.crypto,
      ringServers: namesOf(ctx, 'ring'),
      archiveServers: archiveServers.map((n) => n.name),
      archiveServerKeys: new Map(archiveServers.map((n) => [n.name, fromHex(n.publicKey)])),
      k: ctx.config.erasure.k,
      m: ctx.config.erasure.m,
      fallbackTimeoutMs: 5_000,
      fallbackRanksMax: ctx.config.f,
      storeTimeoutMs: 5_000,
      attemptsMax: 10,
    },
    (event) => {
      if (event.kind === 'incomplete') ctx.log.warn({ receipts: event.receiptCount, reason: event.reason }, 'block archived incompletely');
      else if (event.kind === 'refused') ctx.log.error({ server: event.server, count: event.count, reason: event.reason }, 'archive server refused stores');
    },
    100,
  );
}
