/**
 * Object verbs of the CLI: put, get, append, log, stat, acl, watch, and whoami. Each takes
 * [--config FILE] [--identity FILE] [--json]; exit codes 0 ok, 1 error, 2 usage, 3 predicate failed.
 */
import { closeSync, createReadStream, createWriteStream, existsSync, fstatSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fromHex, toHex } from '../core/bytes.ts';
import { NotFoundError, OceanStoreError, PredicateFailedError } from '../core/errors.ts';
import { homeIdentityPath, loadOrCreateIdentity, type Identity } from '../client/identity.ts';
import { connect, type OceanStore } from '../client/oceanstore.ts';
import type { ByteSource, ObjectHandle } from '../client/object.ts';
import type { WriteResult } from '../client/result.ts';
import { fsErrorMessage, isBrokenPipe, onBrokenStdout } from './fs-errors.ts';
import { streamToFile, withInterruptCleanup } from './output-file.ts';
import { Progress } from './progress.ts';

interface Parsed {
  positional: string[];
  flags: Map<string, string[]>;
}

const valueFlags = new Set(['--config', '--identity', '--if-version', '--version', '-o', '--writer', '--owner', '--interval-ms', '--block-bytes']);
const boolFlags = new Set(['--json', '--quiet', '--owner-only']);

function parse(args: string[]): Parsed | string {
  const positional: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (valueFlags.has(a)) {
      const v = args[++i];
      if (v === undefined) return `${a} needs a value`;
      flags.set(a, [...(flags.get(a) ?? []), v]);
    } else if (boolFlags.has(a)) flags.set(a, ['true']);
    else if (a.startsWith('--') && a !== '-') return `unknown option ${a}`;
    else positional.push(a);
  }
  return { positional, flags };
}

function flag(p: Parsed, name: string): string | undefined {
  return p.flags.get(name)?.at(-1);
}

function intFlag(p: Parsed, name: string, min = 0): number | undefined {
  const v = flag(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} takes ${min === 0 ? 'a non-negative' : 'a positive'} integer, got '${v}'`);
  return n;
}

/** --owner as a public key, checked before connecting (a bad one threw a TypeError or AssertionError). */
function ownerFlag(p: Parsed): Uint8Array | undefined {
  const owner = flag(p, '--owner');
  if (owner === undefined) return undefined;
  if (!/^[0-9a-f]{64}$/i.test(owner)) throw new UsageError(`--owner takes the owner's 64-hex-digit ed25519 public key, got '${owner}'`);
  return fromHex(owner.toLowerCase());
}

class UsageError extends Error {}

/** Writing `get -o`'s file failed once connected: exit 1 and one line naming the path, not a usage error. */
class OutputError extends Error {}

/**
 * Reads from the CLI wait longer than the SDK's 15 s default: right after a large write, ring
 * servers may be busy archiving it for tens of seconds on a small machine, and a person running
 * `get` would rather wait than retry by hand.
 */
const readTimeoutMs = 120_000;
/** The same patience for the first 2f+1 ring connections (handshakes wait on a busy event loop). */
const connectTimeoutMs = 60_000;
/**
 * Uploading a large file and committing the update naming its blocks can take minutes on a busy
 * cluster (every ring server stores every block; the commit waits for all of them); Ctrl-C aborts.
 */
const writeTimeoutMs = 1_800_000;

/**
 * The identity a verb signs with, and its file. --identity FILE or OCEANSTORE_IDENTITY must name an
 * existing file (a usage error naming it): a typo made a new key and its folders, even for a read,
 * and a put under it reported success (session-22 review, finding 4). Only the default
 * ~/.oceanstore/identity.json is made on first use, said on stderr with its public key.
 */
