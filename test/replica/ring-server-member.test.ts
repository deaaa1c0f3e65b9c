/**
 * A ring server's tree member (Pond, FAST 2003: the inner ring is the root of every object's
 * dissemination tree). The ring hands a batch's threshold signature only to its f+1 combiners, so
 * members share it (`batch-certificate`); receivers re-check it under the ring key. Versions are
 * published in order whatever order their batches are certified in, certificates that arrive
 * before the execution wait for it, and large updates go down as block references served from
 * the ring's store.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from '../../core/bytes.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { SignedBatchBuilder, encodeCertificateStatement, encodeHeartbeatStatement, type CertificateStatement } from '../../core/threshold/index.ts';
import type { BlockKind } from '../../core/version/block.ts';
import { MemoryBlockStore, type BlockStore } from '../../core/version/block-store.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import type { TreeMessage } from '../../replica/messages.ts';
import type { SharedBatch } from '../../replica/peer-batches.ts';
import { ConfigLocator } from '../../replica/config-locator.ts';
import { RingServerMember } from '../../replica/ring-server-member.ts';
import { SecondaryReplica } from '../../replica/secondary.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, testObject, type HistoryVersion, type TestObject } from './test-ring.ts';

const crypto = nodeCrypto;
let signer: TestRingSigner;
let object: TestObject;
let history: HistoryVersion[];
let ringBlocks: MemoryBlockStore;

beforeAll(() => {
  signer = new TestRingSigner(crypto, 'fake', 41);
  object = testObject(crypto, 'core', 41);
  ringBlocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
  history = buildHistory(crypto, signer, object, { versionCount: 6, referenceEvery: 2, seed: 41, blocks: ringBlocks });
});

/** The ring's view of a batch: its statements (as the ring encodes them), Merkle root and signature. */
function batch(sequence: number, versions: number[]): { sequence: number; statements: Uint8Array[]; root: Uint8Array; signature: Uint8Array } {
  const statements: CertificateStatement[] = versions.map((v) => {
    const h = history[v]!;
    return {
      ringId: signer.ringId, aguid: object.aguid, version: v, vguid: h.vguid, updateDigest: object.executor.digest(h.entry.update)!,
      timestampMs: h.timestampMs, outcome: 'commit', rootFragmentRoot: new Uint8Array(0),
    };
  });
  const builder = new SignedBatchBuilder(crypto, { ringId: signer.ringId, epoch: 0, sequence }, statements.map((statement) => ({ kind: 'certificate' as const, statement })));
  return { sequence, statements: statements.map(encodeCertificateStatement), root: builder.header.root, signature: signer.sign(builder) };
}

/** Pairing checks a member made (the expensive step vouching avoids). */
let checks = 0;

function member(id: string, peers: string[], inlineBlockBytesMax?: number, peerVouchersNeeded?: number): RingServerMember {
  const check = signer.signatureCheck();
  return new RingServerMember(
    { nodeId: id, store: new MemoryKvStore(), random: new Prng(id.length), nowMs: 0 },
    {
      crypto, blocks: ringBlocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0, peers, peerWaitMs: 500,
      batchSignatures: { verify: (message, signature) => (checks++, check.verify(message, signature)) },
      ...(peerVouchersNeeded === undefined ? {} : { peerVouchersNeeded }),
      ...(inlineBlockBytesMax === undefined ? {} : { tree: { inlineBlockBytesMax } }),
    },
  );
}

function shared(b: ReturnType<typeof batch>): SharedBatch {
  return { type: 'batch-certificate', sequence: b.sequence, epoch: 0, root: b.root, signature: b.signature, statements: b.statements };
}

/** Runs the object service's part: the member learns what each version's update was. */
function execute(m: RingServerMember, versions: number[]): void {
  const b = batch(0, versions);
  versions.forEach((v, i) => m.onExecuted(b.statements[i]!, history[v]!.entry.update, history[v]!.entry.blocks));
}

function sent(effects: ReturnType<RingServerMember['onTick']>): { to: string; message: TreeMessage }[] {
  return effects.flatMap((e) => (e.kind === 'send' ? [{ to: e.to, message: e.message }] : []));
}

