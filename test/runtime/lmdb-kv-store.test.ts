import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryKvStore } from '../../core/store.ts';
import { LmdbKvStore } from '../../runtime/lmdb-kv-store.ts';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-kv-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const text = (s: string) => new TextEncoder().encode(s);

describe('LmdbKvStore', () => {
  it('reads see staged writes and deletes before any flush (the KvStore contract cores rely on)', async () => {
    const store = new LmdbKvStore({ path: tempDir() });
    store.put('a/1', text('one'));
    store.put('a/2', text('two'));
    store.put('b/1', text('other'));
    expect(store.get('a/1')).toEqual(text('one'));
    expect(store.keys('a/')).toEqual(['a/1', 'a/2']);
    await store.flush();
    store.delete('a/1');
    store.put('a/0', text('zero'));
    expect(store.get('a/1')).toBeUndefined();
    expect(store.keys('a/')).toEqual(['a/0', 'a/2']);
    await store.close();
  });

  it('keeps flushed writes across close and reopen, and drops unflushed ones only if never flushed', async () => {
    const path = tempDir();
    const store = new LmdbKvStore({ path });
    for (let i = 0; i < 50; i++) store.put(`k/${String(i).padStart(3, '0')}`, text(`v${i}`));
    store.delete('k/007');
    await store.flush();
    await store.close();
    const again = new LmdbKvStore({ path });
    expect(again.keys('k/').length).toBe(49);
    expect(again.get('k/007')).toBeUndefined();
    expect(again.get('k/049')).toEqual(text('v49'));
    await again.close();
  });

  it('groups writes staged during a running flush into one following transaction (group commit)', async () => {
    const store = new LmdbKvStore({ path: tempDir() });
    store.put('x/0', text('0'));
    const first = store.flush();
    const waiters: Promise<void>[] = [];
    for (let i = 1; i <= 20; i++) {
      store.put(`x/${i}`, text(String(i)));
      waiters.push(store.flush());
    }
    await Promise.all([first, ...waiters]);
    // 21 flush calls, but only the running one plus one grouped transaction hit the disk.
    expect(store.flushStats().flushCount).toBe(2);
    expect(store.keys('x/').length).toBe(21);
    expect(store.dirty).toBe(false);
    await store.close();
  });

  it.each([false, true])('behaves like MemoryKvStore for any sequence of puts, deletes, flushes and reopens (differential property; syncCommit %s)', async (syncCommit) => {
    const key = fc.constantFrom('a', 'a/1', 'a/2', 'ab', 'b/1', 'b/2', 'c');
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key, value: fc.uint8Array({ maxLength: 8 }) }),
      fc.record({ kind: fc.constant('delete' as const), key }),
      fc.record({ kind: fc.constant('flush' as const) }),
      // A flush left running: the next steps read while its writes are in flight.
      fc.record({ kind: fc.constant('flushRunning' as const) }),
      fc.record({ kind: fc.constant('reopen' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
        const path = tempDir();
        const model = new MemoryKvStore();
        let store = new LmdbKvStore({ path, syncCommit });
        const running: Promise<void>[] = [];
        for (const o of ops) {
          if (o.kind === 'put') {
            store.put(o.key, o.value);
            model.put(o.key, o.value);
          } else if (o.kind === 'delete') {
            store.delete(o.key);
            model.delete(o.key);
          } else if (o.kind === 'flush') {
            await store.flush();
          } else if (o.kind === 'flushRunning') {
            running.push(store.flush());
          } else {
            await Promise.all(running.splice(0));
            await store.close(); // close flushes, so everything in the model must come back
            store = new LmdbKvStore({ path, syncCommit });
          }
          for (const prefix of ['', 'a', 'a/', 'b/']) expect(store.keys(prefix)).toEqual(model.keys(prefix));
          for (const k of ['a', 'a/1', 'b/2', 'c']) {
            expect(store.get(k)).toEqual(model.get(k));
            expect(store.has(k)).toBe(model.has(k));
          }
        }
        await Promise.all(running);
        await store.close();
      }),
      { numRuns: 25 },
    );
  });

  it.each(['async', 'sync'])('loses nothing acknowledged when the writer process is killed with SIGKILL (%s commit)', async (mode) => {
    const path = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/kv-writer.ts'), path, mode], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let acked = 0;
    let buffer = '';
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`writer acknowledged only ${acked} records in 20 s`)), 20_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        for (const line of lines) acked = Math.max(acked, Number(line.split(' ')[1]));
        if (acked >= 300) {
          clearTimeout(timer);
          child.kill('SIGKILL');
          resolve();
        }
      });
    });
    await exited;
    const store = new LmdbKvStore({ path });
    for (let i = 0; i < acked; i++) {
      expect(store.get(`rec/${String(i).padStart(8, '0')}`), `record ${i} of ${acked} acknowledged`).toEqual(text(`value-${i}`));
    }
    await store.close();
  });

  it('has agrees with get for large values, staged, flushed, deleted and discarded', async () => {
    const store = new LmdbKvStore({ path: tempDir(), mapBytes: 2 ** 26 });
    const big = new Uint8Array(300 * 1024).fill(9);
    store.put('v/big', big);
    expect(store.has('v/big')).toBe(true);
    await store.flush();
    expect(store.has('v/big')).toBe(true);
    expect(store.has('v/bi')).toBe(false);
    store.delete('v/big');
    expect(store.has('v/big')).toBe(false);
    await store.flush();
    store.put('v/again', big);
    await store.flush();
    store.discardNow(['v/again']);
    expect(store.has('v/again')).toBe(store.get('v/again') !== undefined);
    expect(store.has('v/again')).toBe(false);
    await store.close();
  });

  it('discardNow removes a key durably at once, ahead of the staged writes (a corrupt block stays gone if its step then fails)', async () => {
    const path = tempDir();
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'fixtures/kv-discard.ts'), path], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the child did not discard within 20 s')), 20_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        if (!chunk.toString().includes('discarded')) return;
        clearTimeout(timer);
        child.kill('SIGKILL');
        resolve();
      });
    });
    await exited;
    const store = new LmdbKvStore({ path });
    expect(store.get('blk')).toBeUndefined();
    expect(store.get('blkm')).toBeUndefined();
    expect(store.get('staged')).toBeUndefined(); // never flushed
    await store.close();
  });
});
