/**
 * Test-only Byzantine member between the SDK and one cluster member. Frames on a transport
 * connection are authenticated end to end (runtime/frame-auth.ts), so a network man in the middle
 * can only cut connections; what can still lie to a client is a server. The proxy therefore holds
 * the member's own key and terminates the SDK's connection as that member, exactly the power of a
 * Byzantine server over replies, blocks and certificates. Toward the real member it speaks as the
 * SDK's session (it is given the key the test client connects under, `ConnectOptions.transportKey`,
 * so replies addressed to the client by name come back through it: a request's reply address is
 * under the client's signature); frames from the client go upstream unchanged.
 *
 * The SDK is pointed at proxies by rewriting member URLs in the ring descriptor it is given.
 */
import { randomBytes } from 'node:crypto';
import { decodeRingMessage, encodeRingMessage } from '../../ring/codec.ts';
import type { RingMessage } from '../../ring/messages.ts';
import { decodeTreeMessage, encodeTreeMessage, type TreeMessage } from '../../replica/messages.ts';
import type { ClusterConfig } from '../../runtime/cluster-config.ts';
import { loadIdentity, type RingDescriptor } from '../../runtime/cluster-keys.ts';
import { memoryLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { fromHex } from '../../core/bytes.ts';
import { clientNameOf } from '../../runtime/handshake.ts';
import { channels } from '../../runtime/roles.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';

/** Rewrites one member→client frame: the frame, a replacement, or null to drop it. */
export type Tamper = (frame: Uint8Array, member: string) => Uint8Array | null;

const frameBytesMax = 256 * 2 ** 20;

export class TamperingProxy {
  tamper: Tamper = (frame) => frame;
  /** Frames the policy replaced or dropped (a test asserts its attack actually happened). */
  framesTampered = 0;
  /** One session toward the member per client connected downstream, by the client's name. */
  private readonly upstreams = new Map<string, Transport>();

  private constructor(
    readonly member: string,
    private readonly memberAddress: PeerAddress,
    private readonly down: Transport,
    private readonly clients: ReadonlyMap<string, Uint8Array>,
  ) {
    down.onFrame((client, frame) => this.fromClient(client, frame));
  }

  /** `clients`: the transport keys of the SDK sessions that will connect, by their transport name. */
  static async start(member: string, memberAddress: PeerAddress, memberSecretKey: Uint8Array, clients: ReadonlyMap<string, Uint8Array>): Promise<TamperingProxy> {
    const down = new Transport({
      name: member, secretKey: memberSecretKey, crypto: nodeCrypto,
      // Only itself as a member: the proxy dials no one on the downstream side.
      members: new Map([[member, { publicKey: memberAddress.publicKey }]]),
      listen: { host: '127.0.0.1', port: 0 }, acceptClients: true, frameBytesMax, log: memoryLogger(`proxy-${member}`).log,
    });
    await down.start();
    return new TamperingProxy(member, memberAddress, down, clients);
  }

  get url(): string {
    return `ws://127.0.0.1:${this.down.port!}`;
  }

  async close(): Promise<void> {
    for (const up of this.upstreams.values()) await up.stop();
    await this.down.stop();
  }

  private fromClient(client: string, frame: Uint8Array): void {
    let up = this.upstreams.get(client);
    if (!up) {
      up = new Transport({
        name: client, secretKey: this.clients.get(client) ?? new Uint8Array(randomBytes(32)), crypto: nodeCrypto,
        members: new Map([[this.member, this.memberAddress]]), frameBytesMax, log: memoryLogger(`proxy-up-${client}`).log,
        reconnectMsMin: 20, reconnectMsMax: 200,
      });
      up.onFrame((_member, reply) => this.toClient(client, reply));
      this.upstreams.set(client, up);
      void up.start();
    }
    up.send(this.member, frame);
  }

  private toClient(client: string, frame: Uint8Array): void {
    const out = this.tamper(frame, this.member);
    if (out !== frame) this.framesTampered++;
    if (out) this.down.send(client, out);
  }
}

/** One proxy per named member, and a copy of the descriptor that sends the SDK through them. */
export async function proxyMembers(
  config: ClusterConfig, descriptor: RingDescriptor, names: readonly string[], transportKeys: readonly Uint8Array[],
): Promise<{ descriptor: RingDescriptor; proxies: Map<string, TamperingProxy> }> {
  const byName = new Map(transportKeys.map((key) => [clientNameOf(nodeCrypto, nodeCrypto.ed25519PublicKey(key)), key]));
  const proxies = new Map<string, TamperingProxy>();
  for (const name of names) {
    const node = descriptor.nodes.find((n) => n.name === name);
    if (!node?.url) throw new Error(`no member ${name} with a url in the descriptor`);
    const address = { publicKey: fromHex(node.publicKey), url: node.url };
    proxies.set(name, await TamperingProxy.start(name, address, loadIdentity(config, descriptor, name, nodeCrypto), byName));
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
