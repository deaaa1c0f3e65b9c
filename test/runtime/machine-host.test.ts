import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { encode } from '../../core/codec.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { LmdbKvStore } from '../../runtime/lmdb-kv-store.ts';
import { memoryLogger } from '../../runtime/log.ts';
import { MachineHost, type DurableKvStore } from '../../runtime/machine-host.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { CounterMachine, counterFrameBytesMax, decodeCounter, encodeCounter, type CounterMessage } from './counter-machine.ts';
import { waitFor } from './wait.ts';
import { freePort } from '../free-port.ts';

/** A store whose flushes the test releases by hand, to observe what happens before durability. */
class HeldStore extends MemoryKvStore implements DurableKvStore {
  dirty = false;
  flushCount = 0;
  private releases: (() => void)[] = [];
  override put(key: string, value: Uint8Array): void {
    super.put(key, value);
    this.dirty = true;
  }
  flush(): Promise<void> {
    this.flushCount += 1;
    this.dirty = false;
    return new Promise((resolve) => this.releases.push(resolve));
  }
  releaseOne(): boolean {
    const r = this.releases.shift();
    r?.();
    return r !== undefined;
  }
}


const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function pair(store: DurableKvStore) {
  const keys = { a: new Uint8Array(randomBytes(32)), b: new Uint8Array(randomBytes(32)) };
  const ports = { a: await freePort(), b: await freePort() };
  const directory = new Map<string, PeerAddress>([
    ['a', { publicKey: nodeCrypto.ed25519PublicKey(keys.a), url: `ws://127.0.0.1:${ports.a}` }],
    ['b', { publicKey: nodeCrypto.ed25519PublicKey(keys.b), url: `ws://127.0.0.1:${ports.b}` }],
  ]);
  const logged = memoryLogger('a');
  const make = (name: 'a' | 'b') =>
    new Transport({
      name, secretKey: keys[name], crypto: nodeCrypto, members: directory,
      listen: { host: '127.0.0.1', port: ports[name] }, frameBytesMax: 4096, log: logged.log,
    });
  const ta = make('a');
  const tb = make('b');
  const machine = new CounterMachine(store);
  const outputs: number[] = [];
  const host = new MachineHost('a', ta, store, logged.log);
  host.add<CounterMessage, number>({
    channel: 7, protocol: 'counter', machine, decode: decodeCounter, encode: encodeCounter,
    frameBytesMax: counterFrameBytesMax, tickMs: 10, onOutput: (t) => outputs.push(t),
  });
  const replies: number[] = [];
  tb.onFrame((_from, frame) => replies.push(decodeCounter(frame.subarray(1))[1]));
  await Promise.all([ta.start(), tb.start()]);
  host.start();
  cleanups.push(() => ta.stop(), () => tb.stop(), () => host.stop());
  await waitFor(() => tb.connectedPeers().includes('a'), 5000, 'connection');
  const sendFrame = (channel: number, body: Uint8Array) => {
    const f = new Uint8Array(body.length + 1);
    f[0] = channel;
    f.set(body, 1);
    tb.send('a', f);
  };
  return { host, machine, replies, outputs, sendFrame, lines: logged.lines };
}

