/**
 * A client's connection to a ring over the real transport: one authenticated connection per ring
 * server (the session's transport key), and any number of ring clients (ring/client.ts cores,
 * each with its own signing key and one outstanding request) multiplexed over it. Replies and
 * certificates are routed to the core whose key they name.
 *
 * Certificates: a ring client checks every certificate it receives, and a real BLS check costs
 * ~20 ms of this process's single thread. A session can instead record each certificate (root,
 * signature) and check every distinct one later (`verifyRecordedCertificates`), so a benchmark
 * measures the write path, not its own verification; the check itself still happens and counts.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { fromHex, toHex } from '../core/bytes.ts';
import { HashTag, signerOf, taggedHash, type Crypto, type Signer } from '../core/crypto.ts';
import type { Effect } from '../core/machine.ts';
import { MemoryKvStore } from '../core/store.ts';
import type { CertificateVerifier } from '../ring/certificate-signer.ts';
import { RingClient } from '../ring/client.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../ring/codec.ts';
import type { RingMessage } from '../ring/messages.ts';
import type { ClientOutput, RingOutput } from '../ring/outputs.ts';
import { blsCertificateVerifier } from '../ring/bls-certificate-signer.ts';
import { RingKeyVerifier } from '../core/threshold/signing.ts';
import { currentRingOf, isLaterRing, ringEpochOf, secureRandom, watchDescriptorFile, type RingDescriptor } from './cluster-keys.ts';
import { decodeGossipMessage, DescriptorGossip, encodeGossipMessage, type GossipMessage, type GossipOutput } from './descriptor-gossip.ts';
import { clientNameOf } from './handshake.ts';
import { channels } from './roles.ts';
import { Transport, type PeerAddress } from './transport.ts';

export interface RingSessionOptions {
  readonly descriptor: RingDescriptor;
  readonly crypto: Crypto;
  readonly log: Logger;
  /** Ring clients (concurrent outstanding requests). */
  readonly clientCount: number;
  readonly retransmitMs?: number;
  /** 'inline': every ring client checks each certificate as it arrives; 'deferred': see the file comment. */
  readonly certificates?: 'inline' | 'deferred';
  /**
   * The descriptor's file, to follow a membership change while running: a re-signed version with a
   * later ring (same admin key and ring) replaces the member list (adoptDescriptor).
   */
  readonly descriptorPath?: string;
}

export interface Completion {
  readonly seq: number;
  readonly result: Uint8Array;
  readonly latencyMs: number;
}

interface Waiter {
  resolve(c: Completion): void;
}

export class RingSession {
  readonly transport: Transport;
  readonly clients: RingClient[] = [];
  readonly clientKeys: Uint8Array[] = [];
  private readonly signers: Signer[] = [];
  private readonly byKey = new Map<string, number>();
  private readonly waiters: Waiter[][] = [];
  private readonly blockWaiters = new Map<string, { replicas: Set<number>; needed: number; resolve: () => void }>();
  private readonly recorded = new Map<string, Uint8Array>();
  private readonly verifier: CertificateVerifier;
  /** The ring members this session sends to and takes replies from (the descriptor's current ring). */
  ringNames: readonly string[];
  private descriptor: RingDescriptor;
  private tick: NodeJS.Timeout | null = null;
  private gossipTick: NodeJS.Timeout | null = null;
  private stopWatching: (() => void) | null = null;
  /** This session's part in spreading re-signed descriptors (runtime/descriptor-gossip.ts, channel 5). */
  readonly gossip: DescriptorGossip;
  readonly counters = { completed: 0, certified: 0, ringChanges: 0 };

