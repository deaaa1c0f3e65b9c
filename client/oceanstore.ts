/**
 * The SDK's entry point: `connect` to a cluster, then `create` or `open` objects.
 *
 * @example
 * import { connect } from 'oceanstore/client';
 * const store = await connect({ config: 'cluster-configs/local.json' });
 * const notes = await store.create('notes');
 * await notes.write(new TextEncoder().encode('hello'));
 * console.log(new TextDecoder().decode(await notes.read()));
 * await store.close();
 */
import { useMclBls } from '../runtime/mcl-bls.ts';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import type { Logger } from 'pino';
import { fromHex, toHex } from '../core/bytes.ts';
import { aguidOf, type Crypto } from '../core/crypto.ts';
import { checkArgument, ConfigError, InvalidArgumentError, UnavailableError } from '../core/errors.ts';
import { fanoutMaxDefault } from '../core/update/update.ts';
import { blockBytesDefault, blockBytesMax } from '../core/version/block.ts';
import { clusterPaths, loadClusterConfig } from '../runtime/cluster-config.ts';
import { currentRingOf, isLaterRing, loadDescriptor, watchDescriptorFile, type RingDescriptor } from '../runtime/cluster-keys.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { DescriptorGossip, gossipBinding } from '../runtime/descriptor-gossip.ts';
import { channels } from '../runtime/roles.ts';
import type { Effect } from '../core/machine.ts';
import type { ReplicaTrust } from '../replica/types.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import { ObjectHandle } from './object.ts';
import type { WriteResult } from './result.ts';
import { clusterViewOf, Session, type CallOptions } from './session.ts';
import { ringTrustOf } from './verify.ts';

export interface ConnectOptions {
  /** A cluster config file (its data dir holds the admin-signed ring descriptor). Default: OCEANSTORE_CONFIG or cluster-configs/local.json. */
  readonly config?: string;
  /** Or the ring descriptor itself (object or JSON file path), for clients without the config. */
  readonly descriptor?: RingDescriptor | string;
  /** The signing identity: an Identity, or an identity file path (created on first use). */
  readonly identity?: Identity | string;
  readonly log?: Logger;
  readonly signal?: AbortSignal;
  /** How long to wait for connections to 2f+1 ring servers. */
  readonly connectTimeoutMs?: number;
  /**
   * @internal tests (a proxy that must speak for this store): the ed25519 secret key its
   * connections are made under. Default: a fresh one per connect, so stores of one identity never
   * share a connection name (servers send replies to that name).
   */
  readonly transportKey?: Uint8Array;
}

export interface CreateOptions extends CallOptions {
  /** Data block size for this object (default 64 KiB). */
  readonly blockBytes?: number;
  /** Writers besides the owner (ed25519 public keys). */
  readonly writers?: readonly Uint8Array[];
}

/** A string open() takes for an AGUID rather than a name. */
const aguidHex = /^[0-9a-f]{64}$/;

/** How long connect waits, after reaching 2f+1 ring servers, for the rest of them. */
const allMembersGraceMs = 1000;

export class OceanStore {
  private nonceLast = Date.now() * 1000;
  private stopWatching: (() => void) | null = null;

  private constructor(
    private readonly session: Session,
    readonly identity: Identity,
    private readonly crypto: Crypto,
    private readonly trust: ReplicaTrust,
    private descriptor: RingDescriptor,
    private readonly gossip: DescriptorGossip,
  ) {}

  /** @internal use `connect`. */
  static async open(options: ConnectOptions): Promise<OceanStore> {
    const crypto = nodeCrypto;
    const { descriptor, path } = descriptorOf(options);
    const identity = typeof options.identity === 'object' ? options.identity : loadOrCreateIdentity(options.identity);
    const view = clusterViewOf(descriptor);
    // Nodes tell this client of a re-signed descriptor (runtime/descriptor-gossip.ts), so it follows
    // a replacement without the file; one it learns from the file it tells the nodes of.
    let session: Session | null = null;
    let store: OceanStore | null = null;
    const gossip = new DescriptorGossip({ crypto, descriptor, targets: () => session?.connected() ?? [] });
    const binding = gossipBinding(gossip, (event) => {
      if (event.kind === 'adopted') store?.adoptDescriptor(event.descriptor);
      else options.log?.warn({ from: event.from, reason: event.reason }, 'ring descriptor refused');
    });
    session = await Session.open(view, identity, crypto, options.log, [binding], options.transportKey);
    store = new OceanStore(session, identity, crypto, ringTrustOf(crypto, view.ringId, view.ringKey), descriptor, gossip);
    // A descriptor read from a file is followed: `cluster replace-node` re-signs it with the new
    // ring, and this client moves to it within a second (the admin key stays the one read now).
    if (path !== null) {
      const following = store;
      following.stopWatching = watchDescriptorFile(path, 1000, (next) => following.adoptDescriptor(next), (error) => options.log?.warn({ reason: error.message }, 'ring descriptor not taken'));
    }
    await store.waitForQuorum(options.connectTimeoutMs ?? 10_000, options.signal);
    return store;
  }

