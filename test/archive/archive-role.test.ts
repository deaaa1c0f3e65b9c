/** The runtime glue builds the archive cores from a node's role context (what runtime/roles.ts will call). */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { toHex } from '../../core/bytes.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { createMetrics } from '../../runtime/metrics.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import type { DurableKvStore } from '../../runtime/machine-host.ts';
import type { RoleContext } from '../../runtime/roles.ts';
import { channels } from '../../runtime/roles.ts';
import { archiveServerRole, ringArchiverRole } from '../../archive/shell/archive-role.ts';
import { encodeFragment, makeFragments } from '../../archive/erasure/index.ts';
import { Prng } from '../../sim/prng.ts';
import { makeHistory } from './sim-helpers.ts';

const history = makeHistory(5, 1, 1);

class InstantStore extends MemoryKvStore implements DurableKvStore {
  readonly dirty = false;
  async flush(): Promise<void> {}
}

function contextOf(name: string, role: 'ring' | 'archive', store: InstantStore): RoleContext {
  const random = new Prng(3);
  const nodes = [
    ...Array.from({ length: 4 }, (_, i) => ({ name: `ring-${i}`, role: 'ring' as const, url: '', publicKey: toHex(random.bytes(32)), shareIndex: i + 1 })),
    ...Array.from({ length: 8 }, (_, i) => ({ name: `archive-${i}`, role: 'archive' as const, url: '', publicKey: toHex(random.bytes(32)), shareIndex: 0 })),
  ];
  return {
    config: { erasure: { k: 4, m: 4 }, f: 1 },
    descriptor: { nodes, ringPublicKey: toHex(history.ringPublicKey) },
    node: { name, role },
    secretKey: random.bytes(32),
    crypto: nodeCrypto,
    store,
    log: pino({ level: 'silent' }),
    metrics: createMetrics(name, role),
    nowMs: 0,
  } as unknown as RoleContext;
}

