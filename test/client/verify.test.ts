// The SDK's read check (issue 7: "a result that fails verification is never returned"): replies
// built from a real certified history (threshold BLS, real Pond updates) verify, and every
// tampering — a flipped bit in any block or the certificate, a dropped block, another version's
// certificate, another ring's key, another object — is refused.
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../core/bytes.ts';
import { MemoryBlockStore } from '../../core/version/block-store.ts';
import { rangeProof, readVersionRange, rootBlockOf } from '../../replica/version-walk.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import type { ReadReply, ReadRequest } from '../../client/session.ts';
import { verifyRead } from '../../client/verify.ts';
import { buildHistory, TestRingSigner, testObject } from '../replica/test-ring.ts';

const crypto = nodeCrypto;
const signer = new TestRingSigner(crypto, 'bls', 11);
const object = testObject(crypto, 'core', 5, 4096);
const blocks = new MemoryBlockStore(crypto, { verifyOnGet: false });
const history = buildHistory(crypto, signer, object, { versionCount: 6, appendBytes: 3000, referenceEvery: 2, batchSize: 3, blocks });
const trust = signer.trust();

function requestFor(version: number | null, offset: number, length: number): ReadRequest {
  return { type: 'read', requestId: 7, aguid: object.aguid, version, offset, length, maxAgeMs: 0 };
}

function replyFor(v: number, offset: number, length: number): ReadReply {
  const h = history[v]!;
  const proof = rangeProof(blocks, h.vguid, offset, length)!;
  expect(proof).not.toBeNull();
  return { type: 'read-reply', requestId: 7, status: 'ok', certificate: h.entry.certificate, heartbeat: null, blocks: proof.map((b) => ({ kind: b.kind, bytes: b.bytes })) };
}

describe('client read verification', () => {
  it('accepts honest replies for every version and returns the exact bytes and root', () => {
    for (const h of history) {
      const size = rootBlockOf(blocks, h.vguid)!.sizeBytes;
      const offset = Math.floor(size / 3);
      const length = size - offset;
      const checked = verifyRead(crypto, trust, requestFor(h.version, offset, length), replyFor(h.version, offset, length), 0);
      expect(checked.ok).toBe(true);
      if (!checked.ok) continue;
      expect(checked.value.version).toBe(h.version);
      expect(checked.value.root.sizeBytes).toBe(size);
      expect(bytesEqual(checked.value.bytes, readVersionRange(blocks, h.vguid, offset, length)!)).toBe(true);
    }
  });

  it('refuses a flipped bit anywhere in any proof block or in the certificate', () => {
    const v = 5;
    const size = rootBlockOf(blocks, history[v]!.vguid)!.sizeBytes;
    const honest = replyFor(v, 0, size);
    let attempts = 0;
    honest.blocks.forEach((block, i) => {
      for (const at of [0, block.bytes.length >> 1, block.bytes.length - 1]) {
        const bytes = block.bytes.slice();
        bytes[at]! ^= 0x01;
        const tampered = { ...honest, blocks: honest.blocks.map((b, j) => (j === i ? { kind: b.kind, bytes } : b)) };
        expect(verifyRead(crypto, trust, requestFor(v, 0, size), tampered, 0).ok).toBe(false);
        attempts++;
      }
    });
    for (let at = 0; at < honest.certificate!.length; at += 7) {
      const certificate = honest.certificate!.slice();
      certificate[at]! ^= 0x80;
      expect(verifyRead(crypto, trust, requestFor(v, 0, size), { ...honest, certificate }, 0).ok).toBe(false);
      attempts++;
    }
    expect(attempts).toBeGreaterThan(20);
  });

  it('refuses a dropped block, another version certificate, another object and another ring', () => {
    const v = 4;
    const size = rootBlockOf(blocks, history[v]!.vguid)!.sizeBytes;
    const honest = replyFor(v, 0, size);
    const request = requestFor(v, 0, size);
    expect(verifyRead(crypto, trust, request, { ...honest, blocks: honest.blocks.slice(0, -1) }, 0).ok).toBe(false);
    expect(verifyRead(crypto, trust, request, { ...honest, certificate: history[3]!.entry.certificate }, 0).ok).toBe(false);
    expect(verifyRead(crypto, trust, { ...request, aguid: new Uint8Array(32).fill(1) }, honest, 0).ok).toBe(false);
    const otherRing = new TestRingSigner(crypto, 'bls', 12).trust();
    expect(verifyRead(crypto, otherRing, request, honest, 0).ok).toBe(false);
    expect(verifyRead(crypto, trust, request, { ...honest, status: 'not-cached' }, 0).ok).toBe(false);
  });
});
