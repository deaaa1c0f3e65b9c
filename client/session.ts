/**
 * One client's live connection to a cluster: the authenticated ws transport (as a client), the
 * ring protocol's client core (ring/client.ts: signed requests, f+1 matching signed replies,
 * then the threshold certificate) and a small read core for tree members. Both cores run under
 * the runtime's MachineHost exactly as on servers; this file only turns their output events into
 * promises with deadlines and AbortSignals.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { fromHex, toHex } from '../core/bytes.ts';
import { encode } from '../core/codec.ts';
import { signerOf, type Crypto } from '../core/crypto.ts';
import { SessionClosedError, TimeoutError } from '../core/errors.ts';
import type { Effect, Machine } from '../core/machine.ts';
import { MemoryKvStore } from '../core/store.ts';
import { bguidOf } from '../core/version/block.ts';
import { RingClient } from '../ring/client.ts';
import { objectCertificateBinding } from '../ring/object-service.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../ring/codec.ts';
import type { RingMember } from '../ring/config.ts';
import type { RingMessage } from '../ring/messages.ts';
import type { RingOutput } from '../ring/outputs.ts';
import { PublicKeyVerifier } from '../core/threshold/signing.ts';
import { decodeTreeMessage, encodeTreeMessage, treeLimits, type TreeMessage } from '../replica/messages.ts';
import { currentRingOf, type RingDescriptor } from '../runtime/cluster-keys.ts';
import { clientNameOf } from '../runtime/handshake.ts';
import { quietLogger } from './quiet-logger.ts';
import { MachineHost, type Binding, type DurableKvStore } from '../runtime/machine-host.ts';
import { channels } from '../runtime/roles.ts';
import { Transport, type PeerAddress } from '../runtime/transport.ts';
import type { Identity } from './identity.ts';

export type ReadRequest = Extract<TreeMessage, { type: 'read' }>;
export type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

/** What a client needs to know of a cluster: taken from the admin-signed ring descriptor. */
export interface ClusterView {
  readonly ringId: Uint8Array;
  readonly ringPublicKey: Uint8Array;
  readonly commitments: readonly Uint8Array[];
  readonly f: number;
  readonly ring: readonly RingMember[];
  /** Secondary replicas, in config order (the SDK reads from them first). */
  readonly secondaries: readonly string[];
  readonly members: ReadonlyMap<string, PeerAddress>;
  /**
   * The ring public key parsed once (a G2 point check and pairing precomputes, ~40 ms of a CLI
   * call's start): the ring client and the read trust share it.
   */
  readonly ringKey: PublicKeyVerifier;
}

export function clusterViewOf(descriptor: RingDescriptor): ClusterView {
  // The ring now (after a membership change, the admin-signed list), not the roles of `cluster init`.
  const ring = currentRingOf(descriptor);
  return {
    ringId: fromHex(descriptor.ringId),
    ringPublicKey: fromHex(descriptor.ringPublicKey),
    commitments: descriptor.commitments.map(fromHex),
    f: descriptor.f,
    ring,
    secondaries: descriptor.nodes.filter((n) => n.role === 'replica').map((n) => n.name),
    members: new Map(descriptor.nodes.map((n) => [n.name, { publicKey: fromHex(n.publicKey), url: n.url }])),
    ringKey: new PublicKeyVerifier(fromHex(descriptor.ringPublicKey)),
  };
}

/** The client keeps no durable state of its own: the nonce floor comes from the clock (see below). */
class VolatileStore extends MemoryKvStore implements DurableKvStore {
  readonly dirty = false;
  async flush(): Promise<void> {}
}

type ClientEvent =
  | RingOutput
  | { kind: 'block-stored'; from: string; bguidHex: string }
  | { kind: 'read-reply'; from: string; reply: ReadReply };

/** A block upload's first resend waits this long; each next one twice as long, at most uploadResendMsMax. */
export const uploadResendMsMin = 5_000;
const uploadResendMsMax = 30_000;

/**
 * The ring client plus block uploads: each is sent again to the members that have not said they
 * stored it, with backoff, until the session forgets it (enough acks, or its caller gave up). It
 * was sent once: a put-block lost with a connection cut mid-upload was never acknowledged, and
 * the write waited out its whole deadline while the cluster was up (session-21 soak).
 */
