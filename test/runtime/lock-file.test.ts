/**
 * runtime/lock-file.ts, the lock a node takes on its folder and the launcher on its cluster
 * (session-22 second review): who holds a lock is told by boot, pid namespace and start time, so a
 * reused pid is not a holder; a lock written from another pid namespace (a container sharing the
 * volume) is held while its lease is touched; a lock is never seen half written. Stand-in holders
 * are real processes (`sleep`); every one is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLockFile, type LockFileOptions } from '../../runtime/lock-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'oceanstore-lock-'));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

class Busy extends Error {}
const options = (extra: Partial<LockFileOptions> = {}): LockFileOptions => ({
  what: 'ring-1', holderAlive: () => true, busy: (pid, what) => new Busy(`${what} held by ${pid}`), ...extra,
});
const linux = existsSync('/proc/self/stat');
const scopeParts = () => readFileSync(file, 'utf8').trim().split(' ')[2]!.split('/');
let file = '';
let n = 0;
const fresh = () => (file = join(dir, `lock-${n++}`));

async function sleeper(): Promise<{ pid: number; started: string }> {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  children.push(child);
  for (let i = 0; i < 100 && !existsSync(`/proc/${child.pid}/stat`); i++) await new Promise((r) => setTimeout(r, 10));
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
  return { pid: child.pid!, started: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]! };
}

describe.runIf(linux)('acquireLockFile', () => {
  it('writes the lock whole (pid, what, boot/namespace/start) and leaves no temporary file; release removes it', () => {
    const release = acquireLockFile(fresh(), options());
    expect(readFileSync(file, 'utf8')).toMatch(new RegExp(`^${process.pid} ring-1 [0-9a-f-]+/pid:\\[\\d+\\]/\\d+\\n$`));
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    release();
    expect(existsSync(file)).toBe(false);
  });

  it('a live holder of this namespace is busy; the same pid with another start time (a reused pid) is stale, whatever holderAlive says', async () => {
    const { pid, started } = await sleeper();
    const here = (() => {
      const release = acquireLockFile(fresh(), options());
      const parts = scopeParts();
      release();
      return parts;
    })();
    writeFileSync(fresh(), `${pid} ring-1 ${here[0]}/${here[1]}/${started}\n`);
    expect(() => acquireLockFile(file, options())).toThrow(new Busy(`ring-1 held by ${pid}`));
    writeFileSync(file, `${pid} ring-1 ${here[0]}/${here[1]}/${Number(started) + 1}\n`);
    acquireLockFile(file, options())();
    expect(existsSync(file)).toBe(false);
  });

  it('a holder that exited but was not reaped (a zombie, as a kill -9ed node under a PID 1 that does not reap) holds nothing', async () => {
    // `sh` execs into `sleep 30`, which never waits for the short sleep it inherited: that one stays a zombie.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(parent);
    const pid = Number(await new Promise<string>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))));
    let stat = '';
    for (let i = 0; i < 200; i++, await new Promise((r) => setTimeout(r, 10))) {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) break;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect(fields[0]).toBe('Z');
    const release = acquireLockFile(fresh(), options());
    const here = scopeParts();
    release();
    writeFileSync(fresh(), `${pid} ring-1 ${here[0]}/${here[1]}/${fields[19]}\n`);
    acquireLockFile(file, options())();
    expect(existsSync(file)).toBe(false);
  });

  it('a lock from another pid namespace is held while its lease is fresh, and taken over once it is not', () => {
    const foreign = `1 ring-1 00000000-0000-0000-0000-000000000000/pid:[1]/5\n`;
    const here = (() => {
      const release = acquireLockFile(fresh(), options());
      const parts = scopeParts();
      release();
      return parts;
    })();
    const otherNamespace = `1 ring-1 ${here[0]}/pid:[1]/5\n`; // pid 1 of another container on this host
    for (const line of [otherNamespace, foreign]) {
      writeFileSync(fresh(), line);
      expect(() => acquireLockFile(file, options({ leaseMs: 60_000, holderAlive: () => false }))).toThrow(Busy);
      const old = new Date(Date.now() - 120_000);
      utimesSync(file, old, old);
      acquireLockFile(file, options({ leaseMs: 60_000 }))();
      expect(existsSync(file)).toBe(false);
    }
  });

  it('the holder touches its lease, and is told when another process took its lock', async () => {
    let lost = 0;
    const release = acquireLockFile(fresh(), options({ leaseMs: 240, onLost: () => lost++ }));
    const old = new Date(Date.now() - 120_000);
    utimesSync(file, old, old);
    for (let i = 0; i < 100 && Date.now() - statSync(file).mtimeMs > 10_000; i++) await new Promise((r) => setTimeout(r, 20));
    expect(Date.now() - statSync(file).mtimeMs).toBeLessThan(10_000);
    writeFileSync(file, `999999 ring-1 -/-/-\n`);
    for (let i = 0; i < 100 && lost === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(lost).toBe(1);
    release();
    expect(readFileSync(file, 'utf8')).toBe(`999999 ring-1 -/-/-\n`); // not ours: left alone
  });

  it('an empty or garbled lock (never written whole) is stale at once', () => {
    for (const content of ['', 'garbage\n']) {
      writeFileSync(fresh(), content);
      acquireLockFile(file, options())();
      expect(existsSync(file)).toBe(false);
    }
  });
});
