/**
 * flush() promises that every write staged before the call is durable. A caller that comes while
 * a commit runs shares it (group commit), so when that commit fails the caller's writes are not on
 * disk and its flush must fail too. Before session 19 such a caller waited on the running commit
 * with its error swallowed and resolved: told durable, writes lost. Latent: the host exits at the
 * first failed flush it sees (runtime/machine-host.ts), and the first caller saw it. Found by the
 * session-19 durability review. A commit's failure is also sticky: its writes are gone from
 * memory, so every later flush fails with it.
 *
 * The failure is injected where a full disk shows it (lmdb's commit promise rejects): the store's
 * one lmdb database has its `transaction` replaced for the test, and nothing else.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LmdbBlockStore } from '../../runtime/lmdb-block-store.ts';
import { LmdbKvStore } from '../../runtime/lmdb-kv-store.ts';
import { bytesOf, crypto } from '../core/update/fixtures.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-flush-failure-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Transacting {
  transaction(work: () => void): Promise<unknown>;
}

/** Makes the store's next lmdb commit fail (a little later, as a real one would); returns the undo. */
function failNextCommit(store: LmdbKvStore | LmdbBlockStore): () => void {
  const db = (store as unknown as { db: Transacting }).db;
  const real = db.transaction;
  db.transaction = () => {
    db.transaction = real;
    return new Promise((_, reject) => setTimeout(() => reject(new Error('injected: commit failed (ENOSPC)')), 20));
  };
  return () => void (db.transaction = real);
}

/** Outcome of each promise, in order. */
const outcomes = async (flushes: Promise<void>[]): Promise<string[]> => (await Promise.allSettled(flushes)).map((r) => r.status);

describe('a flush that shares a failed commit fails', () => {
  it('LmdbKvStore: callers during the failed commit are told, with or without writes of their own since', async () => {
    const store = new LmdbKvStore({ path: tempDir(), syncCommit: false });
    const undo = failNextCommit(store);
    store.put('a', Uint8Array.of(1));
    const first = store.flush();
    const second = store.flush(); // nothing new staged: 'a' rides the failing commit
    store.put('b', Uint8Array.of(2));
    const third = store.flush(); // 'b' is new, but 'a' was staged before this call too
    expect(await outcomes([first, second, third])).toEqual(['rejected', 'rejected', 'rejected']);
    await expect(second).rejects.toThrow(/injected/);
    undo();
    // Its writes are gone from memory: no later flush may report success, with new writes or none.
    store.put('c', Uint8Array.of(3));
    await expect(store.flush()).rejects.toThrow(/injected/);
    await expect(store.close()).rejects.toThrow(/injected/);
  });

  it('LmdbBlockStore: callers during the failed commit are told, with or without writes of their own since', async () => {
    const store = new LmdbBlockStore(crypto, { path: tempDir() });
    const undo = failNextCommit(store);
    store.put('data', bytesOf(100, 1));
    const first = store.flush();
    const second = store.flush();
    store.put('data', bytesOf(100, 2));
    const third = store.flush();
    expect(await outcomes([first, second, third])).toEqual(['rejected', 'rejected', 'rejected']);
    await expect(second).rejects.toThrow(/injected/);
    undo();
    store.put('data', bytesOf(100, 3));
    await expect(store.flush()).rejects.toThrow(/injected/);
    await expect(store.close()).rejects.toThrow(/injected/);
  });

  it('LmdbKvStore, synchronous commits: a failed one fails every later flush too', async () => {
    const store = new LmdbKvStore({ path: tempDir(), syncCommit: true });
    const db = (store as unknown as { db: { transactionSync(work: () => void): unknown } }).db;
    const real = db.transactionSync;
    db.transactionSync = () => {
      db.transactionSync = real;
      throw new Error('injected: commit failed (ENOSPC)');
    };
    store.put('a', Uint8Array.of(1));
    await expect(store.flush()).rejects.toThrow(/injected/);
    store.put('b', Uint8Array.of(2));
    await expect(store.flush()).rejects.toThrow(/injected/);
    await expect(store.close()).rejects.toThrow(/injected/);
  });
});