export class RingChannelCore implements Machine<RingMessage, ClientEvent> {
  private readonly uploads = new Map<string, { message: RingMessage; waiting: Set<string>; nextMs: number; intervalMs: number }>();

  constructor(readonly client: RingClient) {}

  /** Sends `block` to `members` and keeps sending it to those that do not acknowledge it. */
  upload(bguidHex: string, block: Uint8Array, members: readonly string[], nowMs: number): Effect<RingMessage, ClientEvent>[] {
    // One message object for every ring server: the host encodes (and frames) it once.
    const message: RingMessage = { kind: 'put-block', block };
    this.uploads.set(bguidHex, { message, waiting: new Set(members), nextMs: nowMs + uploadResendMsMin, intervalMs: uploadResendMsMin });
    return members.map((to) => ({ kind: 'send', to, message }));
  }

  forget(bguidHex: string): Effect<RingMessage, ClientEvent>[] {
    this.uploads.delete(bguidHex);
    return [];
  }

  onMessage(from: string, message: RingMessage, nowMs: number): Effect<RingMessage, ClientEvent>[] {
    if (message.kind === 'block-stored') {
      const bguidHex = toHex(message.bguid);
      this.uploads.get(bguidHex)?.waiting.delete(from);
      return [{ kind: 'output', event: { kind: 'block-stored', from, bguidHex } }];
    }
    return this.client.onMessage(from, message, nowMs);
  }

  onTick(nowMs: number): Effect<RingMessage, ClientEvent>[] {
    const effects = this.client.onTick(nowMs);
    for (const upload of this.uploads.values()) {
      if (nowMs < upload.nextMs) continue;
      upload.intervalMs = Math.min(2 * upload.intervalMs, uploadResendMsMax);
      upload.nextMs = nowMs + upload.intervalMs;
      for (const to of upload.waiting) effects.push({ kind: 'send', to, message: upload.message });
    }
    return effects;
  }
}

/** Reads go straight out; replies come back as events (verification is the caller's). */
class ReadChannelCore implements Machine<TreeMessage, ClientEvent> {
  onMessage(from: string, message: TreeMessage): Effect<TreeMessage, ClientEvent>[] {
    if (message.type !== 'read-reply') return [];
    return [{ kind: 'output', event: { kind: 'read-reply', from, reply: message } }];
  }

  onTick(): Effect<TreeMessage, ClientEvent>[] {
    return [];
  }
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
}

export interface Submitted {
  readonly seq: number;
  readonly nonce: number;
  /** The service's result bytes, agreed by f+1 replicas. */
  readonly result: Uint8Array;
  /** Resolves with the certified statement when the threshold certificate arrives (and verifies). */
  readonly certified: Promise<Uint8Array>;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

const submitTimeoutMsDefault = 30_000;
const readTimeoutMsDefault = 10_000;
const certificateTimeoutMs = 60_000;
/** Early certificates kept (one request is outstanding at a time, so one is the usual most). */
const earlyCertificatesMax = 64;
const dialSettleMsMax = 1_500;

export class Session {
  readonly name: string;
  readonly publicKey: Uint8Array;
  private readonly ringCore: RingChannelCore;
  private readonly submitted: Waiter<Submitted>[] = [];
  private readonly certificateWaiters = new Map<number, Waiter<Uint8Array>>();
  /**
   * Certified statements that arrived before their update completed (the ring client takes a
   * certificate that beats the f+1-th reply and reports it first), by nonce, oldest first; the
   * 'completed' event takes its own. Bounded: each is a statement of a few hundred bytes.
   */
  private readonly earlyCertificates = new Map<number, Uint8Array>();
  private readonly blockWaiters = new Map<string, { acks: Set<string>; need: number; waiter: Waiter<void> }>();
  private readonly blockUploads = new Map<string, Promise<Uint8Array>>();
  private readonly readWaiters = new Map<number, { to: string; waiter: Waiter<ReadReply> }>();
  private readIdNext = 1;
  private readonly dialed = new Set<string>();
  private closed = false;

  private currentView: ClusterView;