  constructor(private readonly options: RingSessionOptions) {
    const d = options.descriptor;
    this.descriptor = d;
    const members = currentRingOf(d);
    this.ringNames = members.map((m) => m.id);
    const key = { threshold: d.threshold, publicKey: fromHex(d.ringPublicKey), commitments: d.commitments.map(fromHex) };
    this.verifier = blsCertificateVerifier(new RingKeyVerifier(key, members.length));
    const sessionKey = new Uint8Array(randomBytes(32));
    const directory = new Map<string, PeerAddress>(d.nodes.map((n) => [n.name, { publicKey: fromHex(n.publicKey), url: n.url }]));
    this.transport = new Transport({
      name: 'client', secretKey: sessionKey, crypto: options.crypto, members: directory,
      frameBytesMax: ringFrameBytesMax + 1, log: options.log, reconnectMsMin: 50, reconnectMsMax: 500,
    });
    const nodeId = clientNameOf(options.crypto, options.crypto.ed25519PublicKey(sessionKey));
    const deferred = options.certificates === 'deferred';
    const certificateVerifier: CertificateVerifier = deferred
      ? { verify: (root, signature) => (this.recorded.set(toHex(root), signature), true) }
      : this.verifier;
    for (let i = 0; i < options.clientCount; i++) {
      const signer = signerOf(options.crypto, new Uint8Array(randomBytes(32)));
      const client = new RingClient(
        { nodeId, store: new MemoryKvStore(), random: secureRandom, nowMs: Date.now() },
        {
          members, f: d.f, crypto: options.crypto, signer, certificateVerifier, retransmitMs: options.retransmitMs ?? 1000,
          // Certificates sign the batch header, which names the ring (ring/certificate-format.ts).
          ringId: fromHex(d.ringId),
          // Every frame from a ring server is tagged under keys bound to its identity (runtime/transport.ts).
          channelIntegrity: true,
        },
      );
      this.clients.push(client);
      this.signers.push(signer);
      this.clientKeys.push(signer.publicKey);
      this.byKey.set(toHex(signer.publicKey), i);
      this.waiters.push([]);
    }
    this.gossip = new DescriptorGossip({ crypto: options.crypto, descriptor: d, targets: () => this.transport.connectedPeers() });
    this.transport.onFrame((from, frame) => this.onFrame(from, frame));
  }

  async start(): Promise<void> {
    await this.transport.start();
    for (const name of this.ringNames) this.transport.connect(name);
    this.tick = setInterval(() => {
      for (const client of this.clients) this.perform(client.onTick(Date.now()));
    }, 20);
    this.gossipTick = setInterval(() => this.performGossip(this.gossip.onTick(Date.now())), 1000);
    if (this.options.descriptorPath !== undefined) {
      this.stopWatching = watchDescriptorFile(this.options.descriptorPath, 500, (d) => this.adoptDescriptor(d), (error) => this.options.log.warn({ reason: error.message }, 'ring descriptor not taken'));
    }
  }

  async stop(): Promise<void> {
    if (this.tick) clearInterval(this.tick);
    if (this.gossipTick) clearInterval(this.gossipTick);
    this.stopWatching?.();
    await this.transport.stop();
  }

  /**
   * Takes a re-signed descriptor whose ring is later than the one in use (isLaterRing: the same
   * admin key and ring): the ring clients count replies from the new members and send to them.
   * Returns false for the same or an older ring; ConfigError if it is not this ring's admin's word.
   */
  adoptDescriptor(next: RingDescriptor): boolean {
    if (!isLaterRing(this.descriptor, next, this.options.crypto)) return false;
    const members = currentRingOf(next);
    this.descriptor = next;
    const before = this.ringNames;
    this.ringNames = members.map((m) => m.id);
    this.counters.ringChanges++;
    for (const client of this.clients) this.perform(client.setMembers(members));
    for (const name of this.ringNames) if (!before.includes(name)) this.transport.connect(name);
    for (const name of before) if (!this.ringNames.includes(name)) this.transport.disconnect(name);
    this.options.log.info({ members: this.ringNames, epoch: ringEpochOf(next) }, 'ring members changed');
    // Tell the nodes too (a no-op when the news came from them).
    this.performGossip(this.gossip.offer(next, Date.now()));
    return true;
  }