function identityOf(p: Parsed): { identity: Identity; path: string } {
  const fromFlag = flag(p, '--identity');
  const explicit = fromFlag ?? (process.env.OCEANSTORE_IDENTITY || undefined);
  if (explicit !== undefined) {
    if (!existsSync(explicit)) {
      throw new UsageError(`identity file ${explicit} (${fromFlag !== undefined ? '--identity' : 'OCEANSTORE_IDENTITY'}) does not exist; check the path, or give neither to use ${homeIdentityPath()} (made on first use)`);
    }
    return { identity: loadOrCreateIdentity(explicit), path: explicit };
  }
  const path = homeIdentityPath();
  const made = !existsSync(path);
  const identity = loadOrCreateIdentity(path);
  if (made) console.error(`oceanstore: made a new identity ${path}, public key ${toHex(identity.publicKey)} (keep the file: it holds your secret key)`);
  return { identity, path };
}

async function withStore<T>(p: Parsed, run: (store: OceanStore) => Promise<T>): Promise<T> {
  const store = await connect({ config: flag(p, '--config'), identity: identityOf(p).identity, connectTimeoutMs: connectTimeoutMs });
  try {
    return await run(store);
  } catch (error) {
    throw namedNotFound(error, p, store);
  } finally {
    await store.close();
  }
}

/**
 * The SDK names a missing object by a truncated AGUID ("object f5121f425e097add… does not exist");
 * the user typed a name, under an identity or --owner: say those (session-22 review, finding 12).
 */
function namedNotFound(error: unknown, p: Parsed, store: OceanStore): unknown {
  const name = p.positional[0];
  const aguidPrefix = /^object [0-9a-f]{16}…/;
  if (!(error instanceof NotFoundError) || name === undefined || !aguidPrefix.test(error.message)) return error;
  const owner = flag(p, '--owner')?.toLowerCase();
  if (owner === undefined && /^[0-9a-f]{64}$/.test(name)) return error; // an AGUID was typed
  const whose = owner === undefined || owner === store.publicKeyHex ? `of your identity ${store.publicKeyHex.slice(0, 16)}…` : `of owner ${owner.slice(0, 16)}…`;
  error.message = error.message.replace(aguidPrefix, `object '${name}' ${whose}`);
  return error;
}

function handleOf(store: OceanStore, p: Parsed, name: string): ObjectHandle {
  return store.open(name, ownerFlag(p));
}

/**
 * A write is committed on f+1 signed replies, but readers accept a version only with its
 * certificate, which follows: a `get` started by the next command could still see the previous
 * version. So the CLI reports a write once its certificate exists (true), or, if that takes
 * longer than the SDK's certificate timeout, says so on stderr (false): the write stands.
 */
async function certifiedOf(result: WriteResult): Promise<boolean> {
  try {
    await result.certified;
    return true;
  } catch (error) {
    console.error(`oceanstore: version ${result.version} is committed, but its certificate has not arrived (${(error as Error).message}); reads may show the previous version for a while`);
    return false;
  }
}

function print(p: Parsed, value: unknown, text: string): void {
  console.log(flag(p, '--json') ? JSON.stringify(value) : text);
}

/**
 * Runs a verb: parses, checks usage (arity, then `body`'s own checks, which come before it
 * connects, so a bad flag or input file is exit 2 at once, not after a minute of connecting), and
 * turns every error into one line: 1 error, 2 usage, 3 predicate failed; a closed stdout pipe ends
 * quietly. With --json an error is also printed on stdout as {"error": {name, message, exitCode}}.
 */