describe('archive role glue', () => {
  it('hosts an archive server on the archive channel, keeping its state under archive/, with status for cluster status', () => {
    const store = new InstantStore();
    const role = archiveServerRole(contextOf('archive-3', 'archive', store));
    expect(role.binding.channel).toBe(channels.archive);
    expect(role.status()).toMatchObject({ fragmentsHeld: 0, repairQueued: 0, lostPeers: [] });
    const effects = role.binding.machine.onTick(0);
    expect(effects.filter((e) => e.kind === 'send')).toHaveLength(7); // pings to the other archive servers
    role.server.repairer.enqueue(new Uint8Array(32).fill(7), 'manual');
    expect(store.keys('archive/r/q/')).toHaveLength(1);
  });

  it('keeps the genuine certificate beside a root block although a writer stored junk there first, and lists only certificates that pass', () => {
    const role = archiveServerRole(contextOf('archive-3', 'archive', new InstantStore()));
    const v = history.versions[0]!;
    const root = v.newBlocks.find((b) => toHex(b.bguid) === toHex(v.vguid))!;
    const set = makeFragments(nodeCrypto, 4, 4, v.vguid, root.bytes);
    const store = (from: string, index: number, certificate: Uint8Array) =>
      role.binding.machine.onMessage(from, { type: 'store', requestId: index, items: [{ fragment: encodeFragment(set.fragments[index]!), fragmentRoot: set.fragmentRoot, certificate }] }, 0);
    const listed = (): Uint8Array[] => {
      const [reply] = role.binding.machine.onMessage('restore', { type: 'listCertificates', requestId: 9, after: '', limit: 256 }, 0);
      return reply?.kind === 'send' && reply.message.type === 'certificates' ? reply.message.certificates : [];
    };
    store('ring-1', 0, new Uint8Array([1, 2, 3]));
    // Kept unchecked (the first is normally the genuine one: no pairing per batch), never listed.
    expect(listed()).toEqual([]);
    store('ring-1', 0, new Uint8Array([1, 2, 3]));
    store('ring-0', 1, v.certificate);
    expect(role.server.fragments.certificateOf(v.vguid)).toEqual(v.certificate);
    expect(listed()).toEqual([v.certificate]);
    // Junk arriving after the genuine one changes nothing.
    store('ring-1', 2, new Uint8Array([4, 5, 6]));
    expect(role.server.fragments.certificateOf(v.vguid)).toEqual(v.certificate);
  });

  it('a writer sending junk certificate after junk certificate is held to a budget of failed checks; a genuine one from another writer still replaces junk', () => {
    const role = archiveServerRole(contextOf('archive-3', 'archive', new InstantStore()));
    const v = history.versions[0]!;
    const root = v.newBlocks.find((b) => toHex(b.bguid) === toHex(v.vguid))!;
    const set = makeFragments(nodeCrypto, 4, 4, v.vguid, root.bytes);
    const store = (from: string, certificate: Uint8Array) =>
      role.binding.machine.onMessage(from, { type: 'store', requestId: 1, items: [{ fragment: encodeFragment(set.fragments[0]!), fragmentRoot: set.fragmentRoot, certificate }] }, 0);
    for (let i = 0; i < 31; i++) store('ring-1', new Uint8Array([9, i])); // the first is kept unchecked
    expect(role.server.counters.certificateChecksRefused).toBe(10); // 20 failed checks, then refused
    store('ring-0', v.certificate);
    expect(role.server.fragments.certificateOf(v.vguid)).toEqual(v.certificate);
    for (let i = 0; i < 10; i++) role.binding.machine.onTick(i * 100); // the bucket refills
    store('ring-1', new Uint8Array([8, 8]));
    expect(role.server.counters.certificateChecksRefused).toBe(10);
  });

  it('a listing spends a bounded number of checks per request: junk kept first is deleted over several pages', () => {
    const role = archiveServerRole(contextOf('archive-3', 'archive', new InstantStore()));
    for (let i = 0; i < 100; i++) {
      const block = new Prng(1000 + i).bytes(64);
      const set = makeFragments(nodeCrypto, 4, 4, nodeCrypto.sha256([block]), block);
      role.binding.machine.onMessage('ring-1', { type: 'store', requestId: i, items: [{ fragment: encodeFragment(set.fragments[0]!), fragmentRoot: set.fragmentRoot, certificate: new Uint8Array([7, i]) }] }, 0);
    }
    expect(role.server.fragments.certificateCount()).toBe(100);
    const pages: { certificates: Uint8Array[]; next: string | null }[] = [];
    let after = '';
    for (let request = 0; request < 10; request++) {
      const [reply] = role.binding.machine.onMessage('restore', { type: 'listCertificates', requestId: request, after, limit: 256 }, 0);
      if (reply?.kind !== 'send' || reply.message.type !== 'certificates') throw new Error('no certificates reply');
      pages.push(reply.message);
      if (reply.message.next === null) break;
      after = reply.message.next;
    }
    expect(pages.map((p) => [p.certificates.length, p.next !== null])).toEqual([[0, true], [0, false]]);
    expect(role.server.fragments.certificateCount()).toBe(0);
  });

  it('hosts an archiver beside a ring server with the config k, m and f as its fallback depth', () => {
    const built = ringArchiverRole(contextOf('ring-2', 'ring', new InstantStore()));
    expect(built.binding.channel).toBe(channels.archive);
    const blocks = Array.from({ length: 20 }, (_, i) => {
      const bytes = new Prng(i).bytes(1000);
      return { bguid: nodeCrypto.sha256([bytes]), bytes };
    });
    built.archiver.archive(blocks, null, null, 0);
    // Ranks 0 and 1 of 4 ring servers (f = 1) take a block: about half of them.
    expect(built.archiver.pendingCount()).toBeGreaterThan(2);
    expect(built.archiver.pendingCount()).toBeLessThan(18);
  });
});
