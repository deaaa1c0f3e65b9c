/**
 * A read with maxAgeMs that no member can satisfy only because the newest heartbeat is too old
 * is Unavailable (or a timeout), not IntegrityError ("evidence of tampering"): an honest ring
 * server answers 'too-stale' when its heartbeat is older than maxAgeMs, and a reply the reader
 * finds too old by its own clock (the server's clock is behind) is not counted as forged.
 * A real RingServerMember behind a stub session; no processes.
 */
import { expect, it } from 'vitest';
import { IntegrityError } from '../../core/errors.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { SignedBatchBuilder, encodeCertificateStatement, encodeHeartbeatStatement } from '../../core/threshold/index.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { VersionReader } from '../../client/reader.ts';
import type { ReadReply, ReadRequest, Session } from '../../client/session.ts';
import { RingServerMember } from '../../replica/ring-server-member.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';
import { TestRingSigner, buildHistory, testObject } from '../replica/test-ring.ts';

const crypto = nodeCrypto;

/** A ring server holding versions 0..2 of a test object, its newest heartbeat taken at `heartbeatAtMs`. */
function ringServer(heartbeatAtMs: number): { server: RingServerMember; signer: TestRingSigner; aguid: Uint8Array } {
  const signer = new TestRingSigner(crypto, 'fake', 41);
  const object = testObject(crypto, 'core', 41);
  const ringBlocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
  const history = buildHistory(crypto, signer, object, { versionCount: 3, seed: 41, blocks: ringBlocks });
  const server = new RingServerMember(
    { nodeId: 'ring-0', store: new MemoryKvStore(), random: new Prng(1), nowMs: 0 },
    { crypto, blocks: ringBlocks, store: new MemoryKvStore(), ringId: signer.ringId, epoch: 0, peers: [], peerWaitMs: 500, batchSignatures: signer.signatureCheck() },
  );
  const commits = history.map((h) => ({
    ringId: signer.ringId, aguid: object.aguid, version: h.version, vguid: h.vguid, updateDigest: object.executor.digest(h.entry.update)!,
    timestampMs: h.timestampMs, outcome: 'commit' as const, rootFragmentRoot: new Uint8Array(0),
  }));
  const beat = { ringId: signer.ringId, aguid: object.aguid, version: 2, vguid: history[2]!.vguid, timestampMs: heartbeatAtMs };
  const builder = new SignedBatchBuilder(crypto, { ringId: signer.ringId, epoch: 0, sequence: 1 }, [
    ...commits.map((statement) => ({ kind: 'certificate' as const, statement })),
    { kind: 'heartbeat' as const, statement: beat },
  ]);
  const statements = [...commits.map(encodeCertificateStatement), encodeHeartbeatStatement(beat)];
  history.forEach((h, i) => server.onExecuted(statements[i]!, h.entry.update, h.entry.blocks));
  server.onCertificate(1, builder.header.root, signer.sign(builder), statements);
  expect(server.latestVersion(object.aguid)).toBe(2);
  return { server, signer, aguid: object.aguid };
}

/** Every ring member answers from `server`, whose clock reads Date.now() + serverClockOffsetMs. */
function stubSession(server: RingServerMember, serverClockOffsetMs: number, statuses: string[]): Session {
  let id = 0;
  const session = {
    view: { f: 1, ring: [0, 1, 2, 3].map((i) => ({ id: `ring-${i}`, publicKey: new Uint8Array(32) })), secondaries: [] },
    read: async (_to: string, request: Omit<ReadRequest, 'type' | 'requestId'>): Promise<ReadReply> => {
      const effects = server.onMessage('client', { type: 'read', requestId: ++id, ...request }, Date.now() + serverClockOffsetMs);
      const reply = effects.find((e) => e.kind === 'send')!;
      const message = (reply as { message: ReadReply }).message;
      statuses.push(message.status);
      return message;
    },
  };
  return session as unknown as Session;
}

async function errorOf(read: Promise<unknown>): Promise<Error | null> {
  return read.then(
    () => null,
    (error: Error) => error,
  );
}

it('an honest ring server whose newest heartbeat is older than maxAgeMs answers too-stale; the read is Unavailable, not IntegrityError', async () => {
  const { server, signer, aguid } = ringServer(Date.now() - 5_000);
  const statuses: string[] = [];
  const reader = new VersionReader(aguid, stubSession(server, 0, statuses), crypto, signer.trust());
  const error = await errorOf(reader.fetch(null, 0, 0, { maxAgeMs: 1_000, timeoutMs: 300 }));
  expect(error).not.toBeNull();
  expect(error).not.toBeInstanceOf(IntegrityError);
  expect(statuses.length).toBeGreaterThan(0);
  expect(new Set(statuses)).toEqual(new Set(['too-stale']));
});

it('a heartbeat the server thinks fresh but the reader finds too old (clocks apart) is not taken for tampering', async () => {
  const { server, signer, aguid } = ringServer(Date.now() - 5_000);
  const statuses: string[] = [];
  // The server's clock is 4.5 s behind: to it the heartbeat is 0.5 s old.
  const reader = new VersionReader(aguid, stubSession(server, -4_500, statuses), crypto, signer.trust());
  const error = await errorOf(reader.fetch(null, 0, 0, { maxAgeMs: 1_000, timeoutMs: 300 }));
  expect(statuses).toContain('ok');
  expect(error).not.toBeNull();
  expect(error).not.toBeInstanceOf(IntegrityError);
});
