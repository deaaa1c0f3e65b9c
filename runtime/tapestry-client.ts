/**
 * Overlay lookups for processes that are not overlay members (the CLI, the SDK, tests): connects
 * to the cluster as an authenticated client and asks a chosen node to locate an object on its
 * behalf (`lookup` on channel 2, answered with `lookupReply`; tapestry/service.ts). The node runs
 * an ordinary Tapestry locate, so the answer is the holder nearest to that node. The node is not
 * trusted for the answer: a holder counts only with its own signed, unexpired publish statement
 * (tapestry/pointer-auth.ts), checked here under its key in `members`; otherwise the lookup fails
 * with IntegrityError.
 */
import type { Logger } from 'pino';
import { signerOf, type Crypto } from '../core/crypto.ts';
import { DecodeError, IntegrityError, InvalidArgumentError, TimeoutError, checkArgument } from '../core/errors.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../tapestry/codec.ts';
import { defaultTapestryConfig } from '../tapestry/config.ts';
import { isTapestryId, tapestryIdOf } from '../tapestry/id.ts';
import { holderProven, pointerAuthOf, type PointerAuth } from '../tapestry/pointer-auth.ts';
import type { NodeRef, TapestryId } from '../tapestry/id.ts';
import type { TapestryMessage } from '../tapestry/messages.ts';
import { messageBytesMax } from '../tapestry/messages.ts';
import { clientNameOf } from './handshake.ts';
import { silentLogger } from './log.ts';
import { channels } from './roles.ts';
import { Transport, type PeerAddress } from './transport.ts';

export interface LookupAnswer {
  readonly objectId: TapestryId;
  /** The nearest holder the node found, or null (nobody publishes it). */
  readonly server: NodeRef | null;
  /** Overlay hops the locate took from the asked node to the pointer. */
  readonly hops: number;
  /** False when the node got no answer in time or was not ready (joining, busy). */
  readonly answered: boolean;
  /** Round trip seen by this client, request to reply. */
  readonly latencyMs: number;
}

export interface TapestryClientOptions {
  readonly secretKey: Uint8Array;
  readonly crypto: Crypto;
  /** The cluster's members (names, keys, urls), e.g. from the ring descriptor. */
  readonly members: ReadonlyMap<string, PeerAddress>;
  readonly log?: Logger;
}

/**
 * What the holder of a named object must be, checked like its signature: anyone can publish any
 * object id under its own signed statement, so the statement alone proves only that the holder
 * said so. For a server's name object the holder must be that server; for a role object, a server
 * of that role in the member list.
 */
export interface HolderRule {
  /** For the error message: "node m1", "a archive server". */
  readonly what: string;
  readonly fits: (server: NodeRef) => boolean;
}

/** The holder of nodeObjectIdOf(name) must be the server `name` itself. */
export function nodeHolderRule(name: string): HolderRule {
  return { what: `node ${name}`, fits: (server) => server.name === name };
}

/** The holder of roleObjectIdOf(role) must have that role (`roleOf`: the ring descriptor's). */
export function roleHolderRule(role: string, roleOf: (name: string) => string | undefined): HolderRule {
  return { what: `a server of role ${role}`, fits: (server) => roleOf(server.name) === role };
}

/** A Tapestry message as a transport frame: the channel byte, then the encoded message. */
export function tapestryFrame(message: TapestryMessage): Uint8Array {
  const body = encodeTapestryMessage(message);
  const frame = new Uint8Array(body.length + 1);
  frame[0] = channels.tapestry;
  frame.set(body, 1);
  return frame;
}

