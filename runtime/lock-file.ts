/**
 * Exclusive lock files: the cluster's (two `up`/`down` commands at once) and each node's (two
 * processes on one node's data directory, which lmdb would let share its store).
 *
 * A lock names its holder as `pid what scope`, where scope is the boot, the pid namespace and the
 * process's start time (Linux /proc). It is written whole to a temporary file and linked into
 * place, so nobody ever reads a lock half written (with create-then-write, a holder descheduled
 * between the two let another take the empty file for stale). Whether the holder still runs:
 * - same boot and pid namespace: the pid runs and started when the lock says (a reused pid is
 *   another process, so the lock is stale);
 * - another namespace or host sharing the folder (two containers on one volume), where a pid
 *   means nothing: with a lease, the holder touches the lock every `leaseMs / 12` and it is held
 *   until `leaseMs` pass untouched; without one, the caller's `holderAlive` decides;
 * - no /proc: the caller's `holderAlive`.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.ts';

export interface LockFileOptions {
  /** Written after the pid (one word), and shown to whoever finds the lock held. */
  readonly what: string;
  /** Whether `pid` still holds the lock it wrote, where the lock's scope cannot tell. */
  readonly holderAlive: (pid: number) => boolean;
  /** The error for a lock held by a live holder. */
  readonly busy: (pid: number, what: string) => Error;
  /** Keep the lock alive by touching it, for holders in other pid namespaces to see (ms). */
  readonly leaseMs?: number;
  /** The lease was lost: another process took the lock (this one stalled past the lease). */
  readonly onLost?: () => void;
}

interface Lock {
  readonly pid: number;
  readonly what: string;
  readonly scope: string;
  readonly touchedMs: number;
}

/** Takes the lock `file`, or throws `busy`; the function returned releases it (once). */
export function acquireLockFile(file: string, options: LockFileOptions): () => void {
  const line = `${process.pid} ${options.what} ${scopeOf('self')}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (tryCreate(file, line)) return holding(file, line, options);
    const lock = readLock(file);
    if (lock && held(lock, options)) throw options.busy(lock.pid, lock.what);
    // Stale: take it aside by renaming (atomic), so that of two processes that both found it
    // stale, the one whose rename came second sees the other's fresh lock instead of deleting it;
    // that one puts the lock back (link fails if a third took the name meanwhile).
    const aside = `${file}.${process.pid}.stale`;
    try {
      renameSync(file, aside);
    } catch {
      continue; // gone already: try to create it again
    }
    const taken = readLock(aside);
    if (taken && (taken.pid !== lock?.pid || taken.scope !== lock.scope) && held(taken, options)) {
      try {
        linkSync(aside, file);
      } catch {
        // a third process holds the name now; the lock it renamed away is its holder's to miss
      }
      rmSync(aside, { force: true });
      throw options.busy(taken.pid, taken.what);
    }
    rmSync(aside, { force: true });
  }
  throw new ConfigError(`could not take the lock ${file}; remove it if no oceanstore process holds it`);
}

function tryCreate(file: string, line: string): boolean {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(temporary, line, { flag: 'wx' });
  try {
    linkSync(temporary, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    rmSync(temporary, { force: true });
  }
}

function holding(file: string, line: string, options: LockFileOptions): () => void {
  let timer: NodeJS.Timeout | undefined;
  const ours = () => {
    try {
      return readFileSync(file, 'utf8') === line;
    } catch {
      return false;
    }
  };
  if (options.leaseMs !== undefined) {
    timer = setInterval(() => {
      if (!ours()) {
        clearInterval(timer);
        return options.onLost?.();
      }
      const now = new Date();
      utimesSync(file, now, now);
    }, Math.max(1, Math.floor(options.leaseMs / 12)));
    timer.unref();
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    clearInterval(timer);
    if (ours()) rmSync(file, { force: true });
  };
}

function held(lock: Lock, options: LockFileOptions): boolean {
  const here = scopeOf('self');
  const [boot, namespace, started] = lock.scope.split('/');
  const [hereBoot, hereNamespace] = here.split('/');
  if (boot && boot !== '-' && namespace !== '-' && boot === hereBoot && namespace === hereNamespace) {
    if (lock.pid === process.pid) return false; // this process (a node restarted in-process), or a dead one with its pid
    const running = startTimeOf(String(lock.pid));
    if (running === null) return false; // no such process here
    return started === '-' ? options.holderAlive(lock.pid) : running === started;
  }
  if (boot && boot !== '-' && hereBoot !== '-' && options.leaseMs !== undefined) return Date.now() - lock.touchedMs < options.leaseMs;
  return lock.pid !== process.pid && options.holderAlive(lock.pid);
}

function readLock(file: string): Lock | null {
  try {
    const [pidText = '', what = '', scope = ''] = readFileSync(file, 'utf8').trim().split(' ');
    const pid = Number(pidText);
    if (!Number.isSafeInteger(pid) || pid <= 0) return null; // garbled: never written whole, so stale
    return { pid, what, scope, touchedMs: statSync(file).mtimeMs };
  } catch {
    return null;
  }
}

/** `boot/pid-namespace/start-time` of a process, '-' for what this system does not show. */
function scopeOf(pid: string): string {
  const read = (f: () => string) => {
    try {
      return f().trim().replace(/[^0-9A-Za-z:[\]-]/g, '') || '-';
    } catch {
      return '-';
    }
  };
  const boot = read(() => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
  const namespace = read(() => readlinkSync(`/proc/${pid}/ns/pid`));
  return `${boot}/${namespace}/${startTimeOf(pid) ?? '-'}`;
}

/**
 * Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot; null if there is
 * no such process or it has exited and awaits reaping (state Z or X). A killed node nobody reaps
 * stays a zombie with its start time: where PID 1 does not reap orphans (this project's CI VM), the
 * zombie of a `kill -9`ed node held its lock, and starting the node again failed "already runs".
 */
function startTimeOf(pid: string): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

export function pauseMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
