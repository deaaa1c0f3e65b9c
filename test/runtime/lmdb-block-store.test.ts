// The lmdb block store on real files in a temp dir: the shared compliance suite, durability at
// flush (a reopened store sees flushed blocks), and bit rot on disk detected on read.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../core/errors.ts';
import { LmdbBlockStore } from '../../runtime/lmdb-block-store.ts';
import { applyUpdate } from '../../core/update/apply.ts';
import { readHead, readVersion } from '../../core/version/version-read.ts';
import { blockStoreCompliance } from '../core/version/block-store-compliance.ts';
import { bytesOf, clause, createAction, crypto, owner, update } from '../core/update/fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'oceanstore-lmdb-blocks-'));
const opened: LmdbBlockStore[] = [];
let dirCount = 0;

function openStore(path = join(root, `db-${dirCount++}`)): LmdbBlockStore {
  const store = new LmdbBlockStore(crypto, { path, mapBytes: 64 * 2 ** 20 });
  opened.push(store);
  return store;
}

afterAll(async () => {
  for (const s of opened) await s.close();
  rmSync(root, { recursive: true, force: true });
});

blockStoreCompliance('LmdbBlockStore', async () => {
  const store = openStore();
  return { store, barrier: () => store.flush() };
});

describe('LmdbBlockStore on disk', () => {
  it('a version written and flushed is read back whole by a reopened store', async () => {
    const path = join(root, 'reopen');
    const store = openStore(path);
    const data = bytesOf(300_000, 3);
    const outcome = applyUpdate(
      { crypto, blocks: store, timestampMs: 5 },
      null,
      update(owner, [clause([createAction(4096, 8), { kind: 'append', bytes: data }])]),
    );
    expect(outcome.kind).toBe('commit');
    if (outcome.kind !== 'commit') return;
    expect(store.dirty).toBe(true);
    await store.flush();
    expect(store.dirty).toBe(false);
    expect(store.flushStats().blocksWritten).toBe(outcome.newBlocks.length);
    await store.close();
    const again = openStore(path);
    const head = readHead(again, outcome.head.vguid);
    expect(head.root.sizeBytes).toBe(data.length);
    expect(readVersion(again, head)).toEqual(data);
  });

  it('unflushed writes are not on disk; flushed ones are (durability at the barrier)', async () => {
    const path = join(root, 'barrier');
    const store = openStore(path);
    const durable = store.put('data', bytesOf(50, 4));
    await store.flush();
    const volatile = store.put('data', bytesOf(50, 5));
    expect(store.has(volatile)).toBe(true);
    const raw = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary', readOnly: true });
    expect(raw.doesExist(Buffer.from(durable))).toBe(true);
    expect(raw.doesExist(Buffer.from(volatile))).toBe(false);
    await raw.close();
  });

  it('concurrent flushes share transactions (group commit) and every staged write ends up durable', async () => {
    const path = join(root, 'group');
    const store = openStore(path);
    const names: Uint8Array[] = [];
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      names.push(store.put('data', bytesOf(100, 1000 + i)));
      if (i % 4 === 3) flushes.push(store.flush());
    }
    await Promise.all(flushes);
    expect(store.dirty).toBe(false);
    // Ten flush calls: the first commits the first 4 writes; the other 36, staged while it ran, go
    // into one second transaction that every later caller joins — two syncs, not ten.
    expect(store.flushStats().flushCount).toBe(2);
    expect(store.flushStats().blocksWritten).toBe(40);
    await store.close();
    const again = openStore(path);
    for (const [i, bguid] of names.entries()) expect(again.get(bguid, 'data')).toEqual(bytesOf(100, 1000 + i));
  });

  it('a block whose bytes rot on disk is refused with IntegrityError on read', async () => {
    const path = join(root, 'rot');
    const store = openStore(path);
    const bguid = store.put('data', bytesOf(200, 6));
    await store.close();
    const raw = open<Buffer, Buffer>({ path, encoding: 'binary', keyEncoding: 'binary' });
    const value = Buffer.from(raw.getBinary(Buffer.from(bguid))!);
    value[100] = value[100]! ^ 0x40;
    await raw.put(Buffer.from(bguid), value);
    await raw.close();
    const reopened = openStore(path);
    expect(() => reopened.get(bguid, 'data')).toThrow(IntegrityError);
    expect(reopened.byteLengthOf(bguid, 'data')).toBe(200);
  });
});
