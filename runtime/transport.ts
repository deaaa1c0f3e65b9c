/**
 * Authenticated peer transport over WebSocket: one persistent connection per peer pair, binary
 * frames, a per-frame size limit, a bounded send queue per peer, reconnect with backoff.
 *
 * Both ends prove their identity in the handshake (handshake.ts) and agree on frame keys there;
 * every frame after it carries a tag (frame-auth.ts), so a frame delivered to the handler came from
 * the named peer, unaltered and in order. A frame whose tag fails cuts the connection (its stream
 * can no longer be trusted); the dialer reconnects with fresh keys.
 *
 * Who dials whom: between two config members, the one whose name sorts first dials, so exactly
 * one connection exists per pair and there is no duplicate race to resolve. Clients always dial.
 * Frames sent to a peer that is not connected wait in its bounded queue; the protocols above
 * tolerate loss (they retransmit), so a full queue drops new frames and counts them rather than
 * growing without bound.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { assert } from '../core/assert.ts';
import { asBytes, bytesEqual } from '../core/bytes.ts';
import { ConfigError } from '../core/errors.ts';
import { signerOf, type Crypto, type Signer } from '../core/crypto.ts';
import { deriveFrameKeys, FrameOpener, FrameSealer, newEphemeral, tagBytes } from './frame-auth.ts';
import {
  decodeChallenge,
  decodeHello,
  decodeWelcome,
  encodeChallenge,
  encodeHello,
  encodeWelcome,
  frameKeySalt,
  handshakeBytesMax,
  judgeHello,
  judgeWelcome,
  nonceBytes,
  signHello,
  signWelcome,
  type Challenge,
  type Hello,
} from './handshake.ts';
import { LogLimiter } from './log.ts';
import { PeerLink, type LinkLimits } from './peer-link.ts';

export interface PeerAddress {
  readonly publicKey: Uint8Array;
  /** ws://host:port; absent for a member this node never dials. */
  readonly url?: string;
}

export interface TransportOptions {
  readonly name: string;
  readonly secretKey: Uint8Array;
  readonly crypto: Crypto;
  /** Every config member (including this node if it is one), by name. */
  readonly members: ReadonlyMap<string, PeerAddress>;
  /** Listen address; absent for a pure client. */
  readonly listen?: { host: string; port: number };
  /** Whether non-members may connect (as clients). */
  readonly acceptClients?: boolean;
  /**
   * Most client sockets connected at once; more are refused. Each may make this node hold about
   * 2 × frameBytesMax + batchBytesMax (an unfinished message and a held batch), so this is the
   * clients' memory budget (docs/runtime.md). Default 32.
   */
  readonly clientsMax?: number;
  /**
   * When clientsMax sockets are connected, a new client takes the slot of the one that has
   * delivered no frame for longest, if that is at least this long (ms); otherwise it is refused.
   * Default 30,000, well above the SDK's descriptor announce period (10 s), so a store that is
   * only waiting keeps its slot.
   */
  readonly clientIdleMsMin?: number;
  readonly frameBytesMax: number;
  readonly limits?: Partial<LinkLimits>;
  readonly handshakeTimeoutMs?: number;
  /** Most accepted sockets still in their handshake at once; a newcomer beyond it pushes the oldest out. Default 128. */
  readonly handshakingMax?: number;
  readonly reconnectMsMin?: number;
  readonly reconnectMsMax?: number;
  /** Ping period (0 = off). Default 5000. */
  readonly heartbeatMs?: number;
  /** A peer that answers no ping for this many periods is disconnected. Default 3. */
  readonly heartbeatPeriodsMax?: number;
  readonly log: Logger;
}

/** An authenticated connection as its receiving side sees it. */
interface Connection {
  readonly peer: string;
  readonly opener: FrameOpener;
  readonly isClient: boolean;
  /** Messages ws has delivered on it: a message still unfinished at two checks with none in between is one message. */
  messagesIn: number;
  /** Since when (performance.now()) a message has been unfinished without progress, as of `messagesIn` and the bytes held then, or null. */
  unfinished: { sinceMs: number; messagesIn: number; bytes: number } | null;
  /** When (performance.now()) it was accepted or last delivered a frame: a full node evicts the client idle longest. */
  lastFrameMs: number;
}

