import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { ConfigError } from '../../core/errors.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { signerOf } from '../../core/crypto.ts';
import { decodeChallenge, decodeHello, encodeChallenge, encodeHello, encodeWelcome, signHello, signWelcome } from '../../runtime/handshake.ts';
import { newEphemeral } from '../../runtime/frame-auth.ts';
import { memoryLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { waitFor } from './wait.ts';
import { freePort } from '../free-port.ts';


const started: Transport[] = [];
afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});

interface Member { name: string; secretKey: Uint8Array; port: number }

async function cluster(names: string[]) {
  const members: Member[] = [];
  for (const name of names) members.push({ name, secretKey: new Uint8Array(randomBytes(32)), port: await freePort() });
  const directory = new Map<string, PeerAddress>(
    members.map((m) => [m.name, { publicKey: nodeCrypto.ed25519PublicKey(m.secretKey), url: `ws://127.0.0.1:${m.port}` }]),
  );
  return { members, directory };
}

function transportFor(m: Member, directory: Map<string, PeerAddress>, frameBytesMax = 1 << 16) {
  const logged = memoryLogger(m.name);
  const t = new Transport({
    name: m.name, secretKey: m.secretKey, crypto: nodeCrypto, members: directory,
    listen: { host: '127.0.0.1', port: m.port }, frameBytesMax, log: logged.log, reconnectMsMin: 20, reconnectMsMax: 200,
  });
  started.push(t);
  const received: { from: string; frame: Uint8Array; isClient: boolean }[] = [];
  t.onFrame((from, frame, info) => received.push({ from, frame, isClient: info.isClient }));
  return { t, received, lines: logged.lines };
}

interface Relayed { data: Buffer; isBinary: boolean }
/** What to forward upstream when message `index` (1-based, per connection) arrives from the dialer. */
type RelayPolicy = (connection: number, index: number, message: Relayed) => Relayed[];

/**
 * A relay in front of `port` that passes messages from the member at its address unchanged and
 * those from the dialer through `policy` (in one socket write when it returns several): the man in
 * the middle a network attacker could run.
 */
