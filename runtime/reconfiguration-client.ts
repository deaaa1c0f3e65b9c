/**
 * The admin's side of a reconfiguration on real processes: orders a reconfigure record through
 * the ring as a request signed by the admin key (the ring refuses it from any other key), then
 * follows every ring server's /status until the new epoch is in force and the old shares are
 * gone. Used by `cluster refresh-keys` and the process tests.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { fromHex } from '../core/bytes.ts';
import { signerOf, type Crypto } from '../core/crypto.ts';
import { encode } from '../core/codec.ts';
import { TimeoutError } from '../core/errors.ts';
import type { Effect } from '../core/machine.ts';
import { MemoryKvStore } from '../core/store.ts';
import { RingClient } from '../ring/client.ts';
import { decodeRingMessage, encodeRingMessage, ringFrameBytesMax } from '../ring/codec.ts';
import type { RingMessage } from '../ring/messages.ts';
import type { RingOutput } from '../ring/outputs.ts';
import { encodeReconfigurationRecord, type ReconfigurationAction } from '../ring/reconfiguration-codec.ts';
import type { ClusterConfig } from './cluster-config.ts';
import { currentRingOf, secureRandom, type RingDescriptor } from './cluster-keys.ts';
import { fetchJson } from './cluster-launcher.ts';
import { clientNameOf } from './handshake.ts';
import { channels } from './roles.ts';
import { Transport, type PeerAddress } from './transport.ts';

/** What a ring server's /status says about reconfiguration (runtime/reconfiguration-role.ts). */
export interface ReconfigurationStatus {
  readonly epoch: number;
  readonly epochScheduled: number;
  readonly epochFirstSeq: number;
  /** The member list this server's PBFT core runs with. */
  readonly members: readonly string[];
  readonly shareEpochs: readonly number[];
  readonly round: { epoch: number; phase: string } | null;
  readonly lastRound: { epoch: number; result: 'installed' | 'aborted'; reason: string; decidedSeq: number } | null;
}

/** Orders one admin record; resolves with the ring's result text once f+1 replicas replied. */
export async function submitAdminRecord(
  descriptor: RingDescriptor, adminSecretKey: Uint8Array, epoch: number, action: ReconfigurationAction,
  crypto: Crypto, log: Logger, timeoutMs: number,
): Promise<string> {
  const members = currentRingOf(descriptor);
  const sessionKey = new Uint8Array(randomBytes(32));
  const directory = new Map<string, PeerAddress>(descriptor.nodes.map((n) => [n.name, { publicKey: fromHex(n.publicKey), url: n.url }]));
  const transport = new Transport({
    name: 'admin', secretKey: sessionKey, crypto, members: directory, frameBytesMax: ringFrameBytesMax + 1, log, reconnectMsMin: 50, reconnectMsMax: 500,
  });
  const nodeId = clientNameOf(crypto, crypto.ed25519PublicKey(sessionKey));
  // The admin key signs every admin record, from one command to the next, and the ring drops a
  // nonce it has executed: start above any earlier command's (clock in microseconds; one record
  // per command), as the SDK does. A fresh store alone made every second command reuse nonce 1
  // and wait forever (found by a refresh after a replacement).
  const store = new MemoryKvStore();
  store.put('client/nonce', encode(Date.now() * 1000));
  const client = new RingClient(
    { nodeId, store, random: secureRandom, nowMs: Date.now() },
    // The admin waits for replies only: its record has no certificate statement.
    { members, f: descriptor.f, crypto, signer: signerOf(crypto, adminSecretKey), certificateVerifier: { verify: () => false }, retransmitMs: 1000, certificateRetryMs: Infinity, ringId: fromHex(descriptor.ringId), channelIntegrity: true },
  );
  let resolve!: (result: string) => void;
  const done = new Promise<string>((r) => (resolve = r));
  const perform = (effects: Effect<RingMessage, RingOutput>[]): void => {
    for (const e of effects) {
      if (e.kind === 'send') {
        const body = encodeRingMessage(e.message);
        const frame = new Uint8Array(body.length + 1);
        frame[0] = channels.ring;
        frame.set(body, 1);
        transport.send(e.to, frame);
      } else if (e.event.kind === 'completed') resolve(new TextDecoder().decode(e.event.result));
    }
  };
  transport.onFrame((from, frame) => {
    if (frame[0] !== channels.ring) return;
    try {
      const message = decodeRingMessage(frame.subarray(1));
      if (message.kind === 'reply' || message.kind === 'nonce-passed') perform(client.onMessage(from, message, Date.now()));
    } catch {
      // a malformed frame from a server: ignore it, f+1 others will answer
    }
  });
  await transport.start();
  for (const m of members) transport.connect(m.id);
  const tick = setInterval(() => perform(client.onTick(Date.now())), 50);
  let timer: NodeJS.Timeout | undefined;
  try {
    perform(client.submit(encodeReconfigurationRecord({ kind: 'reconfigure', epoch, action }), Date.now()));
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new TimeoutError(`the ring did not order the reconfigure record within ${timeoutMs} ms`)), timeoutMs)));
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
    clearInterval(tick);
    await transport.stop();
  }
}

/** The named nodes' reconfiguration status (null for a server that did not answer). */
export async function ringReconfigurationStatus(config: ClusterConfig, names: readonly string[]): Promise<{ name: string; status: ReconfigurationStatus | null; seq: number }[]> {
  const ring = config.nodes.filter((n) => names.includes(n.name));
  return Promise.all(ring.map(async (n) => {
    const body = (await fetchJson(`http://127.0.0.1:${n.adminPort}/status`, 2000)) as { reconfiguration?: ReconfigurationStatus; seq?: number } | null;
    return { name: n.name, status: body?.reconfiguration ?? null, seq: Number(body?.seq ?? -1) };
  }));
}
