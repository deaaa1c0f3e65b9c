/**
 * Output files written whole or not at all, shared by `restore -o/--out` and `get -o`: the bytes go
 * to a temporary file beside the final name, fsynced and renamed into place on success; a failure or
 * a signal (Ctrl-C, kill, the terminal closing) removes the temporary file and leaves whatever the
 * final name held before.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { dirname } from 'node:path';

/** Outputs being written: a signal removes their temporary files (see interruptCleanup). */
const unfinished = new Set<OutputFile>();

/**
 * One output written under a temporary name in its final folder (so the rename is atomic) and
 * renamed into place by `commit` only: no partial file ever carries the final name. A version of
 * any size passes through it leaf by leaf (it was written from one buffer of the whole version,
 * which a version over the largest buffer could not fill; session-20 review, finding 8d).
 */
export class OutputFile {
  readonly temporary: string;
  private fd: number | null;

  /**
   * The temporary name is the process's and random, and is created exclusively (never an existing
   * file, never through a symlink): two restores into one folder whose processes share a pid (each
   * pid 1 in its container) truncated and removed each other's temporary, while it lived for the
   * whole restore (session-21 second review). `folderMade`: the folder was made for this output
   * (--all), and is removed again if a discard leaves it empty.
   */
  constructor(readonly path: string, private readonly folderMade = false) {
    this.temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    this.fd = openSync(this.temporary, 'wx');
    unfinished.add(this);
  }

  write(bytes: Uint8Array): void {
    for (let at = 0; at < bytes.length; ) at += writeSync(this.fd!, bytes, at, bytes.length - at);
  }

  /** The bytes reach the disk before the name does: after a crash the final name holds the old file or the whole new one. */
  commit(): void {
    fsyncSync(this.fd!);
    closeSync(this.fd!);
    this.fd = null;
    renameSync(this.temporary, this.path);
    unfinished.delete(this);
    syncFolder(dirname(this.path));
  }

  /** Removes the temporary file; errors are swallowed, as the failure that led here is the one to report. */
  discard(): void {
    unfinished.delete(this);
    try {
      if (this.fd !== null) closeSync(this.fd);
    } catch {
      // Closing can fail only on a descriptor already gone; the file is removed below all the same.
    }
    this.fd = null;
    try {
      rmSync(this.temporary, { force: true });
      if (this.folderMade) rmdirSync(dirname(this.path)); // only if empty: ENOTEMPTY otherwise
    } catch {
      // A temporary file we cannot remove is left; the error that led here is the one to report.
    }
  }
}

/** Makes a rename in `folder` durable; best effort, as some file systems cannot sync a folder and the file itself is already synced. */
function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // See above: the data is on disk, only the new name might not survive a power cut.
  }
}

/**
 * Streams `chunks` into `path` through an OutputFile: committed once the last chunk is written,
 * discarded if the source or a write fails (the error is rethrown as it came).
 */
export async function streamToFile(path: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  const file = new OutputFile(path);
  try {
    for await (const chunk of chunks) file.write(chunk);
    file.commit();
  } catch (error) {
    file.discard();
    throw error;
  }
}

/** Removes the temporary file of every output still being written. */
export function discardUnfinished(): void {
  for (const file of [...unfinished]) file.discard();
}

/** Signals that end a command early: Ctrl-C, `kill`, and the terminal closing. */
export const interruptSignals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The exit status a process ended by `signal` reports (128 + its number), as the default action would. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (osConstants.signals[signal] ?? 0);
}

/**
 * What Ctrl-C (or kill, or the terminal closing) does while outputs are written: remove their
 * temporary files, then end with 128 + the signal's number, as the default action would.
 */
export function interruptCleanup(exit: (code: number) => void = (code) => process.exit(code)): (signal: NodeJS.Signals) => void {
  return (signal) => {
    discardUnfinished();
    exit(signalExitCode(signal));
  };
}

/** Runs `body` with interruptCleanup installed for interruptSignals, removed again after. */
export async function withInterruptCleanup<T>(body: () => Promise<T>): Promise<T> {
  const onInterrupt = interruptCleanup();
  for (const s of interruptSignals) process.on(s, onInterrupt);
  try {
    return await body();
  } finally {
    for (const s of interruptSignals) process.off(s, onInterrupt);
  }
}