  /**
   * Moves this client to a re-signed descriptor's ring (after `cluster replace-node`), for clients
   * given the descriptor as an object (those given a file follow it by themselves). Returns false
   * if its ring is not later than the one in use; ConfigError if it is not signed by this ring's
   * admin key or names another ring.
   */
  adoptDescriptor(next: RingDescriptor): boolean {
    if (!isLaterRing(this.descriptor, next, this.crypto)) return false;
    this.descriptor = next;
    this.session.adoptRing(currentRingOf(next));
    // Tell the nodes too (a no-op when the news came from them).
    this.session.execute(channels.descriptor, (nowMs) => this.gossip.offer(next, nowMs) as Effect<unknown, unknown>[]);
    return true;
  }

  /** The ring servers this client sends updates to: the descriptor's ring, followed across `cluster replace-node`. */
  get ringMembers(): readonly string[] {
    return this.session.view.ring.map((m) => m.id);
  }

  /** This client's public key (hex): what an owner puts on an ACL to let it write. */
  get publicKeyHex(): string {
    return toHex(this.identity.publicKey);
  }

  /** The AGUID of `name` owned by `owner` (default: this client). */
  aguidOf(name: string, owner: Uint8Array = this.identity.publicKey): Uint8Array {
    return aguidOf(this.crypto, owner, name);
  }

  /**
   * Creates an empty object owned by this client.
   * @example const obj = await store.create('photos/cat.jpg', { blockBytes: 256 * 1024 });
   */
  async create(name: string, options: CreateOptions = {}): Promise<ObjectHandle> {
    checkArgument(typeof name === 'string' && name.length > 0 && name.length <= 256, 'name', 'a non-empty string of at most 256 characters');
    // open() (and the CLI) read 64 lowercase hex digits as an AGUID: such a name could be created
    // and never opened by name again (session-19 SDK review).
    checkArgument(!aguidHex.test(name), 'name', 'a name that is not 64 lowercase hex digits (open() reads those as an AGUID)');
    const blockBytes = options.blockBytes ?? blockBytesDefault;
    checkArgument(Number.isSafeInteger(blockBytes) && blockBytes >= 1 && blockBytes <= blockBytesMax, 'blockBytes', `an integer in 1..${blockBytesMax}`);
    const handle = this.handleOf(this.aguidOf(name));
    await handle.update(
      [{ predicates: [], actions: [{ kind: 'create', name, blockBytes, fanoutMax: fanoutMaxDefault, writerPublicKeys: options.writers ?? [] }] }],
      options,
    );
    handle.noteCreated(blockBytes);
    return handle;
  }

  /**
   * A handle on an existing object, by name (owned by this client or `owner`) or by AGUID.
   * @example const obj = store.open('notes'); const bytes = await obj.read();
   */
  open(nameOrAguid: string | Uint8Array, owner?: Uint8Array): ObjectHandle {
    if (nameOrAguid instanceof Uint8Array) {
      checkArgument(nameOrAguid.length === 32, 'aguid', '32 bytes');
      return this.handleOf(nameOrAguid);
    }
    checkArgument(typeof nameOrAguid === 'string' && nameOrAguid.length > 0, 'name', 'a non-empty string or a 32-byte AGUID');
    if (aguidHex.test(nameOrAguid) && owner === undefined) return this.handleOf(fromHex(nameOrAguid));
    return this.handleOf(this.aguidOf(nameOrAguid, owner));
  }

  async close(): Promise<void> {
    this.stopWatching?.();
    await this.session.close();
  }

  private handleOf(aguid: Uint8Array): ObjectHandle {
    return new ObjectHandle(aguid, this.session, this.identity, this.crypto, this.trust, () => this.nextUpdateNonce());
  }

  /**
   * Update nonces must increase per writer key across every store using it (an app and a CLI
   * call sharing one identity file): the clock in microseconds is a floor at every update, not
   * only at connect, or a store opened earlier went on below the nonces a later one used and every
   * update it sent was refused as a replay (session-19 SDK review).
   */
  private nextUpdateNonce(): number {
    this.nonceLast = Math.max(this.nonceLast + 1, Date.now() * 1000);
    return this.nonceLast;
  }

