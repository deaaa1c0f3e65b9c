// Issue 7's must-show: a tampering proxy (test/client/tampering-proxy.ts: a Byzantine member that
// holds the member's key) in front of every ring server and secondary never gets a wrong result
// accepted by the SDK. Pond (FAST 2003,
// §2.2, §4.4): clients trust only the inner ring's threshold certificate and self-verifying
// blocks; secondary replicas and the network are untrusted. Each attack is run against every
// member (the SDK must raise a named error) and against all but one member (the SDK must fail
// over and return exactly the right bytes). Every test also asserts its attack happened.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, IntegrityError, newIdentity, OceanStoreError, type OceanStore } from '../../client/index.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import type { ClusterConfig } from '../../runtime/cluster-config.ts';
import { loadDescriptor, type RingDescriptor } from '../../runtime/cluster-keys.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { flipped, proxyMembers, ringFrame, ringMessageOf, treeFrame, treeMessageOf, type Tamper, type TamperingProxy } from './tampering-proxy.ts';

type ReadReply = Extract<TreeMessage, { type: 'read-reply' }>;

let owner: OceanStore;
let descriptor: RingDescriptor;
/** Tree members a reader may ask: ring servers and secondaries. */
let members: string[];
let client: OceanStore;
let proxies: Map<string, TamperingProxy>;
const small = new Uint8Array(randomBytes(3_000));
const large = new Uint8Array(randomBytes(256 * 1024));
const readTimeoutMs = 4_000;

/** Sets `tamper` on the named members' proxies and an honest relay on the others. */
function attack(names: readonly string[], tamper: Tamper): TamperingProxy[] {
  for (const [name, proxy] of proxies) {
    proxy.tamper = names.includes(name) ? tamper : (frame) => frame;
    proxy.framesTampered = 0;
  }
  return names.map((n) => proxies.get(n)!);
}

/** Polls `condition` every 50 ms until it holds or `timeoutMs` passes; returns whether it held. */
async function until(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadlineMs = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadlineMs) await new Promise((resolve) => setTimeout(resolve, 50));
  return condition();
}

const tamperedCount = (attacked: TamperingProxy[]) => attacked.reduce((n, p) => n + p.framesTampered, 0);
const allButOneRing = () => members.filter((m) => m !== 'ring-2');
/** The proxied client's handle on an object the (directly connected) owner made. */
const ownerObject = (name: string) => client.open(name, owner.identity.publicKey);

/** Rewrites successful read replies with `change`; everything else passes. */
function onReadReplies(change: (reply: ReadReply) => ReadReply | null): Tamper {
  return (frame) => {
    const message = treeMessageOf(frame);
    if (message?.type !== 'read-reply' || message.status !== 'ok') return frame;
    const changed = change(message);
    return changed ? treeFrame(changed) : null;
  };
}

const lastBlockFlipped = onReadReplies((r) => ({ ...r, blocks: r.blocks.map((b, i) => (i === r.blocks.length - 1 ? { ...b, bytes: flipped(b.bytes) } : b)) }));
const certificateFlipped = onReadReplies((r) => ({ ...r, certificate: r.certificate && flipped(r.certificate, r.certificate.length - 10) }));

/**
 * The tampering tests, run inside the end-to-end file on its cluster (one cluster of 14 processes
 * for both: the machine has two cores). `env` gives that file's cluster config and owner.
 */
