/**
 * A replica's slot records (ring/replica-store.ts): what a restarted replica reads back is exactly
 * what it wrote, the pre-prepare (the whole batch) is stored once however many proofs name it, and
 * records written in the earlier layout (each proof with its own copy) still load.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encode } from '../../core/codec.ts';
import { MemoryKvStore } from '../../core/store.ts';
import { toTuple } from '../../ring/codec.ts';
import type { CommitProof, PrePrepare } from '../../ring/messages.ts';
import { leavesKey, loadLeaves, loadSent, loadSlot, saveLeaves, saveSent, saveSlot, sentKey, slotKey, type SlotRecord } from '../../ring/replica-store.ts';
import { agreement, prePrepare } from './arbitraries.ts';

const slot = fc
  .record({
    pp: prePrepare,
    other: prePrepare,
    prepares: fc.array(agreement('prepare'), { maxLength: 3 }),
    commits: fc.array(agreement('commit'), { maxLength: 3 }),
    shape: fc.record({ hasPp: fc.boolean(), prepared: fc.constantFrom('none', 'same', 'other'), committed: fc.constantFrom('none', 'same', 'other') }),
  })
  .map(({ pp, other, prepares, commits, shape }): SlotRecord => ({
    prePrepare: shape.hasPp ? pp : null,
    prepared: shape.prepared === 'none' ? null : { prePrepare: shape.prepared === 'same' ? pp : other, prepares },
    committed: shape.committed === 'none' ? null : { kind: 'commit-proof', prePrepare: shape.committed === 'same' ? pp : other, commits },
  }));

function saved(r: SlotRecord): Uint8Array {
  const store = new MemoryKvStore();
  saveSlot(store, 7, r);
  return store.get(slotKey(7))!;
}

describe('slot records', () => {
  it('load back exactly what was saved, for any mix of pre-prepare, prepared and commit proofs', () => {
    fc.assert(
      fc.property(slot, (r) => {
        expect(loadSlot(saved(r))).toEqual(r);
      }),
      { numRuns: 200 },
    );
  });

  it('store a pre-prepare named by the slot and both proofs once', () => {
    const pp = fc.sample(prePrepare.filter((p) => (p.batch?.requests.length ?? 0) > 0), { numRuns: 1, seed: 3 })[0]!;
    const ppBytes = encode(toTuple(pp)).length;
    const record: SlotRecord = { prePrepare: pp, prepared: { prePrepare: pp, prepares: [] }, committed: { kind: 'commit-proof', prePrepare: pp, commits: [] } };
    expect(saved(record).length).toBeLessThan(ppBytes + 64);
  });

  it('still read records in the earlier layout, where each proof carried its own copy', () => {
    fc.assert(
      fc.property(slot, (r) => {
        const bytes = (m: PrePrepare | CommitProof) => encode(toTuple(m));
        const earlier = encode([
          r.prePrepare ? bytes(r.prePrepare) : null,
          r.prepared ? [bytes(r.prepared.prePrepare), r.prepared.prepares.map((p) => encode(toTuple(p)))] : null,
          r.committed ? bytes(r.committed) : null,
        ]);
        expect(loadSlot(earlier)).toEqual(r);
      }),
      { numRuns: 100 },
    );
  });
});

describe('kept statements (ring/leaves/)', () => {
  const leaf = fc.record({
    statement: fc.uint8Array({ maxLength: 300 }),
    clientKey: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: null }),
    nonce: fc.nat(),
    replyTo: fc.string({ maxLength: 128 }),
  });

  it('load back exactly what was saved, ascending by seq, and drop records above the last executed batch', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 8 }), fc.array(leaf, { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 1_000_000 }), (seqs, leaves, lastExecuted) => {
        const store = new MemoryKvStore();
        for (const seq of seqs) saveLeaves(store, seq, leaves);
        const loaded = loadLeaves(store, lastExecuted);
        const expected = seqs.filter((s) => s <= lastExecuted).sort((a, b) => a - b);
        expect(loaded.map((e) => e.seq)).toEqual(expected);
        for (const e of loaded) expect(e.leaves).toEqual(leaves);
        expect(store.keys('ring/leaves/')).toEqual(expected.map(leavesKey));
      }),
      { numRuns: 50 },
    );
  });

  it('sent spans (ring/sent/) load back exactly what was saved, ascending by their end; one that does not decode is deleted', () => {
    const path = fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 8 });
    const sent = fc.array(fc.record({ leaf, leafIndex: fc.nat({ max: 255 }), path }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: 1_000_000 }), { maxLength: 6 }), sent, fc.nat(), (ends, certificates, epoch) => {
        const store = new MemoryKvStore();
        const root = new Uint8Array(32).fill(3);
        const signature = new Uint8Array(48).fill(4);
        for (const to of ends) saveSent(store, { to, epoch, root, signature, leafCount: 256, sent: certificates });
        store.put(sentKey(2_000_000), encode(['not', 'a', 'record']));
        const loaded = loadSent(store);
        expect(loaded.map((e) => e.to)).toEqual([...ends].sort((a, b) => a - b));
        for (const e of loaded) expect(e).toEqual({ to: e.to, epoch, root, signature, leafCount: 256, sent: certificates });
        expect(store.keys('ring/sent/')).toEqual([...ends].sort((a, b) => a - b).map(sentKey));
      }),
      { numRuns: 30 },
    );
  });

  it('a record that is not statements is deleted with every record below it (none held below it: no gap reads as a batch without statements)', () => {
    const store = new MemoryKvStore();
    const leaves = [{ statement: new Uint8Array(4), clientKey: null, nonce: 0, replyTo: '' }];
    for (const seq of [1, 2, 4, 6]) saveLeaves(store, seq, leaves);
    store.put(leavesKey(3), encode([[new Uint8Array(4), new Uint8Array(5), 1, 'c']]));
    store.put(leavesKey(5), Uint8Array.of(0xff, 0x00));
    expect(loadLeaves(store, 10)).toEqual([{ seq: 6, leaves }]);
    expect(store.keys('ring/leaves/')).toEqual([leavesKey(6)]);
  });
});