  private constructor(
    view: ClusterView,
    readonly crypto: Crypto,
    private readonly transport: Transport,
    private readonly host: MachineHost,
    ringClient: RingClient,
    publicKey: Uint8Array,
  ) {
    this.currentView = view;
    this.name = transport.name;
    this.publicKey = publicKey;
    this.ringCore = new RingChannelCore(ringClient);
  }

  /** `extra`: more cores on the session's host (the SDK's descriptor gossip), started with it. */
  static async open(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    view: ClusterView, identity: Identity, crypto: Crypto, log: Logger = quietLogger(), extra: readonly Binding<any, any>[] = [],
    transportKey: Uint8Array = new Uint8Array(randomBytes(32)),
  ): Promise<Session> {
    // Connections are made under a key of this session's own, not the identity's: a server names
    // a client connection after its key and sends replies to that name, so two sessions of one
    // identity (an app and a CLI call) would take each other's replies. Updates are still signed
    // by the identity; the connection key proves nothing and is never trusted.
    const name = clientNameOf(crypto, crypto.ed25519PublicKey(transportKey));
    const transport = new Transport({
      name,
      secretKey: transportKey,
      crypto,
      members: view.members,
      frameBytesMax: Math.max(ringFrameBytesMax, treeLimits.messageBytesMax) + 1,
      log,
    });
    const store = new VolatileStore();
    // Nonces must increase across sessions of one identity; the clock in microseconds gives a
    // floor no earlier session can have reached (it sent at most one request per microsecond).
    store.put('client/nonce', encode(Date.now() * 1000));
    const signer = signerOf(crypto, identity.secretKey);
    const ringKey = view.ringKey;
    const ringClient = new RingClient(
      { nodeId: name, store, random: { int: () => 0, float: () => 0, bytes: (n) => new Uint8Array(n) }, nowMs: Date.now() },
      { members: view.ring, f: view.f, crypto, signer, ringId: view.ringId, certificateVerifier: { verify: (message, signature) => ringKey.verify(message, signature) }, retransmitMs: 500,
        // Another store with this identity may have sent requests since this one connected.
        nonceFloor: () => Date.now() * 1000,
        // Every frame from a ring server is tagged under keys bound to its identity (runtime/transport.ts).
        channelIntegrity: true,
        // A certificate counts only for the update whose digest its statement carries.
        certificateBinding: objectCertificateBinding(crypto) },
    );
    const host = new MachineHost(name, transport, store, log);
    const session = new Session(view, crypto, transport, host, ringClient, identity.publicKey);
    host.add<RingMessage, ClientEvent>({
      channel: channels.ring,
      protocol: 'ring',
      machine: session.ringCore,
      decode: decodeRingMessage,
      encode: encodeRingMessage,
      frameBytesMax: ringFrameBytesMax,
      tickMs: 50,
      onOutput: (event) => session.onEvent(event),
    });
    host.add<TreeMessage, ClientEvent>({
      channel: channels.replica,
      protocol: 'replica',
      machine: new ReadChannelCore(),
      decode: decodeTreeMessage,
      encode: encodeTreeMessage,
      frameBytesMax: treeLimits.messageBytesMax,
      tickMs: 1000,
      onOutput: (event) => session.onEvent(event),
    });
    for (const binding of extra) host.add(binding);
    await transport.start();
    host.start();
    for (const member of view.ring) session.connectOnce(member.id);
    return session;
  }

  /** The cluster as this session sees it: the ring changes when adoptRing() is told of a replacement. */
  get view(): ClusterView {
    return this.currentView;
  }

  /**
   * The ring's members changed (the caller checked the admin-signed descriptor that says so):
   * updates go to, and replies count from, the new members; the update in flight is resent to all.
   */
  adoptRing(ring: readonly RingMember[]): void {
    this.checkOpen();
    const before = this.currentView.ring.map((m) => m.id);
    this.currentView = { ...this.currentView, ring };
    this.host.execute(channels.ring, () => this.ringCore.client.setMembers(ring) as Effect<unknown, unknown>[]);
    for (const member of ring) if (!before.includes(member.id)) this.connectOnce(member.id);
    for (const name of before) {
      if (ring.some((m) => m.id === name) || this.currentView.secondaries.includes(name)) continue;
      this.dialed.delete(name);
      this.transport.disconnect(name);
    }
  }