interface Pending {
  readonly objectId: TapestryId;
  readonly holder: HolderRule | undefined;
  readonly via: string;
  readonly startedMs: number;
  readonly resolve: (answer: LookupAnswer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class TapestryClient {
  private readonly transport: Transport;
  private readonly auth: PointerAuth;
  private readonly pending = new Map<number, Pending>();
  private requestIdNext = 1;
  /** Replies that matched no pending lookup, or did not decode. */
  repliesDropped = 0;

  private constructor(private readonly options: TapestryClientOptions) {
    checkArgument(options.members instanceof Map && options.members.size > 0, 'members', 'a non-empty map of cluster members');
    const name = clientNameOf(options.crypto, options.crypto.ed25519PublicKey(options.secretKey));
    this.transport = new Transport({
      name, secretKey: options.secretKey, crypto: options.crypto, members: options.members,
      frameBytesMax: messageBytesMax + 1, log: options.log ?? silentLogger(),
    });
    this.transport.onFrame((from, frame) => this.onFrame(from, frame));
    this.auth = pointerAuthOf(options.crypto, signerOf(options.crypto, options.secretKey), (member) => options.members.get(member)?.publicKey);
  }

  static async open(options: TapestryClientOptions): Promise<TapestryClient> {
    const client = new TapestryClient(options);
    await client.transport.start();
    return client;
  }

  /**
   * Asks `via` (a member name) to locate `objectId`. Rejects with TimeoutError after timeoutMs, and
   * with IntegrityError when the holder named lacks its own statement or (`holder`, for named
   * objects) is not who may hold the object.
   */
  lookup(via: string, objectId: TapestryId, timeoutMs = 15_000, holder?: HolderRule): Promise<LookupAnswer> {
    if (!this.options.members.has(via)) throw new InvalidArgumentError(`via: ${via} is not a cluster member`);
    checkArgument(isTapestryId(objectId), 'objectId', '40 lowercase hex digits');
    checkArgument(Number.isFinite(timeoutMs) && timeoutMs > 0, 'timeoutMs', 'a positive number of milliseconds');
    const requestId = this.requestIdNext++;
    const frame = tapestryFrame({ kind: 'lookup', requestId, objectId });
    return new Promise<LookupAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new TimeoutError(`tapestry lookup of ${objectId} via ${via}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(requestId, { objectId, holder, via, startedMs: performance.now(), resolve, reject, timer });
      // Frames to a peer not yet connected wait in its queue while the transport dials it.
      this.transport.send(via, frame);
    });
  }

  connectedPeers(): string[] {
    return this.transport.connectedPeers();
  }

  async stop(): Promise<void> {
    for (const [requestId, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(requestId);
      p.reject(new TimeoutError('tapestry client stopped'));
    }
    await this.transport.stop();
  }

  /** The holder's own statement, under its key in the member list, issued within the pointer TTL. */
  private holderProven(objectId: TapestryId, server: NodeRef, issuedAtMs: number, signature: Uint8Array): boolean {
    const { crypto, members } = this.options;
    const key = members.get(server.name)?.publicKey;
    if (!key || tapestryIdOf(crypto, key) !== server.id) return false;
    return holderProven(this.auth, defaultTapestryConfig, objectId, server, issuedAtMs, signature, Date.now());
  }

  private onFrame(from: string, frame: Uint8Array): void {
    if (frame[0] !== channels.tapestry) return void this.repliesDropped++;
    let message;
    try {
      message = decodeTapestryMessage(frame.subarray(1));
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      return void this.repliesDropped++;
    }
    if (message.kind !== 'lookupReply') return void this.repliesDropped++;
    const p = this.pending.get(message.requestId);
    if (!p || p.via !== from || p.objectId !== message.objectId) return void this.repliesDropped++;
    this.pending.delete(message.requestId);
    clearTimeout(p.timer);
    if (message.server && !this.holderProven(message.objectId, message.server, message.issuedAtMs, message.signature)) {
      p.reject(new IntegrityError(`tapestry lookup of ${message.objectId} via ${from}: ${message.server.name} named as holder without its signed, unexpired publish statement`));
      return;
    }
    if (message.server && p.holder && !p.holder.fits(message.server)) {
      p.reject(new IntegrityError(`tapestry lookup of ${message.objectId} via ${from}: ${message.server.name} holds it, but only ${p.holder.what} may`));
      return;
    }
    p.resolve({ objectId: message.objectId, server: message.server, hops: message.hops, answered: message.answered, latencyMs: performance.now() - p.startedMs });
  }
}
