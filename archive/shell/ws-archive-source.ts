/**
 * The restore tool's network ArchiveSource: a client on the runtime's authenticated WebSocket
 * transport (runtime/transport.ts), speaking the archive message codec on the archive channel.
 * It needs only what the cluster descriptor publishes: each archive server's name, URL and public
 * key (the handshake proves the server holds that key, so replies are attributable).
 */
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import type { Crypto } from '../../core/crypto.ts';
import { DecodeError } from '../../core/errors.ts';
import { channels } from '../../runtime/roles.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { archiveLimits, decodeArchiveMessage, encodeArchiveMessage, type ArchiveMessage } from '../messages.ts';
import type { ArchiveSource } from './archive-source.ts';

export interface WsArchiveSourceOptions {
  crypto: Crypto;
  log: Logger;
  /** Archive servers by name: URL and public key. */
  servers: ReadonlyMap<string, PeerAddress>;
  /** A reply slower than this counts as no reply (the server is treated as down for that request). */
  requestTimeoutMs?: number;
}

interface Waiter {
  resolve: (reply: ArchiveMessage | null) => void;
  timer: NodeJS.Timeout;
}

export class WsArchiveSource implements ArchiveSource {
  readonly servers: readonly string[];
  private readonly transport: Transport;
  private readonly waiters = new Map<string, Waiter>();
  private nextRequestId = 1;
  readonly counters = { requests: 0, timeouts: 0, malformed: 0 };

  constructor(private readonly options: WsArchiveSourceOptions) {
    this.servers = [...options.servers.keys()].sort();
    this.transport = new Transport({
      name: 'restore-client',
      secretKey: new Uint8Array(randomBytes(32)),
      crypto: options.crypto,
      members: options.servers,
      frameBytesMax: archiveLimits.messageBytesMax + 1,
      log: options.log,
      reconnectMsMin: 50,
      reconnectMsMax: 1000,
    });
    this.transport.onFrame((from, frame) => this.onFrame(from, frame));
  }

  async start(): Promise<void> {
    await this.transport.start();
    for (const server of this.servers) this.transport.connect(server);
  }

  async stop(): Promise<void> {
    for (const waiter of this.waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.resolve(null);
    }
    this.waiters.clear();
    await this.transport.stop();
  }

  request(server: string, message: ArchiveMessage): Promise<ArchiveMessage | null> {
    if (!('requestId' in message)) return Promise.resolve(null);
    const requestId = this.nextRequestId++;
    const body = encodeArchiveMessage({ ...message, requestId } as ArchiveMessage);
    const frame = new Uint8Array(body.length + 1);
    frame[0] = channels.archive;
    frame.set(body, 1);
    this.counters.requests++;
    const key = `${server}#${requestId}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        this.counters.timeouts++;
        resolve(null);
      }, this.options.requestTimeoutMs ?? 5000);
      this.waiters.set(key, { resolve, timer });
      if (!this.transport.send(server, frame)) {
        clearTimeout(timer);
        this.waiters.delete(key);
        resolve(null);
      }
    });
  }

  private onFrame(from: string, frame: Uint8Array): void {
    if (frame[0] !== channels.archive) return;
    let message: ArchiveMessage;
    try {
      message = decodeArchiveMessage(frame.subarray(1));
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      this.counters.malformed++;
      return;
    }
    if (!('requestId' in message)) return;
    const key = `${from}#${message.requestId}`;
    const waiter = this.waiters.get(key);
    if (!waiter) return;
    this.waiters.delete(key);
    clearTimeout(waiter.timer);
    waiter.resolve(message);
  }
}
