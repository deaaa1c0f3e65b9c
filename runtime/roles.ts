/**
 * What each role hosts. A role adapter builds the role's cores as host bindings, maps their
 * output events to metrics, reports protocol status for `cluster status`, and says when the node
 * is ready.
 *   ring server:       PBFT replica (ring/replica.ts) running the Pond object service, channel 1;
 *                      tree root member and archiver (runtime/object-roles.ts); Tapestry node, channel 2
 *   archive server:    archive server core (archive/archive-server.ts) on channel 3 + Tapestry node
 *   secondary replica: SecondaryReplica (runtime/object-roles.ts) on channel 4 + Tapestry node
 */
import { archiveServerRole } from '../archive/shell/archive-role.ts';
import type { Logger } from 'pino';
import { fromHex, toHex } from '../core/bytes.ts';
import { signerOf, type Crypto } from '../core/crypto.ts';
import type { RandomSource } from '../core/machine.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../ring/codec.ts';
import { ringServerParts, secondaryParts, type RingServerParts } from './object-roles.ts';
import type { RingMessage } from '../ring/messages.ts';
import type { Replica } from '../ring/replica.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../tapestry/codec.ts';
import { tapestryIdOf } from '../tapestry/id.ts';
import { pointerAuthOf } from '../tapestry/pointer-auth.ts';
import { messageBytesMax as tapestryBytesMax, type TapestryMessage, type TapestryOutput } from '../tapestry/messages.ts';
import { nodeObjectIdOf, roleObjectIdOf } from '../tapestry/named-objects.ts';
import { TapestryNode } from '../tapestry/node.ts';
import { TapestryService } from '../tapestry/service.ts';
import { blsCertificateVerifier, HashedCache } from '../ring/bls-certificate-signer.ts';
import { RingKeyVerifier } from '../core/threshold/signing.ts';
import { CertificateThread } from './certificate-thread.ts';
import type { ClusterConfig, NodeConfig } from './cluster-config.ts';
import { initialRingOf, ringNamesOf, secureRandom, type RingDescriptor } from './cluster-keys.ts';
import type { Binding, DurableKvStore } from './machine-host.ts';
import type { NodeMetrics } from './metrics.ts';
import { PrefixedKvStore } from './prefixed-kv-store.ts';
import { isReconfigurationOutput, joiningMembersOf, onReconfigurationOutput, reconfigurationStatus, reconfiguringReplicaOf } from './reconfiguration-role.ts';
import type { ReconfiguringOutput, ReconfiguringReplica } from '../ring/reconfiguration-replica.ts';
import { tapestryStatusOf } from './tapestry-status.ts';
import { TapestryTreeLocator } from './tapestry-tree-locator.ts';
import { ConfigLocator } from '../replica/config-locator.ts';
import type { ReplicaEvent } from '../replica/events.ts';
import type { TreeLocator } from '../replica/types.ts';

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
  /**
   * Secondaries only: the tree locator backed by Tapestry (runtime/tapestry-tree-locator.ts), for
   * secondaryParts to hand its SecondaryReplica (falls back to the configured members).
   */
  readonly treeLocator?: TreeLocator;
  /**
   * Runs a step on the core bound to `channel` (MachineHost.execute), for work a role does off the
   * core's step and hands back later: a ring server's certificate cryptography (runtime/certificate-thread.ts).
   * Without it, those run inline.
   */
  readonly execute?: (channel: number, run: (nowMs: number) => import('../core/machine.ts').Effect<unknown, unknown>[]) => void;
}

/** A step the node runs once the host is up (e.g. the Tapestry join), on the binding's channel. */
export interface StartupStep {
  readonly channel: number;
  readonly run: (nowMs: number) => import('../core/machine.ts').Effect<unknown, unknown>[];
}

export interface RoleAdapter {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly bindings: readonly Binding<any, any>[];
  readonly startup: readonly StartupStep[];
  status(): Record<string, unknown>;
  /** Ready to serve, given the names of connected peers. */
  ready(connectedPeers: readonly string[]): boolean;
  /**
   * A later admin-signed descriptor was taken (runtime/descriptor-gossip.ts): the role's lists of
   * ring members follow it (which ring servers archive and share certificates, who may store
   * fragments, where secondaries look last, whom readiness counts).
   */
  onDescriptor(descriptor: RingDescriptor): void;
  /** Stops what the role runs beside its cores (a ring server's certificate thread), after the host stopped. */
  close?(): Promise<void>;
}

/** Frame channels: one byte per protocol, fixed so mixed versions fail loudly rather than misparse. */
export const channels = { ring: 1, tapestry: 2, archive: 3, replica: 4, descriptor: 5 } as const;

/**
 * The node that starts the Tapestry overlay alone and that every other node asks first to join
 * it: the initial ring's first member. It stays fixed when the ring changes, so every process,
 * whatever descriptor it holds, agrees on the one node that may start alone (a second one would
 * start an island).
 */
