/**
 * One-line messages for the file-system errors a CLI verb meets (a missing input file, an output
 * folder that is a file, a read-only data directory, a closed pipe), in place of a stack trace.
 * Shared by the verbs and cli/main.ts.
 */

/** The errno code of a Node file-system or stream error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** A closed pipe on our output (`oceanstore get big | head -c 10`): the reader is done, so are we. */
export function isBrokenPipe(error: unknown): boolean {
  return errnoOf(error) === 'EPIPE' || errnoOf(error) === 'ERR_STREAM_DESTROYED';
}

const what: Record<string, string> = {
  ENOENT: 'does not exist (nor does a folder above it, if writing); check the path',
  ENOTDIR: 'is below something that is a file, not a folder; choose another path',
  EISDIR: 'is a folder; give a file',
  EEXIST: 'already exists (or a file stands where a folder is needed); choose another path',
  EACCES: 'is not accessible to this user (permission denied); check its permissions or choose another path',
  EPERM: 'is not accessible to this user (operation not permitted); check its permissions',
  EROFS: 'is on a read-only file system; choose a writable path',
  ENOSPC: 'cannot be written: the disk is full; free space and retry',
  EDQUOT: 'cannot be written: disk quota exceeded; free space and retry',
  EMFILE: 'cannot be opened: too many open files; raise the limit (ulimit -n) and retry',
  ENAMETOOLONG: 'is too long a name; choose a shorter path',
  ELOOP: 'has too many symbolic links; check the path',
  EBUSY: 'is busy (in use by another program); retry later',
};

/**
 * "PATH is a folder; give a file" for a file-system error (with `context`, e.g. "output file"),
 * or null when `error` is not one. `path` names the file when the caller knows it better than the
 * error does (a write error carries no path; a temporary file's name means nothing to the user).
 */
export function fsErrorMessage(error: unknown, context?: string, path?: string): string | null {
  const code = errnoOf(error);
  if (code === undefined) return null;
  const e = error as NodeJS.ErrnoException;
  path ??= e.path ?? (e as { dest?: string }).dest;
  const subject = `${context ? `${context} ` : ''}${path ?? '(a file)'}`;
  const text = what[code];
  return text ? `${subject} ${text} (${code})` : `${subject}: ${e.message}`;
}

let brokenStdoutAction: () => void = () => process.exit(0);
let brokenStdoutInstalled = false;

/**
 * What a closed stdout/stderr does (EPIPE when the reader of a pipe exits, EIO once a terminal is
 * closed): by default end the process quietly with status 0, as `cat file | head` does; a command
 * that must finish its work first (a foreground cluster stopping its nodes) swaps in its own.
 */
export function onBrokenStdout(action?: () => void): void {
  if (action) brokenStdoutAction = action;
  if (brokenStdoutInstalled) return;
  brokenStdoutInstalled = true;
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: unknown) => {
      if (isBrokenPipe(error) || errnoOf(error) === 'EIO') brokenStdoutAction();
      else throw error;
    });
  }
}
