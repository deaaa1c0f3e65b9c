/**
 * What a peer can make a node hold: a socket that has proved nothing holds a handshake message at
 * most, and only so many such sockets at once; an authenticated peer holds one frame limit per
 * socket, not twice that (the seventeenth session's review).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { signerOf, type Signer } from '../../core/crypto.ts';
import { newEphemeral } from '../../runtime/frame-auth.ts';
import { decodeChallenge, encodeHello, signHello } from '../../runtime/handshake.ts';
import { memoryLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Transport, type PeerAddress, type TransportOptions } from '../../runtime/transport.ts';
import { waitFor } from './wait.ts';
import { freePort } from '../free-port.ts';

const started: Transport[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const t of started.splice(0)) await t.stop();
});

/** A member 'a' listening on loopback, with `options` over the defaults. */
async function startNode(options: Partial<TransportOptions> = {}) {
  const port = await freePort();
  const secretKey = new Uint8Array(randomBytes(32));
  const members = new Map<string, PeerAddress>([['a', { publicKey: nodeCrypto.ed25519PublicKey(secretKey), url: `ws://127.0.0.1:${port}` }]]);
  const logged = memoryLogger('a');
  const t = new Transport({
    name: 'a', secretKey, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port }, frameBytesMax: 1 << 20, log: logged.log, ...options,
  });
  started.push(t);
  await t.start();
  return { t, port, members, lines: logged.lines };
}

/** A raw ws socket to `port` that records the messages it gets and how it was closed. */
function rawSocket(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  sockets.push(ws);
  const state = { ws, messages: 0, closeCode: null as number | null };
  ws.on('error', () => undefined);
  ws.on('message', () => (state.messages += 1));
  ws.on('close', (code) => (state.closeCode = code));
  return state;
}

/** A raw socket that completes the handshake as a client with `signer` (the welcome is its second message). */
async function rawClient(port: number, signer: Signer) {
  const s = rawSocket(port);
  s.ws.once('message', (data: Buffer) => {
    const hello = signHello(signer, decodeChallenge(new Uint8Array(data)), 'laptop', new Uint8Array(randomBytes(32)), newEphemeral().publicKey);
    s.ws.send(encodeHello(hello));
  });
  await waitFor(() => s.messages === 2, 5000, 'the welcome');
  return s;
}

describe('transport limits before the handshake', () => {
  it('a socket that has not proved its key is cut as soon as it starts a message longer than a handshake message', async () => {
    // A long handshake timeout: the cut must come from the size, not the clock.
    const { t, port } = await startNode({ handshakeTimeoutMs: 30_000 });
    const s = rawSocket(port);
    await waitFor(() => s.messages === 1, 5000, 'the challenge');
    // One fragment of an unfinished message: before the fix ws took it (and up to twice the frame
    // limit more) and held it until the handshake timed out.
    s.ws.send(Buffer.alloc(64 * 1024, 0x41), { binary: true, fin: false });
    await waitFor(() => s.closeCode !== null, 5000, 'the cut');
    expect(s.closeCode).toBe(1009); // ws: message too big, refused at its header
    expect(t.counters.framesOversized).toBe(1);
    expect(t.counters.handshakesAccepted).toBe(0);
  });

  it('keeps at most handshakingMax sockets in their handshake: a newcomer pushes the oldest out, so sockets that never say hello cannot lock others out', async () => {
    const { t, port } = await startNode({ handshakingMax: 4, handshakeTimeoutMs: 30_000 });
    const first = [0, 1, 2, 3].map(() => rawSocket(port));
    await waitFor(() => first.every((s) => s.messages === 1), 5000, 'four challenges');
    const extra = [rawSocket(port), rawSocket(port)];
    await waitFor(() => extra.every((s) => s.messages === 1), 5000, 'challenges for the two newcomers');
    await waitFor(() => first[0]!.closeCode !== null && first[1]!.closeCode !== null, 5000, 'the two oldest cut');
    expect(first.slice(2).every((s) => s.closeCode === null)).toBe(true);
    expect(t.counters.handshakesRefused).toBe(2);
  });
});