  /** Runs a step of the core on `channel` (one of `extra`'s, say) under the session's host. */
  execute(channel: number, run: (nowMs: number) => Effect<unknown, unknown>[]): void {
    this.checkOpen();
    this.host.execute(channel, run);
  }

  /** Names of members with an open, authenticated connection. */
  connected(): string[] {
    return this.transport.connectedPeers();
  }

  /** Orders `operation` through the ring; resolves on f+1 matching signed replies. */
  submit(operation: Uint8Array, options: CallOptions = {}): Promise<Submitted> {
    this.checkOpen();
    return withDeadline(options, submitTimeoutMsDefault, 'ring update', (waiter) => {
      this.submitted.push(waiter);
      this.host.execute(channels.ring, (nowMs) => this.ringCore.client.submit(operation, nowMs) as Effect<unknown, unknown>[]);
      return () => {
        const at = this.submitted.indexOf(waiter);
        if (at < 0) return;
        // Completions come in submission order, one per update not given up: a waiter whose update
        // is given up leaves the list; one whose completion may already be on its way (held for a
        // flush) stays as a placeholder for it.
        let abandoned = false;
        this.host.execute(channels.ring, (nowMs) => {
          const effects = this.ringCore.client.abandon(operation, nowMs);
          abandoned = effects !== null;
          return (effects ?? []) as Effect<unknown, unknown>[];
        });
        if (abandoned) this.submitted.splice(this.submitted.indexOf(waiter), 1);
        else this.submitted.splice(at, 1, { resolve: () => undefined, reject: () => undefined });
      };
    });
  }

  /**
   * Pushes a data block to every ring server; resolves when `acksNeeded` of them confirm they
   * stored it (each re-hashes it first). Blocks are content-addressed, so a retry is harmless.
   */
  putBlock(block: Uint8Array, acksNeeded: number, options: CallOptions = {}): Promise<Uint8Array> {
    this.checkOpen();
    const bguid = bguidOf(this.crypto, 'data', block);
    const key = toHex(bguid);
    // Equal blocks share one upload (and one BGUID): a second waiter would never see its own acks.
    const inFlight = this.blockUploads.get(key);
    if (inFlight) return inFlight;
    const upload = withDeadline(options, submitTimeoutMsDefault, 'block upload', (waiter: Waiter<void>) => {
      this.blockWaiters.set(key, { acks: new Set(), need: acksNeeded, waiter });
      const members = this.view.ring.map((m) => m.id);
      this.host.execute(channels.ring, (nowMs) => this.ringCore.upload(key, block, members, nowMs) as Effect<unknown, unknown>[]);
      return () => this.blockWaiters.delete(key);
    })
      .then(() => bguid)
      .finally(() => {
        this.blockUploads.delete(key);
        if (!this.closed) this.host.execute(channels.ring, () => this.ringCore.forget(key) as Effect<unknown, unknown>[]);
      });
    this.blockUploads.set(key, upload);
    return upload;
  }