export interface FrameInfo {
  readonly isClient: boolean;
}
export type FrameHandler = (from: string, frame: Uint8Array, info: FrameInfo) => void;

export interface TransportCounters {
  framesIn: number;
  framesOut: number;
  bytesIn: number;
  bytesOut: number;
  framesOversized: number;
  /** Connections cut for their frames: a tag that failed (altered, injected, replayed or reordered in flight), a batch over its limit or left untagged. */
  framesBadTag: number;
  framesDroppedQueueFull: number;
  /**
   * Frames for a peer this side neither is connected to nor can dial: a client not connected here
   * (yet, or any more). A ring server's replies to a client whose connection is still opening are
   * lost this way (session 29).
   */
  framesNoRoute: number;
  handshakesRefused: number;
  handshakesAccepted: number;
  /** Idle client sockets closed to make room for a new client (close 4002). */
  clientsEvicted: number;
  /** Sockets closed before their WebSocket upgrade: too slow, or pushed out by newer ones. */
  upgradesCut: number;
}

/** 32 × ~132 MiB (ring and archive servers cap a frame at 64 MiB) is ~4 GiB at worst. */
export const clientsMaxDefault = 32;
const clientIdleMsMinDefault = 30_000;
/** Close codes: a refused handshake, and an idle client's socket given to a newcomer. */
export const closeCodes = { refused: 4001, evictedIdle: 4002 } as const;
const defaultLimits: LinkLimits = { queueFramesMax: 8192, queueBytesMax: 64 * 2 ** 20, bufferedBytesMax: 4 * 2 ** 20 };
/**
 * A client's replies wait in a smaller queue than a member's frames: enough for a stream's whole
 * read-ahead (4 chunks of 8 MiB), and a client that stops reading is held to it (the send side of
 * the clients' memory budget, docs/runtime.md).
 */
const clientQueueBytesMax = 32 * 2 ** 20;

export class Transport {
  private readonly signer: Signer;
  private readonly memberKeys = new Map<string, Uint8Array>();
  private readonly links = new Map<string, PeerLink>();
  private readonly clientNames = new Set<string>();
  private readonly dialTimers = new Map<string, NodeJS.Timeout>();
  /** Dialled sockets still in their handshake: stop() must end them too, or they keep the process alive. */
  private readonly handshaking = new Set<WebSocket>();
  /** Accepted sockets still in their handshake: bounded (handshakingMax), since they have proved nothing. */
  private readonly accepting = new Set<WebSocket>();
  /** Peers with a dialled socket in its handshake: a second dial would replace the first when both complete, whose close redials, forever. */
  private readonly dialing = new Set<string>();
  /** Peers disconnect() let go: not redialled until a send or connect names them again. */
  private readonly dropped = new Set<string>();
  /** Authenticated connections and their frame openers (for the held-batch and unfinished-message deadlines). */
  private readonly openers = new Map<WebSocket, Connection>();
  /** Accepted client sockets not yet closed: clientsMax bounds these, not client names (one key may open many). */
  private readonly clientSockets = new Set<WebSocket>();
  /** TCP connections not yet upgraded to WebSocket, with their deadline (bounded like `accepting`). */
  private readonly upgrading = new Map<Socket, NodeJS.Timeout>();
  private server: WebSocketServer | null = null;
  private httpServer: HttpServer | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private handler: FrameHandler = () => undefined;
  /** What a peer's input makes us log (refused handshakes, oversized messages, cuts): a few lines per peer and reason, then a count. */
  private readonly peerLog: LogLimiter;
  private stopped = false;
  /** A member is a node whose name and key are in the config; anything else is a client and always dials. */
  private readonly isMember: boolean;
  readonly counters: TransportCounters = {
    framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0,
    framesOversized: 0, framesBadTag: 0, framesDroppedQueueFull: 0, framesNoRoute: 0, handshakesRefused: 0, handshakesAccepted: 0,
    clientsEvicted: 0, upgradesCut: 0,
  };

  constructor(private readonly options: TransportOptions) {
    this.signer = signerOf(options.crypto, options.secretKey);
    this.peerLog = new LogLimiter(options.log);
    for (const [name, peer] of options.members) this.memberKeys.set(name, peer.publicKey);
    const ownKey = this.memberKeys.get(options.name);
    this.isMember = ownKey !== undefined && bytesEqual(ownKey, this.signer.publicKey);
  }