describe('transport logs', () => {
  it('logs a few refused handshakes per address, not one line each', async () => {
    const { t, port, lines } = await startNode();
    const refused = Array.from({ length: 20 }, () => rawSocket(port));
    for (const s of refused) s.ws.once('message', () => s.ws.send(Uint8Array.of(1, 2, 3))); // not a hello
    await waitFor(() => t.counters.handshakesRefused === 20, 5000, 'twenty refusals');
    expect(lines.filter((l) => l.msg === 'handshake refused')).toHaveLength(5);
    await t.stop();
    expect(lines.filter((l) => l.msg === 'handshake refused (more lines like it left out)').map((l) => l.suppressed)).toEqual([15]);
  });
});

describe('transport limits for clients', () => {
  it('a client that leaves a message unfinished is cut after the held-batch deadline, though its socket answers pings', async () => {
    // Deadlines: 3 heartbeat periods of 100 ms.
    const { t, port } = await startNode({ heartbeatMs: 100 });
    const s = await rawClient(port, signerOf(nodeCrypto, new Uint8Array(randomBytes(32))));
    s.ws.send(Buffer.alloc(256 * 1024, 0x42), { binary: true, fin: false }); // never finished
    await waitFor(() => s.closeCode !== null, 5000, 'the cut');
    expect(t.counters.framesBadTag).toBe(1);
    expect(t.connectedPeers()).toEqual([]);
  });

  it('a client whose one message arrives slowly but steadily, for longer than that deadline, is not cut', async () => {
    const { t, port } = await startNode({ heartbeatMs: 50 });
    const s = await rawClient(port, signerOf(nodeCrypto, new Uint8Array(randomBytes(32))));
    // 16 fragments of 48 KiB, one every 40 ms: 640 ms for the message against a 150 ms deadline.
    for (let i = 0; i < 16; i++) {
      s.ws.send(Buffer.alloc(48 * 1024, 0x43), { binary: true, fin: i === 15 });
      await new Promise((r) => setTimeout(r, 40));
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(s.closeCode).toBeNull();
    expect(t.connectedPeers()).toHaveLength(1);
  });

  it("an honest client's frames, one after another, are not cut by that deadline", async () => {
    const { t, port, members } = await startNode({ heartbeatMs: 50 });
    const received: number[] = [];
    t.onFrame((_from, frame) => received.push(frame.length));
    const client = new Transport({ name: 'laptop', secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members, frameBytesMax: 1 << 20, log: memoryLogger().log });
    started.push(client);
    await client.start();
    for (let i = 0; i < 20; i++) {
      client.send('a', new Uint8Array(512 * 1024));
      await new Promise((r) => setTimeout(r, 20));
    }
    await waitFor(() => received.length === 20, 10_000, 'twenty frames');
    expect(t.counters.framesBadTag).toBe(0);
  });

  it('a client key that reconnects replaces its socket at once: clientsMax bounds sockets, not keys', async () => {
    const { t, port } = await startNode({ clientsMax: 1 });
    const signer = signerOf(nodeCrypto, new Uint8Array(randomBytes(32)));
    const server = (t as unknown as { server: { clients: Set<unknown> } }).server;
    for (let i = 0; i < 4; i++) {
      const s = await rawClient(port, signer);
      // Stops reading: a close handshake the node starts is never answered (ws would wait 30 s).
      (s.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      await waitFor(() => server.clients.size === 1, 5000, `one socket on the node after connection ${i + 1}`);
    }
    expect(t.counters.handshakesAccepted).toBe(4);
    // Another key is refused while that one is connected.
    const other = rawSocket(port);
    other.ws.once('message', (data: Buffer) => {
      const hello = signHello(signerOf(nodeCrypto, new Uint8Array(randomBytes(32))), decodeChallenge(new Uint8Array(data)), 'x', new Uint8Array(randomBytes(32)), newEphemeral().publicKey);
      other.ws.send(encodeHello(hello));
    });
    await waitFor(() => other.closeCode !== null, 5000, 'the other key refused');
    expect(other.closeCode).toBe(4001);
  });
});