async function verb(
  args: string[], usage: string, minArgs: number, maxArgs: number, body: (p: Parsed) => Promise<number>,
  options: { dataOnStdout?: (args: string[]) => boolean } = {},
): Promise<number> {
  onBrokenStdout();
  // Known before parsing, so a usage error is JSON too.
  const json = args.includes('--json');
  const p = parse(args);
  // A verb whose data goes to stdout (get without -o) reports in JSON on stderr, never into the data.
  const jsonOut = options.dataOnStdout?.(args) ? console.error : console.log;
  const fail = (code: number, name: string, text: string, message = text, extra = ''): number => {
    console.error(`oceanstore: ${text}${extra}`);
    if (json) jsonOut(JSON.stringify({ error: { name, message, exitCode: code } }));
    return exitWhenFlushed(code);
  };
  if (typeof p === 'string') return fail(2, 'UsageError', p, p, `\nusage: oceanstore ${usage}`);
  if (p.positional.length < minArgs || args.includes('--help')) {
    if (json && !args.includes('--help')) return fail(2, 'UsageError', 'missing arguments', 'missing arguments', `\nusage: oceanstore ${usage}`);
    console.error(`usage: oceanstore ${usage}`);
    return 2;
  }
  try {
    if (p.positional.length > maxArgs) throw new UsageError(`unexpected argument${p.positional.length - maxArgs > 1 ? 's' : ''} ${p.positional.slice(maxArgs).map((a) => `'${a}'`).join(' ')}`);
    return exitWhenFlushed(await body(p));
  } catch (error) {
    if (isBrokenPipe(error)) return exitWhenFlushed(0);
    if (error instanceof UsageError) return fail(2, 'UsageError', error.message, error.message, `\nusage: oceanstore ${usage}`);
    if (error instanceof OutputError) return fail(1, 'FileError', error.message);
    if (error instanceof PredicateFailedError) return fail(3, error.name, `predicate failed: ${error.message}`, error.message);
    if (error instanceof OceanStoreError) return fail(1, error.name, `${error.name}: ${error.message}`, error.message);
    const fs = fsErrorMessage(error);
    if (fs !== null) return fail(1, 'FileError', fs);
    throw error;
  }
}

/**
 * Once the verb is done and stdout/stderr are drained, a connection the transport failed to close
 * must not keep the process alive: exit with the verb's code. The timer is unref'd, so a process
 * that ends on its own is never held back by it.
 */
function exitWhenFlushed(code: number): number {
  const check = (): void => {
    if (process.stdout.writableLength === 0 && process.stderr.writableLength === 0) process.exit(code);
    else setTimeout(check, 100).unref();
  };
  setTimeout(check, 2_000).unref();
  return code;
}

/**
 * A file or stdin as chunks, opened before connecting: a missing file, a folder or an unreadable
 * file is a usage error naming the path (it was a stack trace, after a minute of connecting when
 * the cluster was down).
 */
function sourceOf(path: string): { source: ByteSource; sizeBytes: number | null } {
  if (path === '-') return { source: process.stdin as AsyncIterable<Uint8Array>, sizeBytes: null };
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw new UsageError(fsErrorMessage(error, 'input file') ?? `cannot open ${path}: ${(error as Error).message}`);
  }
  const stats = fstatSync(fd);
  if (stats.isDirectory()) {
    closeSync(fd);
    throw new UsageError(`input file ${path} is a folder; give a file (or - for stdin)`);
  }
  return { source: createReadStream(path, { fd, highWaterMark: 1 << 20 }) as AsyncIterable<Uint8Array>, sizeBytes: stats.isFile() ? stats.size : null };
}

/** Checks `get -o FILE` before connecting: its folder exists and it is not itself a folder. */
function checkOutput(out: string | undefined): void {
  if (out === undefined || out === '-') return;
  const dir = dirname(resolve(out));
  let dirStats;
  try {
    dirStats = statSync(dir);
  } catch (error) {
    throw new UsageError(`-o ${out}: ${fsErrorMessage(error, 'its folder') ?? (error as Error).message}; create the folder first`);
  }
  if (!dirStats.isDirectory()) throw new UsageError(`-o ${out}: ${dir} is a file, not a folder`);
  try {
    if (statSync(out).isDirectory()) throw new UsageError(`-o ${out} is a folder; give a file name`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
  }
}

/**
 * `get -o FILE`: the bytes go to a temporary file beside FILE, renamed over it once the whole
 * version is written, so FILE keeps its old content if the read fails or Ctrl-C comes (FILE was
 * truncated at once and left partial; session-22 review). A FILE that is not a regular file
 * (/dev/null, a pipe, /dev/stdout) is written directly: renaming over it would replace it.
 */
async function writeOutput(out: string, chunks: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    if (isSpecialFile(out)) await pipeline(chunks, createWriteStream(out));
    else await withInterruptCleanup(() => streamToFile(out, chunks));
  } catch (error) {
    const message = fsErrorMessage(error, 'output file', out);
    throw message !== null ? new OutputError(message) : error;
  }
}