describe('RingServerMember', () => {
  it('shares a batch signature it combined; a peer that never got it from the ring verifies it (after waiting for more copies) and certifies and publishes the versions', () => {
    const a = member('ring-a', ['ring-b']);
    const b = member('ring-b', ['ring-a']);
    execute(a, [0, 1]);
    execute(b, [0, 1]);
    const first = batch(7, [0, 1]);
    expect(a.onCertificate(first.sequence, first.root, first.signature, first.statements).map((c) => c.version)).toEqual([0, 1]);
    const sharedCopies = sent(a.onTick(10)).filter((s) => s.message.type === 'batch-certificate');
    expect(sharedCopies.map((s) => s.to)).toEqual(['ring-b']);
    b.onMessage('ring-a', sharedCopies[0]!.message, 11);
    b.onTick(12);
    expect(b.latestVersion(object.aguid)).toBeUndefined(); // one copy: waits for another before paying a pairing check
    checks = 0;
    b.onTick(600);
    expect(checks).toBe(1);
    expect(b.peerBatches.counters.verified).toBe(1);
    expect(b.latestVersion(object.aguid)).toBe(1);
    expect(b.tree.root.nextVersion(object.aguid)).toBe(2);
    // A copy of the same signature later (the other combiner's) is recognised and costs nothing.
    b.onMessage('ring-a', sharedCopies[0]!.message, 601);
    b.onTick(1200);
    expect(b.counters.peerBatches).toBe(1);
    expect(checks).toBe(1);
  });

  it('trusts identical copies from f+1 ring servers without a pairing check (a combined threshold signature is unique)', () => {
    const b = member('ring-b', ['ring-a', 'ring-c', 'ring-d'], undefined, 2);
    execute(b, [0, 1]);
    const good = batch(7, [0, 1]);
    checks = 0;
    b.onMessage('ring-a', shared(good), 1);
    expect(b.latestVersion(object.aguid)).toBeUndefined();
    b.onMessage('ring-c', shared(good), 2);
    expect(b.latestVersion(object.aguid)).toBe(1);
    expect(b.peerBatches.counters.vouched).toBe(1);
    expect(checks).toBe(0);
  });

  it('refuses shared batches from a node that is not a ring server, with statements that do not make the root, or whose signature does not verify', () => {
    const b = member('ring-b', ['ring-a', 'ring-c'], undefined, 2);
    execute(b, [0, 1]);
    const good = batch(7, [0, 1]);
    const forged = good.signature.slice();
    forged[0]! ^= 1;
    b.onMessage('replica-9', shared(good), 1);
    b.onMessage('ring-c', shared(good), 1); // one honest copy, not yet enough
    b.onMessage('ring-a', { ...shared(good), statements: [good.statements[0]!] }, 2);
    b.onMessage('replica-9', shared(good), 3); // a second copy from a non-peer does not count
    expect(b.latestVersion(object.aguid)).toBeUndefined();
    expect(b.peerBatches.counters.refused).toBe(3);
    // A liar's forged signature for sequence 8 never verifies; the honest copy of 7 does, after the wait.
    b.onMessage('ring-a', { ...shared(batch(8, [0, 1])), signature: forged }, 4);
    b.onTick(600);
    expect(b.peerBatches.counters.verified).toBe(1);
    expect(b.peerBatches.counters.refused).toBe(4);
    expect(b.latestVersion(object.aguid)).toBe(1);
  });

  it('follows a new member list (setPeers): copies from the new member count and it is sent combined signatures; the old member gets neither', () => {
    const b = member('ring-b', ['ring-a', 'ring-c'], undefined, 2);
    execute(b, [0, 1]);
    const good = batch(7, [0, 1]);
    b.setPeers(['spare-0', 'ring-c']); // ring-a was replaced by spare-0
    checks = 0;
    b.onMessage('ring-a', shared(good), 1);
    expect(b.peerBatches.counters.refused).toBe(1);
    b.onMessage('spare-0', shared(good), 2);
    b.onMessage('ring-c', shared(good), 3);
    expect(b.latestVersion(object.aguid)).toBe(1);
    expect(b.peerBatches.counters.vouched).toBe(1);
    expect(checks).toBe(0);
    // What it combines itself goes to the members of the new list.
    execute(b, [2]);
    const next = batch(8, [2]);
    b.onCertificate(next.sequence, next.root, next.signature, next.statements);
    expect(sent(b.onTick(10)).filter((x) => x.message.type === 'batch-certificate').map((x) => x.to)).toEqual(['spare-0', 'ring-c']);
  });

  it('a member without certificates for an object the ring has (it joined later) answers not-cached, not unknown-object', () => {
    const read = (m: RingServerMember): string => {
      const effects = m.onMessage('client-x', { type: 'read', requestId: 1, aguid: object.aguid, version: null, offset: 0, length: 0, maxAgeMs: 0 }, 1);
      const reply = sent(effects).find((x) => x.message.type === 'read-reply');
      return (reply!.message as Extract<TreeMessage, { type: 'read-reply' }>).status;
    };
    expect(read(member('ring-0', []))).toBe('unknown-object');
    const joined = new RingServerMember(
      { nodeId: 'ring-9', store: new MemoryKvStore(), random: new Prng(9), nowMs: 0 },
      { crypto, blocks: ringBlocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0, objectExists: (aguid) => bytesEqual(aguid, object.aguid) },
    );
    expect(read(joined)).toBe('not-cached');
  });

  it('a version above both the latest certified and the latest executed one is answered no-such-version', () => {
    const read = (m: RingServerMember, version: number): string => {
      const effects = m.onMessage('client-x', { type: 'read', requestId: 1, aguid: object.aguid, version, offset: 0, length: 0, maxAgeMs: 0 }, 1);
      const reply = sent(effects).find((x) => x.message.type === 'read-reply');
      return (reply!.message as Extract<TreeMessage, { type: 'read-reply' }>).status;
    };
    let executed = 2;
    const a = new RingServerMember(
      { nodeId: 'ring-a', store: new MemoryKvStore(), random: new Prng(3), nowMs: 0 },
      { crypto, blocks: ringBlocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0, executedVersion: () => executed },
    );
    execute(a, [0, 1]);
    const b = batch(4, [0, 1]);
    a.onCertificate(b.sequence, b.root, b.signature, b.statements);
    a.onTick(1);
    expect(read(a, 1)).toBe('ok');
    // Version 2 is executed and its certificate still on the way: not-cached, so a reader waits.
    expect(read(a, 2)).toBe('not-cached');
    expect(read(a, 3)).toBe('no-such-version');
    executed = 3;
    expect(read(a, 3)).toBe('not-cached');
  });

  it("a latest probe whose latest certified version's blocks are not here is answered with the newest older one it can prove", () => {
    // A peer shared version 4's certificate before this replica executed it (or its execution was
    // lost in a crash): its root block is not here. Answering not-cached left readers waiting for
    // other servers; an older certified version counts as this server's answer.
    const hidden = toHex(history[4]!.vguid);
    const blocks: BlockStore = Object.assign(Object.create(null) as BlockStore, {
      get: (bguid: Uint8Array, kind: BlockKind) => (toHex(bguid) === hidden ? undefined : ringBlocks.get(bguid, kind)),
      has: (bguid: Uint8Array) => toHex(bguid) !== hidden && ringBlocks.has(bguid),
      byteLengthOf: (bguid: Uint8Array, kind: BlockKind) => (toHex(bguid) === hidden ? undefined : ringBlocks.byteLengthOf(bguid, kind)),
    });
    const a = new RingServerMember(
      { nodeId: 'ring-a', store: new MemoryKvStore(), random: new Prng(5), nowMs: 0 },
      { crypto, blocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0 },
    );
    const b = batch(6, [0, 1, 2, 3, 4]);
    a.onCertificate(b.sequence, b.root, b.signature, b.statements);
    const read = (version: number | null, length = 0, maxAgeMs = 0) => {
      const effects = a.onMessage('client-x', { type: 'read', requestId: 1, aguid: object.aguid, version, offset: 0, length, maxAgeMs }, 1);
      return sent(effects).find((x) => x.message.type === 'read-reply')!.message as Extract<TreeMessage, { type: 'read-reply' }>;
    };
    const latest = read(null);
    expect(latest.status).toBe('ok');
    expect(signer.trust().verifyCommit(latest.certificate!)!.version).toBe(3);
    expect(bytesEqual(latest.blocks[0]!.bytes, ringBlocks.get(history[3]!.vguid, 'root')!)).toBe(true);
    expect(a.counters.readsServedOlder).toBe(1);
    // Only a plain latest probe: a read of version 4, of latest data, or demanding freshness is not.
    expect(read(4).status).toBe('not-cached');
    expect(read(null, 10).status).toBe('not-cached');
    expect(read(null, 0, 1_000).status).toBe('too-stale');
    // A fresh read with the heartbeat naming version 4 here: an older version beside it would read
    // as forged ("not the latest version"), so it stays not-cached.
    const heartbeat = { ringId: signer.ringId, aguid: object.aguid, version: 4, vguid: history[4]!.vguid, timestampMs: 0 };
    const beat = new SignedBatchBuilder(crypto, { ringId: signer.ringId, epoch: 0, sequence: 7 }, [{ kind: 'heartbeat' as const, statement: heartbeat }]);
    a.onCertificate(7, beat.header.root, signer.sign(beat), [encodeHeartbeatStatement(heartbeat)]);
    expect(read(null, 0, 1_000).status).toBe('not-cached');
    expect(a.counters.readsServedOlder).toBe(1);
  });

  it('publishes versions in order whatever order their batches are certified in', () => {
    const a = member('ring-a', []);
    execute(a, [0, 1, 2, 3]);
    const late = batch(9, [2, 3]);
    a.onCertificate(late.sequence, late.root, late.signature, late.statements);
    a.onTick(1);
    expect(a.tree.root.nextVersion(object.aguid)).toBeNull(); // 2 and 3 wait for 0 and 1
    const early = batch(8, [0, 1]);
    a.onCertificate(early.sequence, early.root, early.signature, early.statements);
    a.onTick(2);
    expect(a.tree.root.nextVersion(object.aguid)).toBe(4);
    expect(a.counters.published).toBe(4);
    expect(a.counters.gapsSkipped).toBe(0);
  });

  it('a certificate that arrives before this server executed the update is published once it does', () => {
    const a = member('ring-a', []);
    const b0 = batch(3, [0]);
    a.onCertificate(b0.sequence, b0.root, b0.signature, b0.statements);
    a.onTick(1);
    expect(a.tree.root.nextVersion(object.aguid)).toBeNull();
    execute(a, [0]);
    a.onTick(2);
    expect(a.tree.root.nextVersion(object.aguid)).toBe(1);
  });

  it('publishes updates with large referenced blocks as block references and serves those blocks to its children only', () => {
    const a = member('ring-a', [], 1024);
    execute(a, [0, 1, 2]);
    const b = batch(4, [0, 1, 2]);
    a.onCertificate(b.sequence, b.root, b.signature, b.statements);
    a.onTick(1);
    expect(history[1]!.entry.blocks.length).toBe(1); // referenceEvery 2: version 1 references a 4 KiB block
    expect(a.counters.publishedAsReferences).toBe(1);
    const joined = sent(a.onMessage('replica-0', { type: 'attach', aguid: object.aguid, nextVersion: 0 }, 2));
    const push = joined.find((s) => s.message.type === 'push')?.message;
    expect(push?.type === 'push' && push.entries.map((e) => e.blocks.length)).toEqual([0, 0, 0]);
    const bguids = object.executor.references(history[1]!.entry.update);
    const reply = sent(a.onMessage('replica-0', { type: 'fetch-blocks', aguid: object.aguid, bguids }, 3))[0]?.message;
    expect(reply?.type === 'blocks' && reply.blocks).toEqual(history[1]!.entry.blocks);
    expect(a.onMessage('stranger', { type: 'fetch-blocks', aguid: object.aguid, bguids }, 4)).toEqual([]);
  });

  it('after a restart its log starts late: a child that lacks older versions gets a snapshot of the stored head and catches up (session-22 review, finding 3)', () => {
    const store = new MemoryKvStore();
    const make = (): RingServerMember =>
      new RingServerMember(
        { nodeId: 'ring-a', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
        { crypto, blocks: ringBlocks, store, ringId: signer.ringId, epoch: 0, peers: [], batchSignatures: signer.signatureCheck(), reorderTimeoutMs: 100 },
      );
    const before = make();
    execute(before, [0, 1, 2, 3]);
    const first = batch(20, [0, 1, 2, 3]);
    before.onCertificate(first.sequence, first.root, first.signature, first.statements);
    // Restarted: the tree root is in memory only; it publishes from the first version certified now (4).
    const a = make();
    execute(a, [4, 5]);
    const after = batch(21, [4, 5]);
    a.onCertificate(after.sequence, after.root, after.signature, after.statements);
    for (let t = 1; t <= 400; t += 50) a.onTick(t);
    expect(a.tree.root.nextVersion(object.aguid)).toBe(6);
    const child = new SecondaryReplica(
      { nodeId: 'replica-0', store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 },
      { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-a'], []), cacheBytesMax: 16 << 20, subscriptions: [object.aguid] },
    );
    // Deliver everything between the two for a few rounds (bounded).
    let toChild = child.onTick(500).flatMap((e) => (e.kind === 'send' ? a.onMessage('replica-0', e.message, 500) : []));
    for (let round = 0; round < 10 && toChild.length > 0; round++) {
      const toRoot = toChild.flatMap((e) => (e.kind === 'send' ? child.onMessage('ring-a', e.message, 501 + round) : []));
      toChild = toRoot.flatMap((e) => (e.kind === 'send' ? a.onMessage('replica-0', e.message, 501 + round) : []));
    }
    const copy = child.copyOf(object.aguid)!;
    expect(copy.snapshotsInstalled).toBe(1);
    expect(copy.head?.version).toBe(5);
    expect(bytesEqual(copy.head!.vguid, history[5]!.vguid)).toBe(true);
  });

  it('a version it can never publish (certified, its update gone in a restart) is skipped: the log goes on and a child behind it gets the stored head (it stopped following the object for good)', () => {
    const a = new RingServerMember(
      { nodeId: 'ring-a', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
      { crypto, blocks: ringBlocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0, peers: [], batchSignatures: signer.signatureCheck(), reorderTimeoutMs: 100 },
    );
    const child = new SecondaryReplica(
      { nodeId: 'replica-0', store: new MemoryKvStore(), random: new Prng(2), nowMs: 0 },
      { crypto, trust: signer.trust(), executor: object.executor, locator: new ConfigLocator(['ring-a'], []), cacheBytesMax: 16 << 20, subscriptions: [object.aguid] },
    );
    /** Ticks both at `t` and delivers what they send each other, a few rounds (bounded). */
    const exchange = (t: number): void => {
      let toChild = a.onTick(t).filter((e) => e.kind === 'send' && e.to === 'replica-0');
      let toRoot = child.onTick(t);
      for (let round = 0; round < 10 && toChild.length + toRoot.length > 0; round++) {
        const fromChild = toChild.flatMap((e) => (e.kind === 'send' ? child.onMessage('ring-a', e.message, t) : []));
        const fromRoot = toRoot.flatMap((e) => (e.kind === 'send' ? a.onMessage('replica-0', e.message, t) : []));
        toChild = fromRoot;
        toRoot = fromChild;
      }
    };
    execute(a, [0, 1]);
    const first = batch(30, [0, 1]);
    a.onCertificate(first.sequence, first.root, first.signature, first.statements);
    a.onTick(0);
    let t = 1;
    for (; t <= 2_000 && child.copyOf(object.aguid)?.head?.version !== 1; t += 50) exchange(t);
    expect(child.copyOf(object.aguid)?.head?.version).toBe(1);
    // Version 2 is certified here but its update never reaches this root; 3 and 4 do.
    execute(a, [3, 4]);
    const second = batch(31, [2, 3, 4]);
    a.onCertificate(second.sequence, second.root, second.signature, second.statements);
    for (const end = t + 2_000; t <= end && child.copyOf(object.aguid)?.head?.version !== 4; t += 50) exchange(t);
    expect(a.tree.root.nextVersion(object.aguid)).toBe(5);
    const copy = child.copyOf(object.aguid)!;
    expect(copy.head?.version).toBe(4);
    expect(bytesEqual(copy.head!.vguid, history[4]!.vguid)).toBe(true);
    expect(a.counters.gapsSkipped).toBe(1);
  });

  it('too many versions held: goes on at once, past a gap only if there is one; a version arriving after it was skipped is dropped (it threw and stopped the node)', () => {
    const make = (): RingServerMember =>
      new RingServerMember(
        { nodeId: 'ring-a', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
        { crypto, blocks: ringBlocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0, peers: [], reorderEntriesMax: 2 },
      );
    let sequence = 40;
    /** Each version executed and certified in a batch of its own, in this order. */
    const arrive = (m: RingServerMember, versions: number[]): void => {
      for (const v of versions) {
        execute(m, [v]);
        const b = batch(sequence++, [v]);
        m.onCertificate(b.sequence, b.root, b.signature, b.statements);
      }
    };
    /** A member that has published version 0, then gets `later`. */
    const after0 = (later: number[]): RingServerMember => {
      const m = make();
      arrive(m, [0]);
      m.onTick(1);
      arrive(m, later);
      return m;
    };
    // No gap: 2 and 3 held, then 1 arrives (three held): all go out, nothing skipped.
    const a = after0([2, 3, 1]);
    expect(a.tree.root.nextVersion(object.aguid)).toBe(4);
    expect(a.counters.gapsSkipped).toBe(0);
    // A gap: 2, 3 and 4 held (one too many) before 1 comes: the log goes on from 2.
    const b = after0([2, 3, 4]);
    expect(b.tree.root.nextVersion(object.aguid)).toBe(5);
    expect(b.counters.gapsSkipped).toBe(1);
    // Version 1 after all, then the next one: 1 is dropped, 5 follows.
    arrive(b, [1, 5]);
    b.onTick(2);
    expect(b.tree.root.nextVersion(object.aguid)).toBe(6);
    expect(b.counters.gapsSkipped).toBe(1);
  });
});
