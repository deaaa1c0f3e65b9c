/**
 * Test-only man in the middle between the SDK and one cluster member. The transport's handshake
 * authenticates both ends but does not protect the frames that follow, so a proxy that relays the
 * three handshake messages untouched can then rewrite, replay or drop anything the member sends:
 * exactly the power of a Byzantine server (or a network attacker) over replies, blocks and
 * certificates. Frames from the client go upstream unchanged.
 *
 * The SDK is pointed at proxies by rewriting member URLs in the ring descriptor it is given.
 */
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { decodeRingMessage, encodeRingMessage } from '../../ring/codec.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { decodeTreeMessage, encodeTreeMessage, type TreeMessage } from '../../replica/messages.ts';
import type { RingDescriptor } from '../../runtime/cluster-keys.ts';
import { channels } from '../../runtime/roles.ts';

/** Rewrites one member→client frame after the handshake: the frame, a replacement, or null to drop it. */
export type Tamper = (frame: Uint8Array, member: string) => Uint8Array | null;

/** Downstream handshake messages (challenge, welcome) relayed before tampering starts. */
const handshakeMessagesDown = 2;

export class TamperingProxy {
  tamper: Tamper = (frame) => frame;
  /** Frames the policy replaced or dropped (a test asserts its attack actually happened). */
  framesTampered = 0;
  private readonly sockets = new Set<WebSocket>();

  private constructor(
    readonly member: string,
    private readonly upstreamUrl: string,
    private readonly server: WebSocketServer,
  ) {
    server.on('connection', (client) => this.relay(client));
  }

  static async start(member: string, upstreamUrl: string): Promise<TamperingProxy> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 256 * 2 ** 20 });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    return new TamperingProxy(member, upstreamUrl, server);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: WebSocket): void {
    const upstream = new WebSocket(this.upstreamUrl, { perMessageDeflate: false, maxPayload: 256 * 2 ** 20 });
    this.sockets.add(client).add(upstream);
    const early: { data: Uint8Array; isBinary: boolean }[] = [];
    let downCount = 0;
    client.on('message', (data: RawData, isBinary: boolean) => {
      const bytes = toBytes(data);
      if (upstream.readyState === WebSocket.OPEN) upstream.send(bytes, { binary: isBinary });
      else early.push({ data: bytes, isBinary });
    });
    upstream.on('open', () => {
      for (const m of early.splice(0)) upstream.send(m.data, { binary: m.isBinary });
    });
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      let bytes: Uint8Array | null = toBytes(data);
      if (downCount++ >= handshakeMessagesDown) {
        const original = bytes;
        bytes = this.tamper(bytes, this.member);
        if (bytes !== original) this.framesTampered++;
      }
      if (bytes && client.readyState === WebSocket.OPEN) client.send(bytes, { binary: isBinary });
    });
    const closeBoth = (): void => {
      client.terminate();
      upstream.terminate();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }
}

/** One proxy per named member, and a copy of the descriptor that sends the SDK through them. */
export async function proxyMembers(descriptor: RingDescriptor, names: readonly string[]): Promise<{ descriptor: RingDescriptor; proxies: Map<string, TamperingProxy> }> {
  const proxies = new Map<string, TamperingProxy>();
  for (const name of names) {
    const node = descriptor.nodes.find((n) => n.name === name);
    if (!node?.url) throw new Error(`no member ${name} with a url in the descriptor`);
    proxies.set(name, await TamperingProxy.start(name, node.url));
  }
  const nodes = descriptor.nodes.map((n) => (proxies.has(n.name) ? { ...n, url: proxies.get(n.name)!.url } : n));
  return { descriptor: { ...descriptor, nodes }, proxies };
}

/** The tree message in a member's frame (replica channel), or null for any other frame. */
export function treeMessageOf(frame: Uint8Array): TreeMessage | null {
  if (frame[0] !== channels.replica) return null;
  try {
    return decodeTreeMessage(frame.subarray(1));
  } catch {
    return null;
  }
}

export function treeFrame(message: TreeMessage): Uint8Array {
  return framed(channels.replica, encodeTreeMessage(message));
}

/** The ring message in a member's frame (ring channel), or null for any other frame. */
export function ringMessageOf(frame: Uint8Array): RingMessage | null {
  if (frame[0] !== channels.ring) return null;
  try {
    return decodeRingMessage(frame.subarray(1));
  } catch {
    return null;
  }
}

export function ringFrame(message: RingMessage): Uint8Array {
  return framed(channels.ring, encodeRingMessage(message));
}

/** A copy of `bytes` with one bit flipped at `at` (default: the middle). */
export function flipped(bytes: Uint8Array, at = Math.floor(bytes.length / 2)): Uint8Array {
  const copy = new Uint8Array(bytes);
  if (copy.length > 0) copy[at] = copy[at]! ^ 0x01;
  return copy;
}

function framed(channel: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(body.length + 1);
  frame[0] = channel;
  frame.set(body, 1);
  return frame;
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