export function tamperingSuite(env: () => { config: ClusterConfig; owner: OceanStore }): void {
  describe('a tampering proxy never gets a wrong result accepted (Pond §4.4: only certificates and block hashes are trusted)', () => {
    beforeAll(async () => {
      owner = env().owner;
      descriptor = loadDescriptor(env().config, nodeCrypto);
      members = descriptor.nodes.filter((n) => n.role === 'ring' || n.role === 'replica').map((n) => n.name);
      const identity = newIdentity();
      const transportKey = new Uint8Array(randomBytes(32));
      const proxied = await proxyMembers(env().config, descriptor, members, [transportKey]);
      proxies = proxied.proxies;
      client = await connect({ descriptor: proxied.descriptor, identity, transportKey, connectTimeoutMs: 30_000 });
      const doc = await owner.create('doc');
      await (await doc.write(small)).certified;
      const big = await owner.create('big');
      await (await big.write(large)).certified;
    }, 120_000);

    afterAll(async () => {
      await client?.close();
      for (const proxy of proxies?.values() ?? []) await proxy.close();
    }, 30_000);

    it('honest relays: a read demanding a ring heartbeat under 10 s old returns the latest bytes exactly (Pond §4.4 heartbeats)', async () => {
      attack([], (frame) => frame);
      const bytes = await ownerObject('doc').read({ maxAgeMs: 10_000, timeoutMs: 15_000 });
      expect(Buffer.from(bytes).equals(small)).toBe(true);
    }, 30_000);

    it('flipped bytes in block payloads: IntegrityError when every member lies, exact bytes when one is honest', async () => {
      let attacked = attack(members, lastBlockFlipped);
      await expect(ownerObject('doc').read({ timeoutMs: readTimeoutMs })).rejects.toBeInstanceOf(IntegrityError);
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
      attacked = attack(allButOneRing(), lastBlockFlipped);
      expect(Buffer.from(await ownerObject('doc').read({ timeoutMs: 15_000 })).equals(small)).toBe(true);
    }, 60_000);

    it('corrupted certificate signatures: IntegrityError when every member lies, exact bytes when one is honest', async () => {
      let attacked = attack(members, certificateFlipped);
      await expect(ownerObject('doc').read({ timeoutMs: readTimeoutMs })).rejects.toBeInstanceOf(IntegrityError);
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
      attacked = attack(allButOneRing(), certificateFlipped);
      expect(Buffer.from(await ownerObject('doc').read({ timeoutMs: 15_000 })).equals(small)).toBe(true);
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
    }, 60_000);

    it('an old certificate replayed for a newer read: never returned as the latest or as another version', async () => {
      const obj = owner.open('replayed');
      await owner.create('replayed');
      const v1 = new TextEncoder().encode('version one');
      await (await obj.write(v1)).certified;
      // Record honest replies proving version 1 (latest and pinned), then commit version 2.
      const recorded: ReadReply[] = [];
      attack(members, onReadReplies((r) => (recorded.push(r), r)));
      const reader = ownerObject('replayed');
      expect(new TextDecoder().decode(await reader.read())).toBe('version one');
      expect(recorded.length).toBeGreaterThan(0);
      const recordedAtMs = Date.now();
      const v2 = await obj.write(new TextEncoder().encode('version two'));
      await v2.certified;
      const old = recorded.at(-1)!;
      const replay = onReadReplies((r) => ({ ...old, requestId: r.requestId }));
      // Every member replays: a handle that saw version 2 never goes back; a pinned read of v2 refuses v1's proof.
      let attacked = attack(members, replay);
      await expect(reader.read({ version: v2.version, timeoutMs: readTimeoutMs })).rejects.toBeInstanceOf(IntegrityError);
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
      attack([], (f) => f);
      expect(new TextDecoder().decode(await reader.read({ timeoutMs: 15_000 }))).toBe('version two');
      attack(members, replay);
      await expect(reader.read({ timeoutMs: readTimeoutMs })).rejects.toBeInstanceOf(OceanStoreError);
      // A fresh handle demanding a heartbeat younger than the replayed proof refuses it as well.
      expect(Date.now() - recordedAtMs).toBeGreaterThan(2_000);
      await expect(ownerObject('replayed').read({ maxAgeMs: 1_000, timeoutMs: readTimeoutMs })).rejects.toBeInstanceOf(OceanStoreError);
      // With one honest ring server, the same handle gets exactly version 2.
      attacked = attack(allButOneRing(), replay);
      expect(new TextDecoder().decode(await reader.read({ timeoutMs: 15_000 }))).toBe('version two');
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
    }, 120_000);

    it("a swapped write result (another request's result in this member's reply) is ignored: f+1 matching replies decide", async () => {
      const obj = await client.create('swapped');
      // Each reply's result is replaced by the (genuinely signed) result of another request.
      const resultsByNonce = new Map<number, Uint8Array>();
      const swapResult: Tamper = (frame) => {
        const message = ringMessageOf(frame);
        if (message?.kind !== 'reply') return frame;
        const other = [...resultsByNonce].find(([nonce]) => nonce !== message.nonce)?.[1];
        resultsByNonce.set(message.nonce, message.result);
        return ringFrame({ ...message, result: other ?? flipped(message.result) });
      };
      // f = 1 lying ring server: the other three agree, the write commits and reports its true version.
      const attacked = attack(['ring-0'], swapResult);
      const before = (await obj.stat()).version;
      const written = await obj.write(new TextEncoder().encode('after a lying reply'));
      expect(written.version).toBe(before + 1);
      // The liar's reply may arrive after the honest f+1 already decided: wait (bounded) until it did.
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
      await written.certified;
      expect(new TextDecoder().decode(await owner.open('swapped', client.identity.publicKey).read())).toBe('after a lying reply');
      // f+1 ring servers lie, each differently, and the others' replies are lost: no f+1 matching
      // replies, so the write is never reported done. (Replies travel unsigned on tagged channels,
      // so each proxy speaks for its own member only: more than f members agreeing on a lie is
      // outside the fault model, as it always was for members holding their own signing keys.)
      const silent: Tamper = (frame) => (ringMessageOf(frame)?.kind === 'reply' ? null : frame);
      attack(members, silent);
      const liars = [proxies.get('ring-0')!, proxies.get('ring-1')!];
      proxies.get('ring-0')!.tamper = (frame) => {
        const message = ringMessageOf(frame);
        return message?.kind === 'reply' ? ringFrame({ ...message, result: flipped(message.result) }) : frame;
      };
      proxies.get('ring-1')!.tamper = swapResult;
      await expect(obj.write(new TextEncoder().encode('unverifiable'), { timeoutMs: readTimeoutMs })).rejects.toBeInstanceOf(OceanStoreError);
      expect(tamperedCount(liars)).toBeGreaterThan(0);
    }, 90_000);

    it('the tail of a stream dropped or truncated: a named error or exactly the right bytes, never a short read', async () => {
      const chunkBytes = 64 * 1024; // 4 chunks, each its own verified proof
      const dataReply = (r: ReadReply) => r.blocks.some((b) => b.kind === 'data');
      let served = 0;
      // Every member: after the first data chunk, data replies lose their last block.
      let attacked = attack(members, onReadReplies((r) => (dataReply(r) && served++ > 0 ? { ...r, blocks: r.blocks.slice(0, -1) } : r)));
      const got: Uint8Array[] = [];
      const stream = async () => {
        for await (const chunk of ownerObject('big').readStream({ chunkBytes, timeoutMs: readTimeoutMs })) got.push(chunk);
      };
      await expect(stream()).rejects.toBeInstanceOf(IntegrityError);
      const prefix = Buffer.concat(got);
      expect(prefix.length).toBeLessThan(large.length);
      expect(prefix.equals(Buffer.from(large.subarray(0, prefix.length)))).toBe(true);
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
      // All but one member drop data replies entirely: the stream fails over and is exact.
      attacked = attack(allButOneRing(), onReadReplies((r) => (dataReply(r) ? null : r)));
      const parts: Uint8Array[] = [];
      for await (const chunk of ownerObject('big').readStream({ chunkBytes, timeoutMs: 30_000 })) parts.push(chunk);
      const whole = Buffer.concat(parts);
      expect(whole.equals(Buffer.from(large))).toBe(true);
      expect(await until(() => tamperedCount(attacked) > 0, 15_000)).toBe(true);
    }, 120_000);
  });
}