  get name(): string {
    return this.options.name;
  }

  /** The port listened on (after start; useful with port 0), or null for a pure client. */
  get port(): number | null {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address.port : null;
  }

  onFrame(handler: FrameHandler): void {
    this.handler = handler;
  }

  /** Starts listening (if configured) and dialing the members this node is responsible for. */
  async start(): Promise<void> {
    const listen = this.options.listen;
    if (listen) {
      // A socket starts limited to handshake messages (raised once its peer has proved its key):
      // ws checks a message's declared length before buffering it, so a peer that proved nothing
      // can make us hold no more than this.
      // The HTTP server is ours, not ws's default: a TCP connection that never finishes its
      // upgrade request held a file descriptor for Node's 60 s header timeout, with no bound on
      // how many (600 idle connections kept members out of a node limited to 512 descriptors).
      const http = createServer((_request, response) => response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only\n'));
      http.on('connection', (socket: Socket) => this.admitUpgrade(socket));
      http.on('upgrade', (request: { socket: Socket }) => this.upgraded(request.socket));
      const server = new WebSocketServer({ server: http, maxPayload: handshakeBytesMax, perMessageDeflate: false });
      this.httpServer = http;
      this.server = server;
      server.on('connection', (ws, request) => this.accept(ws, request.socket.remoteAddress ?? 'unknown'));
      // ws re-emits the HTTP server's errors on its own server: without a listener there from the
      // start, a port in use ended the process with an unhandled 'error' event and a stack trace.
      let listening = false;
      server.on('error', (error) => {
        if (listening) this.options.log.error({ err: error }, 'ws server error');
      });
      await new Promise<void>((resolve, reject) => {
        http.once('listening', resolve);
        http.once('error', (error: NodeJS.ErrnoException) =>
          reject(error.code === 'EADDRINUSE' ? new ConfigError(`cannot listen on ${listen.host}:${listen.port}: the port is in use (is this node already running?)`) : error),
        );
        http.listen(listen.port, listen.host);
      });
      listening = true;
      http.on('error', (error) => this.options.log.error({ err: error }, 'ws server error'));
    }
    const heartbeatMs = this.options.heartbeatMs ?? 5000;
    if (heartbeatMs > 0) {
      this.heartbeatTimer = setInterval(() => {
        for (const link of this.links.values()) {
          if (link.heartbeat(this.options.heartbeatPeriodsMax ?? 3)) this.options.log.warn({ peer: link.peer }, 'peer silent for several heartbeat periods; connection cut');
        }
        // A sender tags its frames at the end of the turn that wrote them: a batch still untagged as
        // long after as a silent peer is tolerated is a peer holding our memory hostage (frames it
        // never vouches for). Not one period: after a long stall of this loop, timers run before
        // the socket read that holds the tag.
        const nowMs = performance.now();
        const heldMsMax = heartbeatMs * (this.options.heartbeatPeriodsMax ?? 3);
        for (const [ws, connection] of this.openers) {
          const { peer, opener } = connection;
          if (opener.heldSinceMs !== null && nowMs - opener.heldSinceMs > heldMsMax) this.cut(ws, peer, 'frames held without a tag for several heartbeat periods; connection cut');
          else if (connection.isClient && messageStalled(ws, connection, nowMs, heldMsMax)) this.cut(ws, peer, 'a message left unfinished for several heartbeat periods; connection cut');
        }
      }, heartbeatMs);
      this.heartbeatTimer.unref();
    }
    if (this.isMember) {
      for (const [peer, address] of this.options.members) if (peer > this.name && address.url) this.dial(peer, 0);
    }
  }

  /** Queues `frame` for `to`. False if it was dropped (queue full, or unknown peer). */
  send(to: string, frame: Uint8Array): boolean {
    if (this.stopped) return false;
    this.dropped.delete(to);
    let link = this.links.get(to);
    if (!link) {
      const address = this.options.members.get(to);
      if (!address) {
        this.counters.framesNoRoute += 1; // a client not connected here, or a name we never knew
        return false;
      }
      link = this.linkOf(to);
    }
    // A link kept across a close this side does not redial by itself (evicted as idle, 4002, or
    // let go by disconnect()) is dialled again now; dial() does nothing if a dial is under way.
    if (!link.isOpen && this.shouldDial(to)) this.dial(to, 0);
    const queued = link.send(frame);
    if (!queued) this.counters.framesDroppedQueueFull += 1;
    return queued;
  }

  /** Opens (if this side dials it) the connection to `peer` ahead of the first frame. */
  connect(peer: string): void {
    if (this.stopped || !this.options.members.has(peer)) return;
    this.dropped.delete(peer);
    this.linkOf(peer);
    if (this.shouldDial(peer) && !this.links.get(peer)!.isOpen) this.dial(peer, 0);
  }

  /**
   * Closes the connection to `peer` and stops redialling it (a ring member that was replaced),
   * until the next send or connect names it again.
   */
  disconnect(peer: string): void {
    this.dropped.add(peer);
    const timer = this.dialTimers.get(peer);
    if (timer) clearTimeout(timer);
    this.dialTimers.delete(peer);
    this.links.get(peer)?.close();
    this.links.delete(peer);
  }

  /** Names with an authenticated, open connection right now. */
  connectedPeers(): string[] {
    return [...this.links.entries()].filter(([, l]) => l.isOpen).map(([n]) => n).sort();
  }

  isClient(name: string): boolean {
    return this.clientNames.has(name);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    for (const timer of this.dialTimers.values()) clearTimeout(timer);
    this.dialTimers.clear();
    for (const link of this.links.values()) link.close();
    for (const ws of this.handshaking) ws.terminate();
    this.handshaking.clear();
    this.accepting.clear();
    this.clientSockets.clear();
    this.peerLog.flush();
    for (const [socket, timer] of this.upgrading) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.upgrading.clear();
    const server = this.server;
    if (server) {
      for (const ws of server.clients) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const http = this.httpServer;
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }

  /**
   * A TCP connection has until the handshake timeout to finish its WebSocket upgrade, and at most
   * handshakingMax wait at once; a newcomer beyond that pushes the oldest out (as in accept).
   */
  private admitUpgrade(socket: Socket): void {
    if (this.stopped) return void socket.destroy();
    if (this.upgrading.size >= (this.options.handshakingMax ?? 128)) {
      const [oldest, timer] = this.upgrading.entries().next().value as [Socket, NodeJS.Timeout];
      clearTimeout(timer);
      this.upgrading.delete(oldest);
      this.counters.upgradesCut += 1;
      oldest.destroy();
    }
    const timer = setTimeout(() => {
      this.upgrading.delete(socket);
      this.counters.upgradesCut += 1;
      socket.destroy();
    }, this.options.handshakeTimeoutMs ?? 5000);
    this.upgrading.set(socket, timer);
    socket.once('close', () => this.upgraded(socket));
  }

  private upgraded(socket: Socket): void {
    const timer = this.upgrading.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.upgrading.delete(socket);
  }

  private shouldDial(peer: string): boolean {
    return Boolean(this.options.members.get(peer)?.url) && (!this.isMember || peer > this.name);
  }

  private linkOf(peer: string, isClient = false): PeerLink {
    let link = this.links.get(peer);
    if (!link) {
      const limits = { ...defaultLimits, ...this.options.limits };
      if (isClient) limits.queueBytesMax = Math.min(limits.queueBytesMax, clientQueueBytesMax);
      link = new PeerLink(peer, limits, (bytes) => {
        this.counters.framesOut += 1;
        this.counters.bytesOut += bytes;
      });
      this.links.set(peer, link);
    }
    return link;
  }

  private dial(peer: string, attempt: number): void {
    if (this.stopped || this.dropped.has(peer) || this.dialTimers.has(peer) || this.dialing.has(peer)) return;
    const min = this.options.reconnectMsMin ?? 50;
    const max = this.options.reconnectMsMax ?? 2000;
    const delayMs = attempt === 0 ? 0 : Math.min(max, min * 2 ** Math.min(attempt, 16)) * (0.5 + Math.random() / 2);
    const timer = setTimeout(() => {
      this.dialTimers.delete(peer);
      this.dialNow(peer, attempt);
    }, delayMs);
    this.dialTimers.set(peer, timer);
  }

  private dialNow(peer: string, attempt: number): void {
    const address = this.options.members.get(peer);
    if (this.stopped || !address?.url) return;
    // A zero mask: RFC 6455 masking protects proxies from browser-originated traffic; between
    // authenticated nodes it only costs an XOR pass over every byte on both ends (ws skips it then).
    let ws: WebSocket;
    try {
      ws = new WebSocket(address.url, {
        maxPayload: handshakeBytesMax, // raised to the frame limit once the acceptor has proved its key
        perMessageDeflate: false,
        generateMask: (mask) => void mask.fill(0),
      });
    } catch (error) {
      // A URL WebSocket refuses (the config checks hosts, but a descriptor may come from elsewhere):
      // thrown from a timer, it would end the process.
      this.peerLog.warn(`bad url ${peer}`, { peer, url: address.url, reason: (error as Error).message }, 'cannot dial peer');
      return this.dial(peer, attempt + 1);
    }
    let opener: FrameOpener | null = null;
    this.handshaking.add(ws);
    this.dialing.add(peer);
    const nonce = new Uint8Array(randomBytes(nonceBytes));
    const ephemeral = newEphemeral();
    const timeout = setTimeout(() => ws.terminate(), this.options.handshakeTimeoutMs ?? 5000);
    let hello: Hello | null = null;
    let challenge: Challenge | null = null;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (opener) return this.receive(ws, peer, data, isBinary);
      const bytes = toBytes(data);
      try {
        if (!challenge) {
          challenge = decodeChallenge(bytes);
          // Before signing anything: a signed hello for someone else's challenge could be relayed to
          // them by the server we reached, making them take its connection for ours.
          if (!bytesEqual(challenge.acceptorKey, address.publicKey)) throw new Error('acceptor key does not match the config');
          hello = signHello(this.signer, challenge, this.name, nonce, ephemeral.publicKey);
          ws.send(encodeHello(hello));
          return;
        }
        const welcome = decodeWelcome(bytes);
        const problem = judgeWelcome(this.options.crypto, address.publicKey, challenge, hello!, welcome);
        if (problem) throw new Error(problem);
        const keys = deriveFrameKeys(ephemeral, challenge.acceptorEphemeral, frameKeySalt(this.options.crypto, challenge, hello!));
        opener = new FrameOpener(keys.acceptorToDialer);
        setMessageBytesMax(ws, this.options.frameBytesMax);
        this.openers.set(ws, { peer, opener, isClient: false, messagesIn: 0, unfinished: null, lastFrameMs: performance.now() });
        clearTimeout(timeout);
        this.handshaking.delete(ws);
        this.dialing.delete(peer);
        if (this.stopped || this.dropped.has(peer)) return ws.terminate();
        this.options.log.info({ peer, as: welcome.assignedName }, 'connected');
        this.linkOf(peer).attach(ws, new FrameSealer(keys.dialerToAcceptor));
        attempt = 0;
      } catch (error) {
        this.options.log.warn({ peer, reason: (error as Error).message }, 'handshake with peer failed');
        ws.terminate();
      }
    });
    ws.on('error', (error) => this.onSocketError(peer, opener !== null, error)); // 'close' follows; the reconnect happens there
    ws.on('close', (code: number, reason: Buffer) => {
      clearTimeout(timeout);
      this.openers.delete(ws);
      if (this.handshaking.delete(ws)) this.dialing.delete(peer);
      const link = this.links.get(peer);
      link?.detach(ws);
      // Said once per peer and reason, not per redial: 'too many clients connected' is what a user
      // stuck in TimeoutErrors needs to see.
      if (code === closeCodes.refused) this.peerLog.warn(`refused by ${peer}`, { peer, reason: reason.toString() }, 'peer refused this connection');
      // An idle client whose slot went to another comes back when it has something to send: a
      // redial now would push out the next idle client, which would redial, and so on.
      // Only from a peer that proved its key: a 4002 from whatever answers at the address (before
      // the welcome) turned the backoff off, one dial per round trip (the third review).
      if (code === closeCodes.evictedIdle && opener !== null) {
        this.options.log.info({ peer }, 'closed as idle by the peer; reconnecting at the next send');
        this.dropped.add(peer);
        return;
      }
      // A socket that was replaced leaves an open link behind: nothing to redial.
      if (!this.stopped && !link?.isOpen) this.dial(peer, attempt + 1);
    });
  }

