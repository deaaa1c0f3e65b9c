/**
 * Decoded byte fields are views into the received frame (msgpackr), so whatever a member keeps
 * of a message must not be one: a kept view keeps the whole frame alive, outside every byte
 * bound (session-22 review, finding 1: 200 pushes of 256 KiB blocks kept 50 MiB alive under a
 * 2 MiB cache, and a parent padding each push kept 16 MiB per version). These tests feed frames
 * padded with junk and check that nothing kept shares its buffer with more than a frame header.
 */
import { describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { CachingTrust } from '../../replica/caching-trust.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { decodeTreeMessage, encodeTreeMessage, type LogEntry, type TreeMessage } from '../../replica/messages.ts';
import { TreeRoot } from '../../replica/root.ts';
import { SecondaryReplica } from '../../replica/secondary.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, makeHeartbeat, testObject } from './test-ring.ts';

const crypto = nodeCrypto;
const padding = new Uint8Array(256 * 1024).fill(7);

/** Whether keeping `bytes` keeps little else: its buffer is at most a frame header larger. */
function ownsItsBuffer(bytes: Uint8Array): boolean {
  return bytes.buffer.byteLength <= bytes.byteLength + 1024;
}

/** The message as the host hands it to a core: encoded to one frame, decoded from it. */
function viaFrame(message: TreeMessage): TreeMessage {
  return decodeTreeMessage(encodeTreeMessage(message));
}

/** `bytes` as a view in the middle of a larger buffer. */
function embedded(bytes: Uint8Array): Uint8Array {
  const buffer = new Uint8Array(bytes.length + 2 * padding.length);
  buffer.set(bytes, padding.length);
  return buffer.subarray(padding.length, padding.length + bytes.length);
}

function setup() {
  const signer = new TestRingSigner(crypto, 'fake', 22);
  const object = testObject(crypto, 'core', 22);
  const history = buildHistory(crypto, signer, object, { versionCount: 9, referenceEvery: 3, seed: 22 });
  return { signer, object, history };
}

/** Secondary `nodeId` following the object, attached to `path`'s last node (at t = 1). */
function attachedMember(s: ReturnType<typeof setup>, nodeId: string, path: string[]): SecondaryReplica {
  const { aguid } = s.object;
  const m = new SecondaryReplica(
    { nodeId, store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, trust: s.signer.trust(), executor: s.object.executor, locator: new ConfigLocator([path[path.length - 1]!], []), cacheBytesMax: 16 << 20, subscriptions: [aguid] },
  );
  m.onTick(0);
  m.onMessage(path[path.length - 1]!, { type: 'attach-ok', aguid, path, nextVersion: s.history.length }, 1);
  return m;
}

describe('what a tree member keeps of a received frame', () => {
  it('a secondary keeps no view into push and heartbeat frames (log, cache, heartbeat)', () => {
    const s = setup();
    const { signer, object, history } = s;
    const { aguid } = object;
    const m = attachedMember(s, 'me', ['P']);
    // Out of order, so some entries wait as early ones before they are applied; each padded.
    const order = [0, 2, 1, 3, 5, 4, 6, 7, 8];
    order.forEach((v, i) => {
      const entry = history[v]!.entry;
      m.onMessage('P', viaFrame({ type: 'push', aguid, entries: [{ ...entry, blocks: [...entry.blocks, padding] }] }), 10 + i);
    });
    const latest = history[history.length - 1]!;
    m.onMessage('P', viaFrame({ type: 'heartbeat', aguid, heartbeat: makeHeartbeat(crypto, signer, aguid, latest, 100, 50) }), 30);
    const copy = m.copyOf(aguid)!;
    expect(copy.head?.version).toBe(latest.version);
    expect(copy.log.length).toBe(history.length);
    for (const record of copy.log.all()) {
      expect(ownsItsBuffer(record.certificate)).toBe(true);
      expect(ownsItsBuffer(record.update!)).toBe(true);
    }
    let cached = 0;
    // Listed first: get() moves a block to the recent end, so iterating while reading never ends.
    for (const bguid of [...m.cache.bguids()]) {
      const bytes = m.cache.get(bguid, 'data') ?? m.cache.get(bguid, 'interior') ?? m.cache.get(bguid, 'root');
      expect(ownsItsBuffer(bytes!)).toBe(true);
      cached++;
    }
    expect(cached).toBeGreaterThan(history.length);
    expect(ownsItsBuffer(copy.heartbeat!.bytes)).toBe(true);
    expect(ownsItsBuffer(copy.heartbeat!.statement.vguid)).toBe(true);
  });

  it('a snapshot installed from a frame leaves the head and log holding no view into it', () => {
    const s = setup();
    const { aguid } = s.object;
    const source = attachedMember(s, 'P', ['R']);
    source.onMessage('R', { type: 'push', aguid, entries: s.history.map((h) => h.entry) }, 2);
    const snapshot = source.copyOf(aguid)!.snapshot()!;
    const m = attachedMember(s, 'me', ['R', 'P']);
    m.onMessage('P', viaFrame({ type: 'snapshot', aguid, certificate: snapshot.certificate, blocks: [...snapshot.blocks, { kind: 'data', bytes: padding }] }), 2);
    const copy = m.copyOf(aguid)!;
    expect(copy.snapshotsInstalled).toBe(1);
    expect(ownsItsBuffer(copy.head!.vguid)).toBe(true);
    expect(ownsItsBuffer(copy.log.all()[0]!.certificate)).toBe(true);
  });

  it("CachingTrust's cached statements hold no view into the certificate they were read from", () => {
    const { signer, object, history } = setup();
    const trust = new CachingTrust(signer.trust());
    const commit = trust.verifyCommit(embedded(history[4]!.entry.certificate))!;
    for (const field of [commit.aguid, commit.vguid, commit.updateDigest]) expect(field.buffer.byteLength).toBe(32);
    const beat = trust.verifyHeartbeat(embedded(makeHeartbeat(crypto, signer, object.aguid, history[4]!, 5, 9)))!;
    for (const field of [beat.aguid, beat.vguid]) expect(field.buffer.byteLength).toBe(32);
  });

  it("a root's log and heartbeat hold no view into the buffers they were published from", () => {
    const { signer, object, history } = setup();
    const root = new TreeRoot({ nodeId: 'ring-0', random: new Prng(3) });
    const aguid = embedded(object.aguid);
    for (const h of history) {
      const e = h.entry;
      const entry: LogEntry = { update: embedded(e.update), certificate: embedded(e.certificate), blocks: e.blocks.map(embedded) };
      root.publish(aguid, h.version, entry);
    }
    root.publishHeartbeat(aguid, embedded(makeHeartbeat(crypto, signer, object.aguid, history[8]!, 9, 9)));
    const effects = root.onMessage('child', { type: 'attach', aguid: object.aguid, nextVersion: 0 }, 10);
    const kept: Uint8Array[] = [];
    for (const e of effects) {
      if (e.kind !== 'send') continue;
      if (e.message.type === 'push') for (const entry of e.message.entries) kept.push(entry.update, entry.certificate, ...entry.blocks);
      if (e.message.type === 'heartbeat') kept.push(e.message.heartbeat);
    }
    expect(kept.length).toBeGreaterThan(2 * history.length);
    for (const bytes of kept) expect(ownsItsBuffer(bytes)).toBe(true);
  });
});