export function tapestryGatewayOf(descriptor: RingDescriptor): string {
  return initialRingOf(descriptor)[0]!.id;
}

/**
 * Whom `self` asks, in turn, to join the overlay: the gateway, then the current ring's members,
 * then every other node. The gateway may have been replaced and be gone for good; any running
 * member can answer a join.
 */
export function tapestryGatewaysOf(descriptor: RingDescriptor, self: string): string[] {
  return [...new Set([tapestryGatewayOf(descriptor), ...ringNamesOf(descriptor), ...descriptor.nodes.map((n) => n.name)])].filter((name) => name !== self);
}

/** Connected to enough of the ring's members (`ring`) to reach a quorum (2f+1 counting itself for a ring server). */
export function ringQuorumConnected(ctx: RoleContext, ring: readonly string[], connectedPeers: readonly string[]): boolean {
  const connected = connectedPeers.filter((p) => ring.includes(p)).length;
  // A member (a spare that joined included) counts itself toward the quorum.
  const needed = ring.includes(ctx.node.name) ? 2 * ctx.config.f : 2 * ctx.config.f + 1;
  return connected >= needed;
}

/** The process's Tapestry node (channel 2), wrapped for clients and other local cores. */
export interface TapestryPart {
  readonly binding: Binding<TapestryMessage, TapestryOutput>;
  readonly service: TapestryService;
  readonly node: TapestryNode;
  joined(): boolean;
  /** Called with every locate result of a locate this process started itself (not clients'). */
  onLocateResult(listener: (event: Extract<TapestryOutput, { kind: 'locateResult' }>) => void): void;
}

function tapestryBinding(ctx: RoleContext, random: RandomSource): TapestryPart {
  // Every member's Tapestry id follows from its key in the descriptor, and the transport has
  // authenticated that key: a member claiming any other id is not taken into routing tables.
  // The same keys sign and check publish statements: a pointer stands only on its server's word.
  const keys = new Map(ctx.descriptor.nodes.map((n) => [n.name, fromHex(n.publicKey)]));
  const ids = new Map([...keys].map(([name, key]) => [name, tapestryIdOf(ctx.crypto, key)]));
  const node = new TapestryNode({
    self: { id: tapestryIdOf(ctx.crypto, ctx.crypto.ed25519PublicKey(ctx.secretKey)), name: ctx.node.name },
    random,
    nowMs: ctx.nowMs,
    idOf: (name) => ids.get(name),
    pointerAuth: pointerAuthOf(ctx.crypto, signerOf(ctx.crypto, ctx.secretKey), (name) => keys.get(name)),
  });
  // Only config members take part in the overlay; any other authenticated peer is a client and
  // may only ask for lookups.
  const members = new Set(ctx.descriptor.nodes.map((n) => n.name));
  const service = new TapestryService(node, { isMember: (name) => members.has(name) });
  const listeners: ((event: Extract<TapestryOutput, { kind: 'locateResult' }>) => void)[] = [];
  let joined = ctx.node.name === tapestryGatewayOf(ctx.descriptor);
  const binding: Binding<TapestryMessage, TapestryOutput> = {
    channel: channels.tapestry, protocol: 'tapestry', machine: service, volatile: true, // soft state: never waits for fsyncs
    decode: decodeTapestryMessage, encode: encodeTapestryMessage, frameBytesMax: tapestryBytesMax, tickMs: 100,
    onOutput: (event) => {
      if (event.kind === 'joined') {
        joined = true;
        ctx.log.info({ neighbours: event.neighbourCount }, 'tapestry joined');
      } else if (event.kind === 'neighbourFailed') ctx.log.warn({ neighbour: event.neighbour.name }, 'tapestry neighbour failed');
      else if (event.kind === 'locateResult') for (const listener of listeners) listener(event);
    },
  };
  return { binding, service, node, joined: () => joined, onLocateResult: (listener) => void listeners.push(listener) };
}

/**
 * A secondary's tree members through Tapestry: it announces the objects whose tree it joined and
 * locates members for the objects it wants, before the configured ones (other replicas, then the
 * ring servers, exactly the list secondaryParts uses without Tapestry).
 */
function treeLocatorOf(ctx: RoleContext, tapestry: TapestryPart): { tree: TapestryTreeLocator; fallback: ConfigLocator } {
  const others = ctx.descriptor.nodes.filter((n) => n.role === 'replica' && n.name !== ctx.node.name).map((n) => n.name);
  const fallback = new ConfigLocator(ringNamesOf(ctx.descriptor), others);
  const tree = new TapestryTreeLocator(tapestry.service, fallback, { selfName: ctx.node.name });
  tapestry.onLocateResult((event) => tree.onLocateResult(event));
  return { tree, fallback };
}