  /** Sends one read to tree member `to` and resolves with its (unverified) reply. */
  read(to: string, request: Omit<ReadRequest, 'type' | 'requestId'>, options: CallOptions = {}): Promise<ReadReply> {
    this.checkOpen();
    const requestId = this.readIdNext++;
    const message: ReadRequest = { type: 'read', requestId, ...request };
    return withDeadline(options, readTimeoutMsDefault, `read from ${to}`, (waiter) => {
      this.readWaiters.set(requestId, { to, waiter });
      this.connectOnce(to);
      this.host.execute(channels.replica, () => [{ kind: 'send', to, message }]);
      return () => this.readWaiters.delete(requestId);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.host.stop();
    await this.settleDials();
    await this.transport.stop();
    const closedError = new SessionClosedError('the store was closed');
    for (const w of this.submitted.splice(0)) w.reject(closedError);
    for (const w of this.certificateWaiters.values()) w.reject(closedError);
    for (const w of this.blockWaiters.values()) w.waiter.reject(closedError);
    for (const w of this.readWaiters.values()) w.waiter.reject(closedError);
  }

  private onEvent(event: ClientEvent): void {
    switch (event.kind) {
      case 'completed': {
        const nonce = event.nonce;
        const early = this.earlyCertificates.get(nonce);
        this.earlyCertificates.delete(nonce);
        const certified = early ? Promise.resolve(early) : new Promise<Uint8Array>((resolve, reject) => {
          // A certificate that never comes (ring lost its shares, session cut) must not hang a caller.
          const timer = setTimeout(() => {
            this.certificateWaiters.delete(nonce);
            reject(new TimeoutError(`certificate for update ${nonce}: none within ${certificateTimeoutMs} ms`));
          }, certificateTimeoutMs);
          timer.unref();
          const settle = <T>(f: (v: T) => void) => (v: T): void => {
            clearTimeout(timer);
            f(v);
          };
          this.certificateWaiters.set(nonce, { resolve: settle(resolve), reject: settle(reject) });
        });
        certified.catch(() => undefined); // nobody may be waiting for it
        this.submitted.shift()?.resolve({ seq: event.seq, nonce: event.nonce, result: event.result, certified });
        return;
      }
      case 'certified': {
        const waiter = this.certificateWaiters.get(event.nonce);
        if (waiter) {
          this.certificateWaiters.delete(event.nonce);
          waiter.resolve(event.statement);
          return;
        }
        if (this.earlyCertificates.size >= earlyCertificatesMax) this.earlyCertificates.delete(this.earlyCertificates.keys().next().value as number);
        this.earlyCertificates.set(event.nonce, event.statement);
        return;
      }
      case 'block-stored': {
        const pending = this.blockWaiters.get(event.bguidHex);
        if (!pending || !this.view.ring.some((m) => m.id === event.from)) return;
        pending.acks.add(event.from);
        if (pending.acks.size >= pending.need) {
          this.blockWaiters.delete(event.bguidHex);
          pending.waiter.resolve();
        }
        return;
      }
      case 'read-reply': {
        const pending = this.readWaiters.get(event.reply.requestId);
        // Only the member asked may answer: a reply from anyone else is ignored, not trusted.
        if (!pending || pending.to !== event.from) return;
        this.readWaiters.delete(event.reply.requestId);
        pending.waiter.resolve(event.reply);
        return;
      }
      default:
        return;
    }
  }

  /**
   * Asks the transport for a member's connection once per session: it keeps a member link up by
   * itself (reconnecting on close), and asking again while a dial is still in its handshake would
   * open a second socket that replaces the first, whose close then dials again, forever.
   */
  private connectOnce(member: string): void {
    if (this.dialed.has(member)) return;
    this.dialed.add(member);
    this.transport.connect(member);
  }

  /**
   * Transport.stop() closes attached links but not a dial still in its handshake, which attaches
   * afterwards and keeps the process alive. So close first lets handshakes in flight finish
   * (bounded: a member that is down does not hold it up for long).
   */
  private async settleDials(): Promise<void> {
    const deadlineMs = Date.now() + dialSettleMsMax;
    const pending = (): boolean => {
      const open = new Set(this.transport.connectedPeers());
      return [...this.dialed].some((m) => !open.has(m));
    };
    while (pending() && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  private checkOpen(): void {
    if (this.closed) throw new SessionClosedError('this store is closed; connect again');
  }
}

/**
 * Runs `start` with a waiter that settles once: on its own result, on the deadline (TimeoutError)
 * or on the caller's abort. `start` returns a cleanup that forgets the waiter.
 */
export function withDeadline<T>(
  options: CallOptions,
  defaultTimeoutMs: number,
  what: string,
  start: (waiter: Waiter<T>) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (options.signal?.aborted) return reject(abortError(options.signal, what));
    let done = false;
    const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
    const finish = (settle: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const cleanup = start({ resolve: (v) => finish(() => resolve(v)), reject: (e) => finish(() => reject(e)) });
    const timer = setTimeout(() => {
      cleanup();
      finish(() => reject(new TimeoutError(`${what}: no answer within ${timeoutMs} ms (is the cluster up?)`)));
    }, timeoutMs);
    const onAbort = (): void => {
      cleanup();
      finish(() => reject(abortError(options.signal!, what)));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal, what: string): Error {
  return signal.reason instanceof Error ? signal.reason : new TimeoutError(`${what}: aborted`);
}