describe('MachineHost', () => {
  it('holds every send and output until the flush covering its step resolves, and groups steps per flush', async () => {
    const store = new HeldStore();
    const { host, replies, outputs, sendFrame } = await pair(store);
    sendFrame(7, encodeCounter(['add', 1]));
    await waitFor(() => store.flushCount === 1, 5000, 'the first step\'s flush');
    for (const n of [2, 3]) sendFrame(7, encodeCounter(['add', n]));
    await waitFor(() => host.counters.steps >= 3, 5000, 'two more steps while the first flush is held');
    await new Promise((r) => setTimeout(r, 50)); // a reply sent without the barrier would arrive here
    expect(replies).toEqual([]);
    expect(outputs).toEqual([]);
    expect(store.releaseOne()).toBe(true); // flush 1 covered step 1 only; steps 2-3 wait for flush 2
    await waitFor(() => store.flushCount === 2, 5000, 'second flush');
    await waitFor(() => replies.length === 1, 5000, 'first reply');
    expect(replies).toEqual([1]);
    expect(store.releaseOne()).toBe(true);
    await waitFor(() => replies.length === 3, 5000, 'grouped replies');
    expect(replies).toEqual([1, 3, 6]);
    expect(outputs).toEqual([1, 3, 6]);
    expect(host.counters.stepsPerFlushMax).toBe(2);
  });

  it('a step that reveals nothing does not flush on its own: its writes ride the next release, or a lazy flush soon after', async () => {
    const store = new HeldStore();
    const { replies, sendFrame } = await pair(store);
    sendFrame(7, encodeCounter(['note', 7]));
    await waitFor(() => store.get('note') !== undefined, 5000, 'the note step');
    sendFrame(7, encodeCounter(['add', 2]));
    await waitFor(() => store.flushCount === 1, 5000, 'the add step\'s flush');
    // One flush covered both steps: the note's write did not cost an fsync of its own.
    expect(store.dirty).toBe(false);
    store.releaseOne();
    await waitFor(() => replies.length === 1, 5000, 'the reply');
    expect(store.flushCount).toBe(1);
    // Alone, a note is still made durable, within the host's lazy flush period (50 ms).
    sendFrame(7, encodeCounter(['note', 8]));
    await waitFor(() => store.flushCount === 2, 5000, 'the lazy flush');
    expect(new TextDecoder().decode(store.get('note'))).toBe('8');
    store.releaseOne();
  });

  it('a volatile binding (soft state, e.g. Tapestry) answers at once even while another core\'s flush is held', async () => {
    const store = new HeldStore();
    const { host, replies, sendFrame } = await pair(store);
    const echo = { onMessage: (from: string, m: CounterMessage) => [{ kind: 'send' as const, to: from, message: m }], onTick: () => [] };
    host.add<CounterMessage, never>({ channel: 8, protocol: 'echo', machine: echo, decode: decodeCounter, encode: encodeCounter, frameBytesMax: counterFrameBytesMax, tickMs: 1000, volatile: true });
    sendFrame(7, encodeCounter(['add', 1]));
    await waitFor(() => store.flushCount === 1, 5000, 'the counter step\'s flush, held');
    sendFrame(8, encodeCounter(['add', 42]));
    await waitFor(() => replies.length === 1, 5000, 'the echo, not held behind the flush');
    expect(replies).toEqual([42]);
    store.releaseOne();
    await waitFor(() => replies.length === 2, 5000, 'the counter reply after its flush');
    expect(replies).toEqual([42, 1]);
  });

  it('a step that ended with nothing staged leaves at once, even when a later step of the same turn staged writes', async () => {
    // The replica's reply step holds its execution writes back; a late commit handled in the same
    // turn stages them. The reply must not wait for their fsync: it depended on nothing unsynced.
    const store = new HeldStore();
    const { host, replies } = await pair(store);
    const echo = { onMessage: (from: string, m: CounterMessage) => [{ kind: 'send' as const, to: from, message: m }], onTick: () => [] };
    host.add<CounterMessage, never>({ channel: 8, protocol: 'echo', machine: echo, decode: decodeCounter, encode: encodeCounter, frameBytesMax: counterFrameBytesMax, tickMs: 1000 });
    host.inject(8, 'b', ['add', 42]); // writes nothing, sends
    host.inject(7, 'b', ['add', 1]); // writes, then sends: waits for the flush
    await waitFor(() => replies.length === 1, 5000, 'the clean step\'s send, not held behind the flush');
    expect(replies).toEqual([42]);
    expect(store.flushCount).toBe(1);
    store.releaseOne();
    await waitFor(() => replies.length === 2, 5000, 'the dirty step\'s send after its flush');
    expect(replies).toEqual([42, 1]);
  });

  it('a binding with encodeFrame has its frame sent as encoded, channel byte in front, without a second encoding or copy', async () => {
    const store = new HeldStore();
    const { host, replies, sendFrame } = await pair(store);
    const echo = { onMessage: (from: string, m: CounterMessage) => [{ kind: 'send' as const, to: from, message: m }], onTick: () => [] };
    const framed: Uint8Array[] = [];
    const encodeFrame = (m: CounterMessage, reservedBytes: number): Uint8Array => {
      const body = encodeCounter(m);
      const frame = new Uint8Array(reservedBytes + body.length).fill(0xee, 0, reservedBytes);
      frame.set(body, reservedBytes);
      framed.push(frame);
      return frame;
    };
    const encodeCalls: CounterMessage[] = [];
    const encode = (m: CounterMessage) => (encodeCalls.push(m), encodeCounter(m));
    host.add<CounterMessage, never>({ channel: 8, protocol: 'echo', machine: echo, decode: decodeCounter, encode, encodeFrame, frameBytesMax: counterFrameBytesMax, tickMs: 1000, volatile: true });
    sendFrame(8, encodeCounter(['add', 42]));
    await waitFor(() => replies.length === 1, 5000, 'the echo, encoded with encodeFrame');
    expect(replies).toEqual([42]);
    expect(framed).toHaveLength(1);
    // The host wrote the channel byte into the reserved byte of the very buffer encodeFrame returned.
    expect(framed[0]![0]).toBe(8);
    expect(decodeCounter(framed[0]!.subarray(1))).toEqual(['add', 42]);
    expect(encodeCalls).toEqual([]);
  });

  it('drops unknown-channel, malformed, oversized and empty-bodied frames with a logged reason and keeps serving', async () => {
    const store = new HeldStore();
    const { host, machine, replies, sendFrame, lines } = await pair(store);
    sendFrame(9, encodeCounter(['add', 1]));
    sendFrame(7, Uint8Array.of(0xc1)); // a reserved msgpack byte
    sendFrame(7, encode(['add', 'not a number']));
    sendFrame(7, new Uint8Array(counterFrameBytesMax + 1));
    sendFrame(7, new Uint8Array(0));
    sendFrame(7, encodeCounter(['add', 5]));
    await waitFor(() => store.flushCount === 1, 5000, 'the valid frame');
    store.releaseOne();
    await waitFor(() => replies.length === 1, 5000, 'reply');
    expect(replies).toEqual([5]);
    expect(machine.total).toBe(5);
    expect(host.counters.framesDropped).toBe(5);
    const reasons = lines.filter((l) => l.msg === 'frame dropped').map((l) => String(l.reason));
    expect(reasons[0]).toBe('unknown channel 9');
    expect(reasons[1]).toMatch(/^malformed: counter: /);
    expect(reasons[2]).toMatch(/^malformed: counter.n: expected a non-negative integer/);
    expect(reasons[3]).toMatch(/^oversized: 65 bytes exceeds 64/);
    expect(reasons[4]).toMatch(/^malformed: counter: empty/);
  });

  it("logs a few of a peer's dropped frames per reason, not one line each; the counter counts them all, and stop() logs how many were left out", async () => {
    const { host, sendFrame, lines } = await pair(new HeldStore());
    for (let i = 0; i < 2000; i++) sendFrame(99, new Uint8Array(0)); // unknown channel
    sendFrame(7, Uint8Array.of(0xc1)); // another reason: logged on its own
    await waitFor(() => host.counters.framesDropped === 2001, 10_000, 'every junk frame dropped');
    const dropped = lines.filter((l) => l.msg === 'frame dropped');
    expect(dropped.filter((l) => l.reason === 'unknown channel 99')).toHaveLength(5);
    expect(dropped.filter((l) => String(l.reason).startsWith('malformed'))).toHaveLength(1);
    await host.stop();
    expect(lines.filter((l) => l.msg === 'frame dropped (more lines like it left out)').map((l) => l.suppressed)).toEqual([1995]);
  });

  it('ticks the core every tickMs', async () => {
    const { machine } = await pair(new HeldStore());
    await waitFor(() => machine.ticks >= 5, 5000, 'five ticks');
    expect(machine.ticks).toBeGreaterThanOrEqual(5);
  });

  it('with the lmdb store, a reply implies the state is on disk', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oceanstore-host-'));
    const store = new LmdbKvStore({ path: dir });
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const { replies, sendFrame } = await pair(store);
    cleanups.push(() => store.close());
    for (let i = 0; i < 20; i++) sendFrame(7, encodeCounter(['add', 1]));
    await waitFor(() => replies.length === 20, 5000, 'twenty replies');
    expect(replies.at(-1)).toBe(20);
    expect(store.dirty).toBe(false);
    expect(store.flushStats().flushCount).toBeLessThanOrEqual(20);
  });

  it('names what failed when it stops the node: a flush that failed (70), or an output callback that threw after a good flush (71)', async () => {
    const exits: number[] = [];
    const exit = vi.spyOn(process, 'exit').mockImplementation(((code: number) => {
      exits.push(code);
    }) as never);
    cleanups.push(() => exit.mockRestore());
    const run = async (store: DurableKvStore, onOutput: () => void) => {
      const logged = memoryLogger('a');
      const host = new MachineHost('a', { onFrame() {}, send() {} } as unknown as Transport, store, logged.log);
      host.add({
        channel: 9, protocol: 'x', frameBytesMax: 10, tickMs: 60_000, decode: (b: Uint8Array) => b, encode: (m: unknown) => m as Uint8Array,
        machine: { onMessage: () => { store.put('k', Uint8Array.of(1)); return [{ kind: 'output', event: 'e' }]; }, onTick: () => [] } as never,
        onOutput,
      });
      host.inject(9, 'self', 'go');
      await waitFor(() => logged.lines.some((l) => l.level === 60), 5000, 'a fatal line');
      return logged.lines.filter((l) => l.level === 60).map((l) => l.msg);
    };
    const failing = Object.assign(new HeldStore(), { flush: () => Promise.reject(new Error('EIO')) });
    expect(await run(failing, () => {})).toEqual(['store flush failed; exiting']);
    const good = new HeldStore();
    const flushed = run(good, () => {
      throw new Error("ENOSPC: no space left on device, open 'ring-share.json.tmp'");
    });
    await waitFor(() => good.releaseOne(), 5000, 'the flush');
    expect(await flushed).toEqual(["a step's effects could not be performed; exiting"]);
    expect(exits).toEqual([70, 71]);

    // The log on the same full disk: its fatal line throws, and the exit code must still say 70.
    const logged = memoryLogger('a');
    logged.log.fatal = (() => {
      throw new Error('ENOSPC: no space left on device, write');
    }) as never;
    const host = new MachineHost('a', { onFrame() {}, send() {} } as unknown as Transport, failing, logged.log);
    host.add({
      channel: 9, protocol: 'x', frameBytesMax: 10, tickMs: 60_000, decode: (b: Uint8Array) => b, encode: (m: unknown) => m as Uint8Array,
      machine: { onMessage: () => { failing.put('k', Uint8Array.of(1)); return [{ kind: 'output', event: 'e' }]; }, onTick: () => [] } as never,
    });
    host.inject(9, 'self', 'go');
    await waitFor(() => exits.length === 3, 5000, 'a third exit');
    expect(exits).toEqual([70, 71, 70]);
  });
});