/**
 * Startup on channel 2: join through the gateway, or the next node in tapestryGatewaysOf if it
 * does not answer (every node but the gateway itself), then publish
 * this node's name and role objects (tapestry/named-objects.ts), so any process can find a given
 * server, or the nearest server of a role, through the overlay. A publish issued while joining is
 * kept and sent again once the join completes.
 */
function tapestryStartup(ctx: RoleContext, tapestry: TapestryPart): StartupStep[] {
  const gateway = tapestryGatewayOf(ctx.descriptor);
  const node = tapestry.node;
  const steps: StartupStep[] = [];
  if (ctx.node.name !== gateway) steps.push({ channel: channels.tapestry, run: (nowMs) => node.join(tapestryGatewaysOf(ctx.descriptor, ctx.node.name), nowMs) as never });
  steps.push({
    channel: channels.tapestry,
    run: (nowMs) => [
      ...node.publish(nodeObjectIdOf(ctx.crypto, ctx.node.name), nowMs),
      ...node.publish(roleObjectIdOf(ctx.crypto, ctx.node.role), nowMs),
    ] as never,
  });
  return steps;
}

function ringReplica(ctx: RoleContext, parts: RingServerParts): { binding: Binding<RingMessage, ReconfiguringOutput>; replica: Replica; reconfigurable: ReconfiguringReplica; certificateThread: CertificateThread | null } {
  // A spare that is replacing a member runs with the member list it will vote in (issue 10).
  const joining = joiningMembersOf(ctx);
  const members = joining ?? initialRingOf(ctx.descriptor);
  const key = { threshold: ctx.descriptor.threshold, publicKey: fromHex(ctx.descriptor.ringPublicKey), commitments: ctx.descriptor.commitments.map(fromHex) };
  // One cache of hashed span headers for this replica's share signer and certificate verifier.
  const hashedCache = new HashedCache();
  const ringKey = new RingKeyVerifier(key, members.length);
  const certificateVerifier = blsCertificateVerifier(ringKey, hashedCache);
  // Shares, combinations and pairing checks on a thread of their own, under the key the inline
  // verifier uses: a round's ~10 ms of BLS no longer holds up the agreement messages that arrive
  // meanwhile (docs/ring.md "Certificate work off the agreement thread").
  const execute = ctx.execute;
  const certificateThread = execute ? new CertificateThread(ringKey.publicKey, undefined, (text) => ctx.log.warn(text)) : null;
  // Key refresh (issue 10): shares follow the epoch of each batch; the ring public key never changes.
  const reconfigurable = reconfiguringReplicaOf(
    ctx,
    { nodeId: ctx.node.name, store: new PrefixedKvStore(ctx.store, 'ring/'), random: secureRandom, nowMs: ctx.nowMs },
    {
      members, initialMembers: initialRingOf(ctx.descriptor), f: ctx.config.f, crypto: ctx.crypto, signer: signerOf(ctx.crypto, ctx.secretKey), certificateVerifier,
      service: parts.service,
      ringId: fromHex(ctx.descriptor.ringId),
      // Every frame between members is tagged under keys from the handshake (runtime/frame-auth.ts):
      // a commit that arrives from the member it names is that member's, unaltered. That holds
      // only if the transport knows each member under the key the replica checks signatures with.
      hashedCache,
      certificateWork: certificateThread ? 'host' : 'inline',
      channelIntegrity: members.every((m) => ctx.descriptor.nodes.some((n) => n.name === m.id && n.publicKey === toHex(m.publicKey))),
      // Heartbeats let readers demand freshness (maxAgeMs); one per second unless configured.
      parameters: { heartbeatIntervalMs: 1000, ...ctx.config.ring },
    },
  );
  const replica = reconfigurable.replica;
  const m = ctx.metrics;
  // Receipt time per request (client key : nonce), bounded, for the server-side latency histogram.
  const receivedMs = new Map<string, number>();
  const decode = (bytes: Uint8Array): RingMessage => {
    const message = decodeRingMessage(bytes);
    if (message.kind === 'request') {
      m.requests.inc();
      const key = `${toHex(message.clientKey)}:${message.nonce}`;
      if (!receivedMs.has(key)) {
        if (receivedMs.size >= 100_000) receivedMs.clear();
        receivedMs.set(key, performance.now());
      }
    }
    return message;
  };
  const binding: Binding<RingMessage, ReconfiguringOutput> = {
    channel: channels.ring, protocol: 'ring', machine: reconfigurable,
    decode, encode: encodeRingMessage, frameBytesMax: ringFrameBytesMax, tickMs: ctx.config.tickMs,
    onOutput: (event) => {
      if (isReconfigurationOutput(event)) return onReconfigurationOutput(ctx, event);
      // A header this thread hashed already (a share check after a failed combination) need not be hashed there again.
      if (event.kind === 'certificate-work') return certificateThread!.forward(event, () => reconfigurable, (run) => execute!(channels.ring, run as never), hashedCache.peek(event.work.message)?.bytes);
      parts.onRingOutput(event);
      switch (event.kind) {
        case 'executed':
          m.commits.inc(event.requests.length);
          m.batchSize.observe(event.requests.length);
          for (const r of event.requests) {
            const key = `${r.clientKeyHex}:${r.nonce}`;
            const at = receivedMs.get(key);
            if (at !== undefined) {
              m.requestLatency.observe((performance.now() - at) / 1000);
              receivedMs.delete(key);
            }
          }
          break;
        case 'view-installed':
          m.viewChanges.inc();
          ctx.log.info({ view: event.view }, 'view installed');
          break;
        case 'view-change-started':
          ctx.log.warn({ view: event.view }, 'view change started');
          break;
        case 'state-transferred':
          ctx.log.info({ seq: event.seq }, 'state transferred');
          break;
        case 'bad-share':
          ctx.log.warn({ sender: event.sender, seq: event.seq }, 'bad certificate share');
          break;
        default:
          break;
      }
    },
  };
  return { binding, replica, reconfigurable, certificateThread };
}

