/**
 * A certificate listing page costs a binary search and a slice, not a scan of every certificate
 * key (session-20 archive review, finding 6: each listCertificates request read and filtered every
 * c/ key, so a full listing was quadratic: 80,000 certificates took 34 s).
 */
import { describe, expect, it } from 'vitest';
import { ArchiveServer, defaultArchiveTiming } from '../../archive/archive-server.ts';
import { positionAfter } from '../../archive/fragment-store.ts';
import type { ArchiveMessage } from '../../archive/messages.ts';
import { defaultRepairOptions } from '../../archive/repairer.ts';
import { toHex } from '../../core/bytes.ts';
import { signerOf } from '../../core/crypto.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { Prng } from '../../sim/prng.ts';
import { crypto, k, m } from './sim-helpers.ts';

/** A MemoryKvStore that counts scans of the certificate prefix. */
class CountingStore extends MemoryKvStore {
  certificateScans = 0;
  override keys(prefix: string): string[] {
    if (prefix === 'c/') this.certificateScans++;
    return super.keys(prefix);
  }
}

function serverOn(store: CountingStore): ArchiveServer {
  // No certificate check configured, so only the listing itself is exercised.
  return new ArchiveServer({ nodeId: 'archive-0', store, random: new Prng(1), nowMs: 0 }, {
    crypto, signer: signerOf(crypto, new Uint8Array(32).fill(3)), archiveServers: ['archive-0', 'archive-1'], ringServers: ['ring-0'], coding: { k, m },
    ...defaultArchiveTiming, repair: defaultRepairOptions,
  });
}

/** Every certificate, listed page by page as restore does; returns them with the number of requests. */
function listAll(server: ArchiveServer, limit: number): { certificates: string[]; requests: number } {
  const certificates: string[] = [];
  let after = '';
  for (let requests = 1; requests < 10_000; requests++) {
    const reply = server.onMessage('anyone', { type: 'listCertificates', requestId: requests, after, limit }, 0).find((e) => e.kind === 'send');
    const message = reply?.kind === 'send' ? (reply.message as ArchiveMessage) : null;
    if (message?.type !== 'certificates') throw new Error('no certificates reply');
    certificates.push(...message.certificates.map(toHex));
    if (message.next === null) return { certificates, requests };
    after = message.next;
  }
  throw new Error('listing did not end');
}

describe('certificate listing', () => {
  it('positionAfter is the first key greater than the one given', () => {
    const sorted = ['c/10', 'c/20', 'c/30'];
    expect([positionAfter(sorted, ''), positionAfter(sorted, 'c/10'), positionAfter(sorted, 'c/15'), positionAfter(sorted, 'c/30'), positionAfter([], 'x')]).toEqual([0, 1, 1, 3, 0]);
  });

  it('lists every certificate in key order without scanning the store per request, and follows puts and deletes', () => {
    const store = new CountingStore();
    const random = new Prng(3);
    const stored = new Map<string, Uint8Array>();
    for (let i = 0; i < 500; i++) {
      const bguid = random.bytes(32);
      const certificate = random.bytes(40);
      store.put(`c/${toHex(bguid)}`, certificate);
      stored.set(toHex(bguid), certificate);
    }
    const server = serverOn(store);
    const scansAtStart = store.certificateScans;
    const expected = () => [...stored.keys()].sort().map((hex) => toHex(stored.get(hex)!));
    const first = listAll(server, 64);
    expect(first.certificates).toEqual(expected());
    expect(first.requests).toBe(8);
    // Certificates added and removed after start-up are listed (and not) in order.
    for (let i = 0; i < 20; i++) {
      const bguid = random.bytes(32);
      const certificate = random.bytes(40);
      server.fragments.putCertificate(bguid, certificate);
      stored.set(toHex(bguid), certificate);
    }
    for (const hex of [...stored.keys()].slice(0, 30)) {
      server.fragments.deleteCertificate(Uint8Array.from(Buffer.from(hex, 'hex')));
      stored.delete(hex);
    }
    expect(listAll(server, 100).certificates).toEqual(expected());
    expect(server.fragments.certificateCount()).toBe(stored.size);
    expect(server.status().certificateCount).toBe(stored.size);
    expect(store.certificateScans).toBe(scansAtStart);
  });
});