  /** `address`: the remote IP, which names the peer in logs until it has proved a key. */
  private accept(ws: WebSocket, address: string): void {
    if (this.stopped) return ws.terminate();
    if (this.accepting.size >= (this.options.handshakingMax ?? 128)) {
      // The oldest goes, not the newcomer: refusing arrivals let anyone with no key hold every slot
      // (reopening sockets as they time out) and lock members and clients out of new connections.
      // An honest handshake lasts a few ms; evicting it takes a slot-full of new sockets meanwhile.
      const oldest = this.accepting.values().next().value as WebSocket;
      this.accepting.delete(oldest);
      this.counters.handshakesRefused += 1;
      this.peerLog.warn(`handshaking full ${address}`, { address, handshaking: this.accepting.size + 1 }, 'handshake cut: too many sockets in their handshake, the oldest goes');
      oldest.terminate();
    }
    this.accepting.add(ws);
    const ephemeral = newEphemeral();
    const challenge: Challenge = {
      acceptorKey: this.signer.publicKey, acceptorNonce: new Uint8Array(randomBytes(nonceBytes)), acceptorEphemeral: ephemeral.publicKey,
    };
    const timeout = setTimeout(() => ws.terminate(), this.options.handshakeTimeoutMs ?? 5000);
    let peer: string | null = null;
    let opener: FrameOpener | null = null;
    let isClient = false;
    let refused = false;
    const refuse = (reason: string, claimedName?: string): void => {
      refused = true;
      this.refuse(ws, address, timeout, reason, claimedName);
    };
    ws.on('error', (error) => this.onSocketError(peer ?? address, peer !== null, error));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (peer && opener) return this.receive(ws, peer, data, isBinary);
      if (refused) return; // one hello per connection
      let hello: Hello;
      try {
        hello = decodeHello(toBytes(data));
      } catch (error) {
        return refuse((error as Error).message);
      }
      // The signature before the key agreement: a hello that proves nothing costs one check.
      const verdict = judgeHello(this.options.crypto, this.memberKeys, challenge, hello, this.options.acceptClients ?? true);
      if (!verdict.ok) return refuse(verdict.reason, hello.claimedName);
      let keys: ReturnType<typeof deriveFrameKeys>;
      try {
        keys = deriveFrameKeys(ephemeral, hello.dialerEphemeral, frameKeySalt(this.options.crypto, challenge, hello));
      } catch (error) {
        return refuse((error as Error).message, hello.claimedName);
      }
      // Between members the lower name dials: a hello from a higher one was not dialled by it (it
      // is relayed by someone else, who would otherwise take over the real link).
      if (this.isMember && !verdict.isClient && verdict.name > this.name) return refuse(`member '${verdict.name}' is dialled by this node, not the other way`, hello.claimedName);
      // Counted by socket: a key that is connected already replaces its socket (terminated in attach).
      const replacing = verdict.isClient && this.links.get(verdict.name)?.isOpen ? 1 : 0;
      if (verdict.isClient && this.clientSockets.size - replacing >= (this.options.clientsMax ?? clientsMaxDefault) && !this.evictIdleClient()) {
        return refuse(`too many clients connected (${this.clientSockets.size})`, hello.claimedName);
      }
      clearTimeout(timeout);
      this.accepting.delete(ws);
      peer = verdict.name;
      opener = new FrameOpener(keys.dialerToAcceptor);
      setMessageBytesMax(ws, this.options.frameBytesMax);
      isClient = verdict.isClient;
      this.openers.set(ws, { peer, opener, isClient, messagesIn: 0, unfinished: null, lastFrameMs: performance.now() });
      if (isClient) {
        this.clientNames.add(peer);
        this.clientSockets.add(ws);
      }
      this.counters.handshakesAccepted += 1;
      ws.send(encodeWelcome(signWelcome(this.signer, challenge, hello, peer)));
      this.options.log.info({ peer, isClient }, 'accepted');
      this.linkOf(peer, isClient).attach(ws, new FrameSealer(keys.acceptorToDialer));
    });
    ws.on('close', () => {
      clearTimeout(timeout);
      this.accepting.delete(ws);
      this.clientSockets.delete(ws);
      this.openers.delete(ws);
      if (!peer) return;
      const link = this.links.get(peer);
      link?.detach(ws);
      // A client's link goes with its connection; a member's queue waits for it to come back.
      if (isClient && link && !link.isOpen) {
        this.links.delete(peer);
        this.clientNames.delete(peer);
      }
    });
    ws.send(encodeChallenge(challenge));
  }

  private refuse(ws: WebSocket, address: string, timeout: NodeJS.Timeout, reason: string, claimedName?: string): void {
    clearTimeout(timeout);
    this.counters.handshakesRefused += 1;
    // Keyed by address, not by reason: a reason can quote the claimed name, which the peer chooses.
    this.peerLog.warn(`refused ${address}`, { address, claimedName, reason }, 'handshake refused');
    closeSoon(ws, closeCodes.refused, reason);
  }

  /**
   * Closes the client socket that has delivered no frame for longest, if that is at least
   * clientIdleMsMin, to give its slot to a new client: without it, 32 sockets that connect and
   * then only answer pings (keys are free) locked every other client out for good. The evicted
   * client is told (4002) and reconnects when it next has something to send.
   */
  private evictIdleClient(): boolean {
    let idlest: [WebSocket, Connection] | null = null;
    for (const ws of this.clientSockets) {
      const connection = this.openers.get(ws);
      // A socket in the middle of a message is busy, not idle: a large block on a slow uplink
      // completes no frame for many seconds (a stalled one is cut by the heartbeat check instead).
      if (!connection || messageInProgress(ws)) continue;
      if (!idlest || connection.lastFrameMs < idlest[1].lastFrameMs) idlest = [ws, connection];
    }
    if (!idlest || performance.now() - idlest[1].lastFrameMs < (this.options.clientIdleMsMin ?? clientIdleMsMinDefault)) return false;
    const [ws, { peer }] = idlest;
    this.counters.clientsEvicted += 1;
    this.peerLog.warn(`evicted ${peer}`, { peer }, 'idle client closed to make room for a new one');
    this.clientSockets.delete(ws);
    this.openers.delete(ws);
    this.links.get(peer)?.detach(ws);
    closeSoon(ws, closeCodes.evictedIdle, 'idle: slot given to a new client');
    return true;
  }

  /**
   * Binary messages are frames, held by the opener until the text record with their batch's tag
   * (frame-auth.ts); then each is delivered. A bad tag, or a batch larger than a sender may make,
   * cuts the connection.
   */
  private receive(ws: WebSocket, peer: string, data: RawData, isBinary: boolean): void {
    // After a cut, ws still hands over what it had already read: none of it may count.
    const connection = this.openers.get(ws);
    if (ws.readyState !== WebSocket.OPEN || !connection) return;
    const { opener, isClient } = connection;
    connection.messagesIn += 1;
    const bytes = toBytes(data);
    if (isBinary) {
      // A small frame can be a view of a whole socket read: held until its tag, it would pin it.
      const held = bytes.byteLength < 4096 && bytes.buffer.byteLength >= 16 * bytes.byteLength ? bytes.slice() : bytes;
      if (!opener.add(held)) this.cut(ws, peer, 'frame refused: batch over its size limit without a tag; connection cut');
      return;
    }
    // Hex decoding stops at the first non-hex pair, so a malformed record comes out short and fails open().
    const tag = bytes.length === 2 * tagBytes ? Buffer.from(Buffer.from(bytes).toString('latin1'), 'hex') : null;
    const frames = tag && opener.open(tag);
    if (!frames) return this.cut(ws, peer, 'frame refused: bad tag (altered, injected or replayed in flight); connection cut');
    if (frames.length > 0) connection.lastFrameMs = performance.now();
    for (const frame of frames) this.deliver(peer, frame, isClient);
  }

  private cut(ws: WebSocket, peer: string, reason: string): void {
    this.counters.framesBadTag += 1;
    this.peerLog.warn(`cut ${peer} ${reason}`, { peer }, reason);
    this.openers.delete(ws);
    ws.terminate();
  }

  /**
   * ws closes a socket on a protocol error (its 'close' follows). A message longer than the limit
   * (frameBytesMax once the peer is authenticated, the handshake's size before) is refused as its
   * header arrives: ws cuts the connection with 1009 rather than read it, so nothing over the limit
   * is ever held. `peer`: its name, or its address before the handshake.
   */
  private onSocketError(peer: string, authenticated: boolean, error: Error): void {
    if ((error as { code?: string }).code !== 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return;
    this.counters.framesOversized += 1;
    const limit = authenticated ? this.options.frameBytesMax : handshakeBytesMax;
    this.peerLog.warn(`oversized ${peer}`, { peer, limit }, 'message over the size limit; connection cut');
  }

  private deliver(peer: string, bytes: Uint8Array, isClient: boolean): void {
    this.counters.framesIn += 1;
    this.counters.bytesIn += bytes.length;
    this.handler(peer, bytes, { isClient });
  }
}