export function buildRole(ctx: RoleContext): RoleAdapter {
  // The ring now (the descriptor's signed list after a membership change), followed as it changes:
  // readiness counts it, status names it, and each role's parts are handed each later descriptor.
  let ring = ringNamesOf(ctx.descriptor);
  const adapter = buildRoleAdapter(ctx, (peers) => ringQuorumConnected(ctx, ring, peers));
  return {
    ...adapter,
    status: () => ({ ...adapter.status(), ringFollowed: [...ring] }),
    onDescriptor: (d) => {
      ring = ringNamesOf(d);
      adapter.onDescriptor(d);
    },
  };
}

function buildRoleAdapter(ctx: RoleContext, ready: (peers: readonly string[]) => boolean): RoleAdapter {
  const tapestry = tapestryBinding(ctx, secureRandom);
  const startup = tapestryStartup(ctx, tapestry);
  const tapestryStatus = () => ({
    tapestryId: tapestry.node.self.id, tapestryJoined: tapestry.joined(), tapestryNeighbours: tapestry.node.table.size,
    tapestry: tapestryStatusOf(tapestry.service, tapestry.joined()),
  });
  if (ctx.node.role === 'archive') {
    const { binding, server } = archiveServerRole(ctx);
    ctx.metrics.fragmentsHeld.set(server.fragments.fragmentCount());
    return {
      bindings: [binding, tapestry.binding], startup,
      status: () => {
        const st = server.status();
        return { ...tapestryStatus(), ...st, fragmentsHeld: st.fragmentCount };
      },
      ready,
      onDescriptor: (d) => server.setRingServers(ringNamesOf(d)),
    };
  }
  if (ctx.node.role === 'spare' && !joiningMembersOf(ctx)) {
    return { bindings: [tapestry.binding], startup, status: () => ({ ...tapestryStatus(), spare: true }), ready, onDescriptor: () => undefined };
  }
  if (ctx.node.role !== 'ring' && ctx.node.role !== 'spare') {
    const { tree, fallback } = treeLocatorOf(ctx, tapestry);
    const { binding, replica } = secondaryParts({ ...ctx, treeLocator: tree });
    const announcing = { ...binding, onOutput: (event: unknown) => {
      binding.onOutput?.(event);
      tree.onReplicaEvent(event as ReplicaEvent);
    } };
    return {
      bindings: [announcing, tapestry.binding], startup,
      status: () => ({ ...tapestryStatus(), treeLocator: { ...tree.counters }, replica: Object.fromEntries(replica.counters) }),
      ready,
      onDescriptor: (d) => fallback.setRoots(ringNamesOf(d)),
    };
  }
  const parts = ringServerParts(ctx);
  const { binding, replica, reconfigurable, certificateThread } = ringReplica(ctx, parts);
  return {
    bindings: [binding, tapestry.binding, ...parts.bindings], startup,
    status: () => ({
      view: replica.view, viewActive: replica.viewActive, seq: replica.lastExecuted, checkpoint: replica.stableSeq,
      primary: replica.config.members[replica.view % replica.n]?.id, executedRequests: replica.counters.executedRequests,
      drops: Object.fromEntries(replica.drops), ...tapestryStatus(), ...parts.status(),
      reconfiguration: reconfigurationStatus(reconfigurable),
      certificateThread: certificateThread ? { onThread: certificateThread.threadCount, inline: certificateThread.inlineCount } : 'inline',
    }),
    ready,
    onDescriptor: parts.onDescriptor,
    close: async () => certificateThread?.close(),
  };
}