function isSpecialFile(path: string): boolean {
  try {
    return !statSync(path).isFile();
  } catch {
    return false;
  }
}

function counted(source: ByteSource, progress: Progress): AsyncIterable<Uint8Array> {
  return (async function* () {
    for await (const chunk of source as AsyncIterable<Uint8Array>) {
      progress.add(chunk.length);
      yield chunk;
    }
  })();
}

/**
 * Block size for a new object made by `put`: 64 KiB (the SDK default) for ordinary files, 1 MiB
 * for files of 16 MiB or more (and for stdin, whose size is unknown), where per-block costs on
 * every server (an upload frame and ack, a store entry, an erasure-coded set of fragments)
 * dominate. `--block-bytes` overrides it. Later puts keep the object's block size.
 */
export function blockBytesFor(sizeBytes: number | null): number {
  return sizeBytes === null || sizeBytes >= 16 * 2 ** 20 ? 2 ** 20 : 64 * 1024;
}

/**
 * Only an object's owner can create it: `put NAME FILE --owner KEY` of another's object that does
 * not exist is NotFoundError. It created NAME under the caller's own key instead, reported success,
 * and the data was not where --owner said (session-22 review, finding 2).
 */
function checkOwnCreate(store: OceanStore, p: Parsed, name: string): void {
  const owner = flag(p, '--owner')?.toLowerCase();
  if (owner === undefined || owner === store.publicKeyHex) return;
  throw new NotFoundError(`object '${name}' of owner ${owner.slice(0, 16)}… does not exist, and only its owner can create it: ask them to (\`oceanstore put ${name} FILE\` under their identity) and to add you with \`oceanstore acl ${name} --writer ${store.publicKeyHex}\``);
}

/**
 * Creates NAME for a put that found it missing. Another put may create it between that look and
 * this create: without --if-version no predicate was asked for, so its "already exists" means
 * "write into it" (it failed the put with exit 3, "predicate failed", 1 race in 3 of the
 * session-22 review's).
 */
async function createForPut(store: OceanStore, p: Parsed, name: string, blockBytes: number): Promise<ObjectHandle> {
  try {
    return await store.create(name, { blockBytes, timeoutMs: writeTimeoutMs });
  } catch (error) {
    if (error instanceof PredicateFailedError) return handleOf(store, p, name);
    throw error;
  }
}

export function put(args: string[]): Promise<number> {
  return verb(args, 'put NAME FILE|- [--if-version N] [--block-bytes N] [--config FILE] [--identity FILE] [--json]', 2, 2, (p) => {
    const [name, file] = p.positional as [string, string];
    const ifVersion = intFlag(p, '--if-version');
    const blockBytes = intFlag(p, '--block-bytes', 1);
    ownerFlag(p);
    const { source, sizeBytes } = sourceOf(file);
    return withStore(p, async (store) => {
      const progress = new Progress('put', sizeBytes, flag(p, '--quiet') !== undefined || flag(p, '--json') !== undefined);
      let handle = handleOf(store, p, name);
      const exists = await handle.stat({ timeoutMs: readTimeoutMs }).then(
        () => true,
        (e: unknown) => (e instanceof OceanStoreError && e.name === 'NotFoundError' ? false : Promise.reject(e)),
      );
      if (!exists) {
        if (ifVersion !== undefined) throw new PredicateFailedError(`${name} does not exist`, -1);
        checkOwnCreate(store, p, name);
        handle = await createForPut(store, p, name, blockBytes ?? blockBytesFor(sizeBytes));
      }
      const result = await handle.write(counted(source, progress), { ifVersion, timeoutMs: writeTimeoutMs });
      progress.done();
      const certified = await certifiedOf(result);
      print(p, { name, aguid: handle.aguidHex, ...result, certified, ...usage() }, `${name}: version ${result.version} (${result.vguid})`);
      return 0;
    });
  });
}