/**
 * Sets the largest message ws will take on `ws` from now on. ws checks each frame's declared length
 * against its receiver's limit as the header arrives (before buffering the payload) and reads the
 * limit anew for every frame, but offers no public setter; the assertion makes a ws upgrade that
 * renames the field fail loudly rather than leave the limit wrong.
 */
function setMessageBytesMax(ws: WebSocket, bytesMax: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  assert(receiver && typeof receiver._maxPayload === 'number', 'ws 8 keeps its message limit in _receiver._maxPayload');
  receiver._maxPayload = bytesMax;
}

/** What a client's unfinished message must grow by within the deadline to count as arriving (~4 KiB/s at the default 15 s). */
const unfinishedProgressBytes = 64 * 1024;

/**
 * Whether `ws` has held an unfinished message that made no progress (grew by less than
 * unfinishedProgressBytes) for longer than `msMax` (checked once per heartbeat). ws buffers a
 * message until it is complete and answers pings meanwhile, and neither the held-batch deadline
 * nor the batch limit sees a message before it is complete: without this, a client could keep a
 * frame limit's worth of a node's memory in one half-sent message for as long as it liked. Progress,
 * not completion: an honest client on a slow uplink sends each block to every ring server at once,
 * and a 4 MiB block took longer than the deadline on a ~10 Mbit/s link (the second review).
 */