  /**
   * Hands a re-signed descriptor to the ring (the admin's `replace-node`): takes it, sends it to
   * every connected node, and waits until each of `waitFor` says it holds it (or `timeoutMs`).
   * Returns those that confirmed; the nodes spread it on among themselves.
   */
  async spreadDescriptor(next: RingDescriptor, waitFor: readonly string[], timeoutMs: number): Promise<string[]> {
    this.adoptDescriptor(next);
    const epoch = ringEpochOf(next);
    const confirmed = () => waitFor.filter((name) => (this.gossip.epochOf(name) ?? -1) >= epoch);
    const deadlineMs = Date.now() + timeoutMs;
    for (const name of waitFor) this.transport.connect(name);
    while (confirmed().length < waitFor.length && Date.now() < deadlineMs) {
      // A member connected since the offer is told now (the core pushes to a peer that announced less).
      this.performGossip(this.gossip.onTick(Date.now()));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return confirmed();
  }

  /** Ring client `index`'s signing key and the nonce its next submit carries (an update's writer
   * is the ring client that submits it: the object service refuses any other). */
  clientIdentity(index: number): { signer: Signer; nextNonce: number } {
    const client = this.clients[index];
    if (!client) throw new RangeError(`no ring client ${index}`);
    return { signer: this.signers[index]!, nextNonce: client.nextNonce };
  }

  /** Submits `operation` through ring client `index`; resolves on f+1 matching signed replies. */
  submit(index: number, operation: Uint8Array): Promise<Completion> {
    const client = this.clients[index];
    if (!client) throw new RangeError(`no ring client ${index}`);
    const done = new Promise<Completion>((resolve) => this.waiters[index]!.push({ resolve }));
    this.perform(client.submit(operation, Date.now()));
    return done;
  }

  /**
   * Pushes a content-addressed block to every ring server; resolves once `needed` of them (default
   * 2f+1, so at least f+1 correct ones hold it) confirmed it is stored durably. Returns its BGUID.
   */
  async putBlock(block: Uint8Array, needed = 2 * this.options.descriptor.f + 1): Promise<Uint8Array> {
    const bguid = taggedHash(this.options.crypto, HashTag.dataBlock, block);
    const stored = new Promise<void>((resolve) => this.blockWaiters.set(toHex(bguid), { replicas: new Set(), needed, resolve }));
    const frame = this.frameOf({ kind: 'put-block', block });
    for (const name of this.ringNames) this.transport.send(name, frame);
    await stored;
    return bguid;
  }

  /**
   * Checks every recorded certificate (deferred mode) with real BLS; returns [valid, total]. Each
   * recorded header names the key epoch its certificate message named (before certificates named
   * it, every header was recorded as epoch 0 and all after a key refresh failed here).
   */
  verifyRecordedCertificates(): [number, number] {
    let valid = 0;
    for (const [message, signature] of this.recorded) if (this.verifier.verify(fromHex(message), signature)) valid += 1;
    return [valid, this.recorded.size];
  }

  /** The frame's body decoded, or null (logged) when it does not decode. */
  private decodeBody<M>(from: string, frame: Uint8Array, decodeMessage: (bytes: Uint8Array) => M): M | null {
    try {
      return decodeMessage(frame.subarray(1));
    } catch (error) {
      this.options.log.warn({ from, reason: (error as Error).message }, 'frame dropped');
      return null;
    }
  }

  private onFrame(from: string, frame: Uint8Array): void {
    if (frame[0] === channels.descriptor) {
      const gossip = this.decodeBody(from, frame, decodeGossipMessage);
      if (gossip) this.performGossip(this.gossip.onMessage(from, gossip, Date.now()));
      return;
    }
    if (frame[0] !== channels.ring) return;
    const message = this.decodeBody(from, frame, decodeRingMessage);
    if (!message) return;
    if (message.kind === 'block-stored') {
      const w = this.blockWaiters.get(toHex(message.bguid));
      if (w && this.ringNames[message.replica] === from) {
        w.replicas.add(message.replica);
        if (w.replicas.size >= w.needed) {
          this.blockWaiters.delete(toHex(message.bguid));
          w.resolve();
        }
      }
      return;
    }
    if (message.kind !== 'reply' && message.kind !== 'certificate' && message.kind !== 'nonce-passed') return;
    const index = this.byKey.get(toHex(message.clientKey));
    if (index === undefined) return;
    this.perform(this.clients[index]!.onMessage(from, message, Date.now()));
  }

  private frameOf(message: RingMessage): Uint8Array {
    return frameOn(channels.ring, encodeRingMessage(message));
  }

  private performGossip(effects: Effect<GossipMessage, GossipOutput>[]): void {
    for (const effect of effects) {
      if (effect.kind === 'send') {
        this.transport.send(effect.to, frameOn(channels.descriptor, encodeGossipMessage(effect.message)));
      } else if (effect.event.kind === 'adopted') {
        this.adoptDescriptor(effect.event.descriptor);
      } else {
        this.options.log.warn({ from: effect.event.from, reason: effect.event.reason }, 'ring descriptor refused');
      }
    }
  }

  private perform(effects: Effect<RingMessage, RingOutput>[]): void {
    for (const effect of effects) {
      if (effect.kind === 'send') this.transport.send(effect.to, this.frameOf(effect.message));
      else this.onOutput(effect.event as ClientOutput);
    }
  }

  private onOutput(event: ClientOutput): void {
    const index = this.byKey.get(event.clientKeyHex);
    if (index === undefined) return;
    if (event.kind === 'certified') {
      this.counters.certified += 1;
      return;
    }
    this.counters.completed += 1;
    this.waiters[index]!.shift()?.resolve({ seq: event.seq, result: event.result, latencyMs: event.latencyMs });
  }
}

/** A frame: the channel byte, then the encoded message. */
function frameOn(channel: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(body.length + 1);
  frame[0] = channel;
  frame.set(body, 1);
  return frame;
}