export function append(args: string[]): Promise<number> {
  return verb(args, 'append NAME FILE|- [--if-version N] [--config FILE] [--identity FILE] [--json]', 2, 2, (p) => {
    const [name, file] = p.positional as [string, string];
    const ifVersion = intFlag(p, '--if-version');
    ownerFlag(p);
    const { source, sizeBytes } = sourceOf(file);
    return withStore(p, async (store) => {
      const progress = new Progress('append', sizeBytes, flag(p, '--json') !== undefined);
      const result = await handleOf(store, p, name).append(counted(source, progress), { ifVersion, timeoutMs: writeTimeoutMs }).catch((error: unknown) => {
        // The SDK names the object by AGUID; the user gave a name.
        if (error instanceof NotFoundError) throw new NotFoundError(`object '${name}' does not exist; create it with \`oceanstore put ${name} FILE\``);
        throw error;
      });
      progress.done();
      const certified = await certifiedOf(result);
      print(p, { name, ...result, certified }, `${name}: version ${result.version} (${result.vguid})`);
      return 0;
    });
  });
}

export function get(args: string[]): Promise<number> {
  return verb(args, 'get NAME [--version N] [-o FILE] [--owner KEY] [--config FILE] [--identity FILE] [--json]', 1, 1, (p) => {
    const version = intFlag(p, '--version');
    const out = flag(p, '-o');
    ownerFlag(p);
    checkOutput(out);
    const toStdout = out === undefined || out === '-';
    return withStore(p, async (store) => {
      const handle = handleOf(store, p, p.positional[0]!);
      const stat = await handle.stat({ version, timeoutMs: readTimeoutMs });
      const progress = new Progress('get', stat.sizeBytes, toStdout);
      const chunks = (async function* () {
        for await (const chunk of handle.readStream({ version: stat.version, timeoutMs: readTimeoutMs })) {
          progress.add(chunk.length);
          yield chunk;
        }
      })();
      if (toStdout) await pipeline(chunks, process.stdout, { end: false });
      else await writeOutput(out!, chunks);
      progress.done();
      if (flag(p, '--json') !== undefined) {
        const summary = JSON.stringify({ name: p.positional[0], version: stat.version, sizeBytes: stat.sizeBytes, ...usage() });
        // With the bytes on stdout, the summary goes to stderr.
        if (toStdout) console.error(summary);
        else console.log(summary);
      }
      return 0;
    });
  }, { dataOnStdout: (a) => !a.includes('-o') || a[a.indexOf('-o') + 1] === '-' });
}

/** This process's peak memory and CPU so far, for `--json` (scripts and the benchmark read them). */
function usage(): { maxRssBytes: number; cpuUserMs: number; cpuSystemMs: number } {
  const u = process.resourceUsage();
  return { maxRssBytes: u.maxRSS * 1024, cpuUserMs: Math.round(u.userCPUTime / 1000), cpuSystemMs: Math.round(u.systemCPUTime / 1000) };
}

export function stat(args: string[]): Promise<number> {
  return verb(args, 'stat NAME [--version N] [--owner KEY] [--json]', 1, 1, (p) => {
    const version = intFlag(p, '--version');
    ownerFlag(p);
    return withStore(p, async (store) => {
      const handle = handleOf(store, p, p.positional[0]!);
      const s = await handle.stat({ version, timeoutMs: readTimeoutMs });
      const text = [
        `aguid      ${handle.aguidHex}`,
        `version    ${s.version}`,
        `vguid      ${s.vguid}`,
        `size       ${s.sizeBytes} bytes`,
        `block size ${s.blockBytes} bytes`,
        `committed  ${new Date(s.timestampMs).toISOString()}`,
        `owner      ${s.owner}`,
        `writers    ${s.writers.length === 0 ? '(owner only)' : s.writers.join(', ')}`,
      ].join('\n');
      print(p, { aguid: handle.aguidHex, ...s }, text);
      return 0;
    });
  });
}