  /**
   * Waits for connections to 2f+1 ring servers. A cluster that is down fails within about a second
   * and a half (every ring address refusing TCP connections three rounds in a row), as
   * UnavailableError; a slow cluster (ports open, handshakes waiting on busy servers) gets the whole
   * timeout, also UnavailableError: it was a ConfigError after the whole timeout either way, 60 s
   * for a CLI call with the cluster down (session-22 review, finding 7).
   */
  private async waitForQuorum(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const need = 2 * this.session.view.f + 1;
    const ring = new Set(this.session.view.ring.map((m) => m.id));
    const reached = (): number => this.session.connected().filter((p) => ring.has(p)).length;
    const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
    const deadline = Date.now() + timeoutMs;
    const refusals = new RefusalWatch([...ring].map((id) => this.session.view.members.get(id)?.url).filter((u): u is string => u !== undefined));
    const failureNow = (): Error | null => {
      if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new UnavailableError('connect aborted');
      if (refusals.allRefused) return new UnavailableError(`no ring server is listening: ${refusals.describe()} refused connections ${RefusalWatch.rounds} times in a row; is the cluster up (npx oceanstore cluster status)?`);
      if (Date.now() > deadline) return new UnavailableError(`could not reach ${need} ring servers within ${timeoutMs} ms (${reached()} connected): is the cluster up and not overloaded (npx oceanstore cluster status)?`);
      return null;
    };
    try {
      while (reached() < need) {
        const failure = failureNow();
        if (failure) {
          await this.close();
          throw failure;
        }
        await pause();
      }
    } finally {
      refusals.stop();
    }
    // A ring server can only answer over a connection this client opened, and the certificate of
    // an update comes from one of them (the certifier): give the remaining ones a moment, so the
    // first update's certificate is not sent to a client still dialling its sender. A server that
    // is down costs a connect this much.
    const graceEnd = Math.min(deadline, Date.now() + allMembersGraceMs);
    while (reached() < ring.size && Date.now() < graceEnd && !signal?.aborted) await pause();
  }
}

/**
 * Probes the ring servers' addresses with plain TCP connects, a round every 500 ms, and notes when
 * every one of them refused (ECONNREFUSED: nothing listens) `rounds` rounds in a row. Any address
 * that accepts, times out or fails otherwise resets the count: only a cluster that is plainly not
 * running is given up on early.
 */
class RefusalWatch {
  static readonly rounds = 3;
  private refusedRounds = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly addresses: { host: string; port: number }[];

  constructor(urls: readonly string[]) {
    this.addresses = urls.map((u) => new URL(u)).map((u) => ({ host: u.hostname, port: Number(u.port) }));
    if (this.addresses.length > 0) this.round();
  }

  get allRefused(): boolean {
    return this.refusedRounds >= RefusalWatch.rounds;
  }

  describe(): string {
    return this.addresses.map((a) => `${a.host}:${a.port}`).join(', ');
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private round(): void {
    void Promise.all(this.addresses.map((a) => refuses(a.host, a.port))).then((refused) => {
      if (this.stopped) return;
      this.refusedRounds = refused.every(Boolean) ? this.refusedRounds + 1 : 0;
      this.timer = setTimeout(() => this.round(), 500);
    });
  }
}

/** Whether a TCP connect to host:port is refused (true), rather than accepted or anything else (false). */
function refuses(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (refused: boolean): void => {
      socket.destroy();
      resolve(refused);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(false));
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code === 'ECONNREFUSED'));
  });
}

/**
 * Connects to a cluster and returns the SDK handle.
 * @example const store = await connect({ config: 'cluster-configs/local.json', identity: './me.json' });
 */
export async function connect(options: ConnectOptions = {}): Promise<OceanStore> {
  // Certificate checks with the WebAssembly BLS engine (same answers, ~5x faster). Compiling it
  // overlaps with connecting (handshakes wait on the servers); no certificate is checked before
  // connect returns, and until the engine is in, a check would still be right, only slower.
  const opening = OceanStore.open(options);
  const engine = useMclBls();
  engine.catch(() => undefined); // awaited below, once the store is open
  const store = await opening;
  try {
    await engine;
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** The descriptor to start from, and the file it came from (null for an object). */
function descriptorOf(options: ConnectOptions): { descriptor: RingDescriptor; path: string | null } {
  if (options.descriptor !== undefined) {
    if (typeof options.descriptor !== 'string') return { descriptor: options.descriptor, path: null };
    try {
      return { descriptor: JSON.parse(readFileSync(options.descriptor, 'utf8')) as RingDescriptor, path: options.descriptor };
    } catch (error) {
      throw new ConfigError(`cannot read ring descriptor ${options.descriptor}: ${(error as Error).message}`);
    }
  }
  const file = options.config ?? process.env.OCEANSTORE_CONFIG ?? 'cluster-configs/local.json';
  const config = loadClusterConfig(file);
  return { descriptor: loadDescriptor(config, nodeCrypto), path: clusterPaths(config).descriptor };
}

export type { WriteResult };
export { InvalidArgumentError };