async function startRelay(port: number, policy: RelayPolicy) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  let connections = 0;
  const upstreams = new Set<WebSocket>();
  server.on('connection', (down) => {
    const connection = ++connections;
    const up = new WebSocket(`ws://127.0.0.1:${port}`);
    upstreams.add(up);
    const early: Relayed[] = [];
    let index = 0;
    const forward = (ms: Relayed[]): void => {
      const socket = (up as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
      socket.cork();
      for (const m of ms) up.send(m.data, { binary: m.isBinary });
      socket.uncork();
    };
    down.on('message', (data: Buffer, isBinary: boolean) => {
      const out = policy(connection, ++index, { data, isBinary });
      if (up.readyState === WebSocket.OPEN) forward(out);
      else early.push(...out);
    });
    up.on('open', () => forward(early.splice(0)));
    up.on('message', (data: Buffer, isBinary: boolean) => down.readyState === WebSocket.OPEN && down.send(data, { binary: isBinary }));
    up.on('close', () => down.terminate());
    down.on('close', () => up.terminate());
    down.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  return {
    connections: () => connections,
    /** `directory` with `member` reached through this relay. */
    directory(directory: Map<string, PeerAddress>, member: string): Map<string, PeerAddress> {
      const port = (server.address() as { port: number }).port;
      return new Map(directory).set(member, { ...directory.get(member)!, url: `ws://127.0.0.1:${port}` });
    },
    async close(): Promise<void> {
      for (const ws of upstreams) ws.terminate();
      for (const ws of server.clients) ws.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('Transport', () => {
  it('a port in use is a ConfigError from start(), not an unhandled error event that ends the process', async () => {
    const { members, directory } = await cluster(['a']);
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(members[0]!.port, '127.0.0.1', () => resolve()));
    try {
      const { t } = transportFor(members[0]!, directory);
      await expect(t.start()).rejects.toThrow(new ConfigError(`cannot listen on 127.0.0.1:${members[0]!.port}: the port is in use (is this node already running?)`));
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('asking to connect again while a dial is in its handshake opens no second socket (no replace-and-redial loop)', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const [a, b] = members.map((m) => transportFor(m, directory));
    await b!.t.start();
    await a!.t.start();
    // e.g. every lookup asks for the peer, including while the first dial is in its handshake
    for (let i = 0; i < 40 && !a!.t.connectedPeers().includes('b'); i++) {
      a!.t.connect('b');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await waitFor(() => a!.t.connectedPeers().includes('b'), 5000, 'connected');
    await new Promise((resolve) => setTimeout(resolve, 700)); // several reconnect periods (20-200 ms)
    const accepted = b!.lines.filter((l) => l.msg === 'accepted').length;
    expect(accepted).toBe(1);
  });

  it('disconnect() closes a connection and stops redialling it until the next send names the peer', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const [a, b] = members.map((m) => transportFor(m, directory));
    await b!.t.start();
    await a!.t.start();
    a!.t.connect('b');
    await waitFor(() => a!.t.connectedPeers().includes('b'), 5000, 'connected');
    a!.t.disconnect('b');
    expect(a!.t.connectedPeers()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 700)); // several reconnect periods (20-200 ms)
    expect(a!.t.connectedPeers()).toEqual([]);
    expect(b!.lines.filter((l) => l.msg === 'accepted').length).toBe(1);
    a!.t.send('b', Uint8Array.of(7));
    await waitFor(() => b!.received.length === 1, 5000, 'a frame after the peer was named again');
    expect([...b!.received[0]!.frame]).toEqual([7]);
  });

  it('stop() ends connections still in their handshake: none completes afterwards and none is left open (a CLI process must exit)', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const a = transportFor(members[0]!, directory);
    await a.t.start();
    const accepted: WebSocket[] = [];
    // A slow acceptor: b's side answers the challenge only after the dialer has been stopped.
    const slow = new WebSocketServer({ host: '127.0.0.1', port: members[1]!.port });
    slow.on('connection', (ws) => accepted.push(ws));
    try {
      a.t.send('b', Uint8Array.of(1)); // a dials b ('a' < 'b')
      await waitFor(() => accepted.length === 1, 5000, 'the dial reached the acceptor');
      await a.t.stop();
      // Well inside the 5 s handshake timeout, which would otherwise be what closes it.
      await waitFor(() => accepted[0]!.readyState === WebSocket.CLOSED, 1500, 'the half-open socket closed');
      expect(a.t.connectedPeers()).toEqual([]);
    } finally {
      for (const ws of accepted) ws.terminate();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  it('connects config members over one authenticated connection each and delivers frames both ways', async () => {
    const { members, directory } = await cluster(['a', 'b', 'c']);
    const nodes = members.map((m) => transportFor(m, directory));
    await Promise.all(nodes.map((n) => n.t.start()));
    await waitFor(() => nodes.every((n) => n.t.connectedPeers().length === 2), 5000, 'full mesh');
    nodes[2]!.t.send('a', Uint8Array.of(1, 2, 3)); // c -> a travels over the connection a dialed
    nodes[0]!.t.send('c', Uint8Array.of(4));
    await waitFor(() => nodes[0]!.received.length === 1 && nodes[2]!.received.length === 1, 5000, 'frames');
    expect(nodes[0]!.received[0]).toMatchObject({ from: 'c', isClient: false });
    expect([...nodes[0]!.received[0]!.frame]).toEqual([1, 2, 3]);
    expect(nodes[2]!.received[0]!.from).toBe('a');
    // Exactly one accepted handshake per pair: the lower name dials.
    expect(nodes.reduce((s, n) => s + n.t.counters.handshakesAccepted, 0)).toBe(3);
  });

  it('refuses an impostor that claims a member name with a key not in the config', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const b = transportFor(members[1]!, directory);
    await b.t.start();
    const impostor = signerOf(nodeCrypto, new Uint8Array(randomBytes(32)));
    const ws = new WebSocket(`ws://127.0.0.1:${members[1]!.port}`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data: Buffer) => {
      const challenge = decodeChallenge(new Uint8Array(data));
      ws.send(encodeHello(signHello(impostor, challenge, 'a', new Uint8Array(randomBytes(32)), newEphemeral().publicKey)));
    });
    expect(await closed).toBe(4001);
    expect(b.t.counters.handshakesRefused).toBe(1);
    expect(b.lines.some((l) => String(l.reason).startsWith('impostor'))).toBe(true);
    expect(b.t.connectedPeers()).toEqual([]);
  });

  it('refuses a dialer whose signature does not answer this challenge (replayed handshake)', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const b = transportFor(members[1]!, directory);
    await b.t.start();
    const a = signerOf(nodeCrypto, members[0]!.secretKey);
    const ws = new WebSocket(`ws://127.0.0.1:${members[1]!.port}`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data: Buffer) => {
      const challenge = decodeChallenge(new Uint8Array(data));
      const stale = { ...challenge, acceptorNonce: new Uint8Array(32) }; // signed for another session
      ws.send(encodeHello(signHello(a, stale, 'a', new Uint8Array(randomBytes(32)), newEphemeral().publicKey)));
    });
    expect(await closed).toBe(4001);
    expect(b.lines.some((l) => l.reason === 'bad handshake signature')).toBe(true);
  });

  it('accepts an unknown key only as a client, named from its key', async () => {
    const { members, directory } = await cluster(['a']);
    const a = transportFor(members[0]!, directory);
    await a.t.start();
    const clientKey = new Uint8Array(randomBytes(32));
    const client = new Transport({
      name: 'a', // claiming nothing special: an unknown key may not take a member's name
      secretKey: clientKey, crypto: nodeCrypto, members: directory, frameBytesMax: 1 << 16, log: memoryLogger().log,
    });
    started.push(client);
    await client.start();
    client.send('a', Uint8Array.of(9));
    await waitFor(() => a.t.counters.handshakesRefused === 1, 5000, 'refusal of a member name with a client key');
    const honest = new Transport({
      name: 'my-laptop', secretKey: clientKey, crypto: nodeCrypto, members: directory, frameBytesMax: 1 << 16, log: memoryLogger().log,
    });
    started.push(honest);
    await honest.start();
    honest.send('a', Uint8Array.of(7));
    await waitFor(() => a.received.length === 1, 5000, 'client frame');
    expect(a.received[0]!.isClient).toBe(true);
    expect(a.received[0]!.from).toMatch(/^client-[0-9a-f]{24}$/);
    // The node can answer the client by that name.
    const replies: Uint8Array[] = [];
    honest.onFrame((_from, frame) => replies.push(frame));
    a.t.send(a.received[0]!.from, Uint8Array.of(8));
    await waitFor(() => replies.length === 1, 5000, 'reply to client');
  });

  it('a member whose URL WebSocket refuses is logged and retried with backoff, and the node keeps running', async () => {
    const { members, directory } = await cluster(['a']);
    directory.set('b', { publicKey: nodeCrypto.ed25519PublicKey(new Uint8Array(randomBytes(32))), url: 'ws://::1:9000' }); // unbracketed IPv6
    const a = transportFor(members[0]!, directory); // a < b: a dials b at once, and again after each failure
    await a.t.start();
    await waitFor(() => a.lines.filter((l) => l.msg === 'cannot dial peer').length >= 2, 5000, 'two failed dials');
    expect(a.lines.find((l) => l.msg === 'cannot dial peer')).toMatchObject({ peer: 'b', url: 'ws://::1:9000' });
  });

  it('refuses clients beyond clientsMax, and takes one again when a client leaves', async () => {
    const { members, directory } = await cluster(['a']);
    const logged = memoryLogger('a');
    const a = new Transport({
      name: 'a', secretKey: members[0]!.secretKey, crypto: nodeCrypto, members: directory, listen: { host: '127.0.0.1', port: members[0]!.port },
      frameBytesMax: 1024, log: logged.log, clientsMax: 2,
    });
    started.push(a);
    const fromClients = new Set<string>();
    a.onFrame((from) => fromClients.add(from));
    await a.start();
    const client = () => {
      const t = new Transport({ name: 'laptop', secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members: directory, frameBytesMax: 1024, log: memoryLogger().log, reconnectMsMin: 20, reconnectMsMax: 50 });
      started.push(t);
      return t;
    };
    const [c1, c2, c3] = [client(), client(), client()];
    for (const c of [c1, c2]) c.send('a', Uint8Array.of(1));
    await waitFor(() => fromClients.size === 2, 5000, 'two clients');
    c3.send('a', Uint8Array.of(1));
    await waitFor(() => logged.lines.some((l) => String(l.reason).startsWith('too many clients connected')), 5000, 'third refused');
    expect(fromClients.size).toBe(2);
    await c1.stop();
    await waitFor(() => fromClients.size === 3, 5000, 'third taken after one left (it redials)');
  });

  it('cuts a connection whose peer sends a frame over the limit (ws refuses it at its header, holding none of it), logs it and reconnects', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const [a, b] = [transportFor(members[0]!, directory, 1024), transportFor(members[1]!, directory, 1024)];
    await Promise.all([a.t.start(), b.t.start()]);
    await waitFor(() => b.t.connectedPeers().includes('a'), 5000, 'connection');
    a.t.send('b', new Uint8Array(1500));
    await waitFor(() => b.t.counters.framesOversized === 1, 5000, 'the oversized frame refused');
    expect(b.lines.some((l) => l.msg === 'message over the size limit; connection cut' && l.limit === 1024)).toBe(true);
    // a redials; frames sent from then on arrive.
    await waitFor(() => {
      a.t.send('b', Uint8Array.of(5));
      return b.received.length > 0;
    }, 5000, 'a frame after the reconnect');
    expect(b.received.every((r) => r.frame.length === 1)).toBe(true);
    expect(b.t.connectedPeers()).toEqual(['a']);
  });

  it('a frame altered or replayed in flight is refused by its tag, the connection is cut, nothing read after the cut counts, and the redial gets fresh keys', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const b = transportFor(members[1]!, directory);
    await b.t.start();
    // Messages from a, per connection: 1 is the hello, then each batch is its frames and a tag.
    const held: Relayed[] = [];
    const relay = await startRelay(members[1]!.port, (connection, index, m) => {
      if (connection === 1 && index >= 4 && index <= 7) {
        // Frame 2 altered, its tag, then frame 3 and its good tag, all in one write: after the
        // bad tag cuts the connection, the good batch behind it must not be delivered.
        held.push(index === 4 ? { ...m, data: Buffer.from(m.data.map((x, i) => (i === 0 ? x ^ 1 : x))) } : m);
        return index === 7 ? held.splice(0) : [];
      }
      if (connection === 2 && index === 3) return [m, held[0]!, m]; // the first batch again, whole
      if (connection === 2 && index === 2) held.push(m);
      return [m];
    });
    try {
      const a = transportFor(members[0]!, relay.directory(directory, 'b'));
      await a.t.start();
      await waitFor(() => a.t.connectedPeers().includes('b'), 5000, 'first connection');
      a.t.send('b', Uint8Array.of(1));
      await waitFor(() => b.received.length === 1, 5000, 'first frame');
      a.t.send('b', Uint8Array.of(2)); // altered in flight
      await new Promise((resolve) => setImmediate(resolve));
      a.t.send('b', Uint8Array.of(3)); // a good batch, read in the same chunk after the bad tag
      await waitFor(() => b.t.counters.framesBadTag === 1, 5000, 'altered frame refused');
      expect(b.lines.some((l) => String(l.msg).startsWith('frame refused: bad tag'))).toBe(true);
      await waitFor(() => relay.connections() === 2 && a.t.connectedPeers().includes('b'), 5000, 'redial after the cut');
      expect(b.received.map((r) => r.frame[0])).toEqual([1]);
      a.t.send('b', Uint8Array.of(4)); // delivered, then its batch replayed in flight
      await waitFor(() => b.t.counters.framesBadTag === 2, 5000, 'replayed batch refused');
      await waitFor(() => relay.connections() === 3 && a.t.connectedPeers().includes('b'), 5000, 'second redial');
      a.t.send('b', Uint8Array.of(5));
      await waitFor(() => b.received.length === 3, 5000, 'frame on an honest connection');
      expect(b.received.map((r) => r.frame[0])).toEqual([1, 4, 5]); // nothing altered, nothing twice
    } finally {
      await relay.close();
    }
  });

  it('a tag record of the right length that is not hex cuts the connection; its frames are not delivered', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const b = transportFor(members[1]!, directory);
    await b.t.start();
    const relay = await startRelay(members[1]!.port, (connection, _index, m) => (connection === 1 && !m.isBinary ? [{ ...m, data: Buffer.from('z'.repeat(32)) }] : [m]));
    try {
      const a = transportFor(members[0]!, relay.directory(directory, 'b'));
      await a.t.start();
      await waitFor(() => a.t.connectedPeers().includes('b'), 5000, 'connection');
      a.t.send('b', Uint8Array.of(1));
      await waitFor(() => b.t.counters.framesBadTag === 1, 5000, 'malformed tag refused');
      expect(b.received).toEqual([]);
    } finally {
      await relay.close();
    }
  });

  it('a batch whose tag never comes is cut after a few heartbeat periods instead of being held forever', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const logged = memoryLogger('b');
    const b = new Transport({
      name: 'b', secretKey: members[1]!.secretKey, crypto: nodeCrypto, members: directory, listen: { host: '127.0.0.1', port: members[1]!.port },
      frameBytesMax: 1024, log: logged.log, heartbeatMs: 100,
    });
    started.push(b);
    const received: Uint8Array[] = [];
    b.onFrame((_from, frame) => received.push(frame));
    await b.start();
    const relay = await startRelay(members[1]!.port, (connection, _index, m) => (connection === 1 && !m.isBinary ? [] : [m])); // drops tags
    try {
      const a = transportFor(members[0]!, relay.directory(directory, 'b'));
      await a.t.start();
      await waitFor(() => a.t.connectedPeers().includes('b'), 5000, 'connection');
      a.t.send('b', Uint8Array.of(1));
      await waitFor(() => logged.lines.some((l) => l.msg === 'frames held without a tag for several heartbeat periods; connection cut'), 5000, 'held batch cut');
      expect(received).toEqual([]);
    } finally {
      await relay.close();
    }
  });

  it('a dialer signs nothing for a server that is not the member it dialled, and a member hello from the side that should be dialled is refused', async () => {
    const { members, directory } = await cluster(['a', 'b', 'c']);
    // A server at b's address with another key: a must not answer its challenge with a signed hello.
    const stranger = signerOf(nodeCrypto, new Uint8Array(randomBytes(32)));
    const fake = new WebSocketServer({ host: '127.0.0.1', port: members[1]!.port });
    const fromDialer: Buffer[] = [];
    fake.on('connection', (ws) => {
      ws.on('message', (data: Buffer) => fromDialer.push(data));
      ws.send(encodeChallenge({ acceptorKey: stranger.publicKey, acceptorNonce: new Uint8Array(randomBytes(32)), acceptorEphemeral: newEphemeral().publicKey }));
    });
    try {
      const a = transportFor(members[0]!, directory);
      await a.t.start();
      await waitFor(() => a.lines.some((l) => l.reason === 'acceptor key does not match the config'), 5000, 'refusal by the dialer');
      expect(fromDialer).toEqual([]);
    } finally {
      for (const ws of fake.clients) ws.terminate();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
    // c sorts after b, so b dials c: a hello from c reaching b was relayed by someone else.
    const b = transportFor(members[1]!, directory);
    await b.t.start();
    const c = signerOf(nodeCrypto, members[2]!.secretKey);
    const ws = new WebSocket(`ws://127.0.0.1:${members[1]!.port}`);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('message', (data: Buffer) => ws.send(encodeHello(signHello(c, decodeChallenge(new Uint8Array(data)), 'c', new Uint8Array(randomBytes(32)), newEphemeral().publicKey))));
    expect(await closed).toBe(4001);
    expect(b.lines.some((l) => l.reason === "member 'c' is dialled by this node, not the other way")).toBe(true);
  });

  it('queues frames for a peer that is down and delivers them when it comes back (reconnect with backoff)', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const a = transportFor(members[0]!, directory);
    await a.t.start();
    for (let i = 0; i < 10; i++) a.t.send('b', Uint8Array.of(i));
    await new Promise((r) => setTimeout(r, 150)); // several failed dial attempts happen here
    const b = transportFor(members[1]!, directory);
    await b.t.start();
    await waitFor(() => b.received.length === 10, 5000, 'queued frames');
    expect(b.received.map((r) => r.frame[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('refuses frames beyond the bounded send queue instead of growing without limit', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const logged = memoryLogger('a');
    const a = new Transport({
      name: 'a', secretKey: members[0]!.secretKey, crypto: nodeCrypto, members: directory, frameBytesMax: 1024,
      log: logged.log, limits: { queueFramesMax: 5 },
    });
    started.push(a);
    let accepted = 0;
    for (let i = 0; i < 8; i++) if (a.send('b', Uint8Array.of(i))) accepted += 1;
    expect(accepted).toBe(5);
    expect(a.counters.framesDroppedQueueFull).toBe(3);
  });

  it('counts frames for a name with no connection and no address (a client not connected here) as having no route', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const a = transportFor(members[0]!, directory);
    await a.t.start();
    expect(a.t.send('client-not-here', Uint8Array.of(1))).toBe(false);
    expect(a.t.send('b', Uint8Array.of(2))).toBe(true);
    expect(a.t.counters.framesNoRoute).toBe(1);
  });

  it('cuts a peer that stops answering pings (half-open connection) and dials it again', async () => {
    const { members, directory } = await cluster(['a', 'b']);
    const bSigner = signerOf(nodeCrypto, members[1]!.secretKey);
    // A fake 'b' that completes the handshake and then never answers a ping (as a hung host would not).
    const fake = new WebSocketServer({ host: '127.0.0.1', port: members[1]!.port, autoPong: false });
    let connections = 0;
    fake.on('connection', (ws) => {
      connections += 1;
      const challenge = { acceptorKey: bSigner.publicKey, acceptorNonce: new Uint8Array(randomBytes(32)), acceptorEphemeral: newEphemeral().publicKey };
      ws.on('message', (data: Buffer) => {
        const hello = decodeHello(new Uint8Array(data));
        ws.send(encodeWelcome(signWelcome(bSigner, challenge, hello, 'a')));
      });
      ws.send(encodeChallenge(challenge));
    });
    try {
      const logged = memoryLogger('a');
      const a = new Transport({
        name: 'a', secretKey: members[0]!.secretKey, crypto: nodeCrypto, members: directory, frameBytesMax: 1024,
        log: logged.log, heartbeatMs: 100, heartbeatPeriodsMax: 2, reconnectMsMin: 20, reconnectMsMax: 50,
      });
      started.push(a);
      await a.start();
      await waitFor(() => logged.lines.some((l) => l.msg === 'peer silent for several heartbeat periods; connection cut'), 5000, 'heartbeat cut');
      await waitFor(() => connections >= 2, 5000, 'redial after the cut');
      expect(connections).toBeGreaterThanOrEqual(2);
    } finally {
      for (const ws of fake.clients) ws.terminate();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });
});