function messageStalled(ws: WebSocket, connection: Connection, nowMs: number, msMax: number): boolean {
  if (!messageInProgress(ws)) {
    connection.unfinished = null;
    return false;
  }
  const receiver = receiverOf(ws);
  let bytes = receiver._bufferedBytes;
  for (const fragment of receiver._fragments as { length: number }[]) bytes += fragment.length;
  const u = connection.unfinished;
  if (u === null || u.messagesIn !== connection.messagesIn || bytes >= u.bytes + unfinishedProgressBytes) {
    connection.unfinished = { sinceMs: nowMs, messagesIn: connection.messagesIn, bytes };
    return false;
  }
  return nowMs - u.sinceMs > msMax;
}

/**
 * Closes `ws` with a code and a reason, and cuts it if the peer does not answer within a second.
 * The reason is made printable ASCII and at most 120 bytes: it may quote a name the peer chose,
 * and ws throws on a reason over 123 bytes, which, thrown in a message handler, ended the process
 * (a hello from a member's key under a name of 60 non-ASCII characters did that).
 */
function closeSoon(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 120));
  } catch {
    ws.terminate();
  }
  setTimeout(() => ws.terminate(), 1000).unref();
}

function receiverOf(ws: WebSocket): { _bufferedBytes: number; _fragments: unknown[] } {
  const receiver = (ws as unknown as { _receiver?: { _bufferedBytes?: unknown; _fragments?: unknown } })._receiver;
  assert(receiver && typeof receiver._bufferedBytes === 'number' && Array.isArray(receiver._fragments), 'ws 8 keeps a message being read in _receiver');
  return receiver as { _bufferedBytes: number; _fragments: unknown[] };
}

/** Whether ws holds part of a message from `ws` (bytes read, the message not complete). */
function messageInProgress(ws: WebSocket): boolean {
  const receiver = receiverOf(ws);
  return receiver._bufferedBytes > 0 || receiver._fragments.length > 0;
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return asBytes(data);
}