export function log(args: string[]): Promise<number> {
  return verb(args, 'log NAME [--owner KEY] [--json]', 1, 1, (p) => {
    ownerFlag(p);
    return withStore(p, async (store) => {
      const versions = await handleOf(store, p, p.positional[0]!).versions({ timeoutMs: readTimeoutMs });
      const text = versions.map((v) => `${String(v.version).padStart(6)}  ${new Date(v.timestampMs).toISOString()}  ${String(v.sizeBytes).padStart(12)}  ${v.vguid}`);
      print(p, versions, ['version  committed                 size (bytes)  vguid', ...text].join('\n'));
      return 0;
    });
  });
}

/**
 * `acl NAME` shows the owner and writers; `acl NAME --writer KEY...` sets the writers;
 * `acl NAME --owner-only` removes them all. `acl NAME` alone used to set an empty list, revoking
 * every writer of a user who only wanted to look (session-22 review, finding 5).
 */
export function acl(args: string[]): Promise<number> {
  return verb(args, 'acl NAME [--writer KEY... | --owner-only] [--if-version N] [--owner KEY] [--json]', 1, 1, (p) => {
    const writers = (p.flags.get('--writer') ?? []).map((k) => {
      if (!/^[0-9a-f]{64}$/i.test(k)) throw new UsageError(`--writer takes a 64-hex-digit ed25519 public key, got '${k}'`);
      return fromHex(k.toLowerCase());
    });
    const ownerOnly = flag(p, '--owner-only') !== undefined;
    if (ownerOnly && writers.length > 0) throw new UsageError('give --writer KEY... or --owner-only, not both');
    const ifVersion = intFlag(p, '--if-version');
    const change = ownerOnly || writers.length > 0;
    if (!change && ifVersion !== undefined) throw new UsageError('--if-version applies to a change: give --writer KEY... or --owner-only');
    ownerFlag(p);
    const name = p.positional[0]!;
    return withStore(p, async (store) => {
      const handle = handleOf(store, p, name);
      if (!change) return showAcl(p, name, await handle.stat({ timeoutMs: readTimeoutMs }));
      const result = await handle.setAcl({ writers }, { ifVersion });
      // As put and append: reported once certified (its JSON printed the pending promise as {}).
      const certified = await certifiedOf(result);
      print(p, { name, ...result, certified }, `${name}: version ${result.version}, writers: ${writers.length}`);
      return 0;
    });
  });
}

function showAcl(p: Parsed, name: string, s: { version: number; owner: string; writers: readonly string[] }): number {
  const text = [`owner    ${s.owner}`, `writers  ${s.writers.length === 0 ? '(owner only)' : s.writers.join('\n         ')}`].join('\n');
  print(p, { name, version: s.version, owner: s.owner, writers: s.writers }, text);
  return 0;
}

export function watch(args: string[]): Promise<number> {
  return verb(args, 'watch NAME [--owner KEY] [--json] [--interval-ms N]', 1, 1, (p) => {
    const intervalMs = intFlag(p, '--interval-ms', 1);
    ownerFlag(p);
    return withStore(p, async (store) => {
      // Ctrl-C (or kill, or the terminal closing) ends the watch: exit 0.
      const controller = new AbortController();
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, () => controller.abort());
      const handle = handleOf(store, p, p.positional[0]!);
      for await (const v of handle.watch({ signal: controller.signal, intervalMs })) {
        print(p, v, `version ${v.version}  ${new Date(v.timestampMs).toISOString()}  ${v.sizeBytes} bytes  ${v.vguid}`);
      }
      return 0;
    });
  });
}

/**
 * `whoami`: this identity's public key, what an owner passes to `acl NAME --writer KEY` (it was
 * to be found only in the identity file, beside the secret key, or in stat's owner line).
 */
export function whoami(args: string[]): Promise<number> {
  return verb(args, 'whoami [--identity FILE] [--json]', 0, 0, async (p) => {
    const { identity, path } = identityOf(p);
    const publicKey = toHex(identity.publicKey);
    print(p, { publicKey, identityFile: path }, publicKey);
    return 0;
  });
}
