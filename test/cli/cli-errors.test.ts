/**
 * The CLI as a user meets it, as processes (`node bin/oceanstore.js ...`), with no cluster running:
 * usage errors are exit 2 at once, before connecting (they waited ~60 s for ring servers first);
 * file-system errors are one line naming the path (they were stack traces); a closed stdout pipe
 * ends quietly; with --json an error is also a JSON object on stdout. Loopback only, nothing is started.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let dir: string;
let config: string;
let identity: string;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI (bounded: 30 s, killed after); `env` overrides the environment (undefined removes a variable). */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const startedMs = Date.now();
  const environment: Record<string, string | undefined> = { ...process.env, OCEANSTORE_IDENTITY: identity, ...env };
  for (const [key, value] of Object.entries(environment)) if (value === undefined) delete environment[key];
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/oceanstore.js', ...args], { timeout: 30_000, env: environment }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: unknown }).code as number | null) : 0;
      resolve({ code: typeof code === 'number' ? code : null, stdout, stderr, ms: Date.now() - startedMs });
    });
  });
}

/** One line of error (plus the usage text), no stack trace. */
function expectOneLine(r: Run, pattern: RegExp): void {
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'oceanstore-cli-errors-'));
  identity = join(dir, 'identity.json');
  // A config whose nodes nobody listens on (ports 1-14 and 101-114 on loopback): never reached.
  const nodes = ['ring-0', 'ring-1', 'ring-2', 'ring-3', 'archive-0'].map((name, i) => ({
    name, role: name.startsWith('ring') ? 'ring' : 'archive', host: '127.0.0.1', port: i + 1, adminPort: i + 101,
  }));
  config = join(dir, 'cluster.json');
  writeFileSync(config, JSON.stringify({ name: 'errors', dataDir: join(dir, 'data'), f: 1, erasure: { k: 1, m: 0 }, nodes }));
  mkdirSync(join(dir, 'folder'));
  writeFileSync(join(dir, 'file.txt'), 'hello\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('object verbs: usage checked before connecting', () => {
  it('put of a missing file, a folder; get -o into a missing folder; bad flags: exit 2 at once', async () => {
    const c = ['--config', config];
    const [missing, folder, version, owner, shortOwner, outDir, extra, blockBytes] = await Promise.all([
      cli(['put', 'notes', join(dir, 'nonexistent.txt'), ...c]),
      cli(['put', 'notes', join(dir, 'folder'), ...c]),
      cli(['get', 'notes', '--version', 'abc', ...c]),
      cli(['get', 'notes', '--owner', 'zz', ...c]),
      cli(['stat', 'notes', '--owner', 'abcd', ...c]),
      cli(['get', 'notes', '-o', join(dir, 'no-such-dir', 'x'), ...c]),
      cli(['put', 'extra', join(dir, 'file.txt'), join(dir, 'file.txt'), ...c]),
      cli(['put', 'bb', join(dir, 'file.txt'), '--block-bytes', '0', ...c]),
    ]);
    expect(missing.code).toBe(2);
    expectOneLine(missing, /input file .*nonexistent\.txt does not exist/);
    expect(folder.code).toBe(2);
    expectOneLine(folder, /folder.* is a folder; give a file/);
    expect(version.code).toBe(2);
    expectOneLine(version, /--version takes a non-negative integer, got 'abc'/);
    expect(owner.code).toBe(2);
    expectOneLine(owner, /--owner takes the owner's 64-hex-digit/);
    expect(shortOwner.code).toBe(2);
    expect(outDir.code).toBe(2);
    expectOneLine(outDir, /-o .*no-such-dir\/x: .*does not exist/);
    expect(extra.code).toBe(2);
    expectOneLine(extra, /unexpected argument/);
    expect(blockBytes.code).toBe(2);
    expectOneLine(blockBytes, /--block-bytes takes a positive integer/);
    // None waited for the (absent) ring servers.
    for (const r of [missing, folder, version, owner, outDir]) expect(r.ms).toBeLessThan(20_000);
  }, 90_000);

  it('with --json an error is also a JSON object on stdout', async () => {
    const json = await cli(['stat', 'notes', '--version', 'abc', '--json', '--config', config]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({ error: { name: 'UsageError', message: "--version takes a non-negative integer, got 'abc'", exitCode: 2 } });
    const [parse, missing, toStdout] = await Promise.all([
      cli(['stat', 'notes', '--bogus', '--json', '--config', config]),
      cli(['stat', '--json', '--config', config]),
      // get without -o writes the object's bytes to stdout: its error JSON goes to stderr instead.
      cli(['get', 'notes', '--bogus', '--json', '--config', config]),
    ]);
    for (const r of [parse, missing]) {
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout)).toMatchObject({ error: { name: 'UsageError', exitCode: 2 } });
    }
    expect(toStdout.code).toBe(2);
    expect(toStdout.stdout).toBe('');
    expect(toStdout.stderr).toMatch(/\{"error":\{"name":"UsageError"/);
  }, 60_000);
});

describe('cluster drill: --trials and --seed checked before anything starts', () => {
  it('a non-integer is exit 2 at once (--trials abc ran a drill of NaN trials and passed)', async () => {
    const [trials, zero, seed] = await Promise.all([
      cli(['cluster', 'drill', '--trials', 'abc', '--config', config]),
      cli(['cluster', 'drill', '--trials', '0', '--config', config]),
      cli(['cluster', 'drill', '--seed', 'xyz', '--config', config]),
    ]);
    for (const r of [trials, zero, seed]) {
      expect(r.code).toBe(2);
      expect(r.ms).toBeLessThan(20_000);
    }
    expectOneLine(trials, /--trials takes a positive integer, got 'abc'/);
    expectOneLine(seed, /--seed takes a non-negative integer, got 'xyz'/);
  }, 60_000);
});

describe('identity files', () => {
  it('a mistyped --identity or OCEANSTORE_IDENTITY is exit 2 naming it, and nothing is created', async () => {
    const typo = join(dir, 'typo', 'sub', 'idnetity.json');
    const [flagged, fromEnv] = await Promise.all([
      cli(['get', 'notes', '--identity', typo, '--config', config]),
      cli(['stat', 'notes', '--config', config], { OCEANSTORE_IDENTITY: join(dir, 'missing.json') }),
    ]);
    expect(flagged.code).toBe(2);
    expectOneLine(flagged, /identity file .*typo\/sub\/idnetity\.json \(--identity\) does not exist; check the path/);
    expect(fromEnv.code).toBe(2);
    expectOneLine(fromEnv, /identity file .*missing\.json \(OCEANSTORE_IDENTITY\) does not exist/);
    expect(existsSync(join(dir, 'typo'))).toBe(false);
    expect(existsSync(join(dir, 'missing.json'))).toBe(false);
  }, 60_000);

  it('the default ~/.oceanstore/identity.json is made on first use, and said so with its public key', async () => {
    const home = join(dir, 'home');
    mkdirSync(home);
    const first = await cli(['stat', 'notes', '--config', config], { HOME: home, OCEANSTORE_IDENTITY: undefined });
    const file = join(home, '.oceanstore', 'identity.json');
    const key = (JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string }).publicKey;
    expect(first.stderr).toContain(`made a new identity ${file}, public key ${key}`);
    const second = await cli(['stat', 'notes', '--config', config], { HOME: home, OCEANSTORE_IDENTITY: undefined });
    expect(second.stderr).not.toMatch(/made a new identity/);
  }, 60_000);
});

describe('whoami and the usage text', () => {
  it('whoami prints the public key of the identity in use (making the default one first); a missing --identity is exit 2', async () => {
    const home = join(dir, 'home-whoami');
    mkdirSync(home);
    const [made, json, missing] = [
      await cli(['whoami'], { HOME: home, OCEANSTORE_IDENTITY: undefined }),
      await cli(['whoami', '--json'], { HOME: home, OCEANSTORE_IDENTITY: undefined }),
      await cli(['whoami', '--identity', join(dir, 'nobody.json')]),
    ];
    const file = join(home, '.oceanstore', 'identity.json');
    const key = (JSON.parse(readFileSync(file, 'utf8')) as { publicKey: string }).publicKey;
    expect(made.code).toBe(0);
    expect(made.stdout).toBe(`${key}\n`);
    expect(JSON.parse(json.stdout)).toEqual({ publicKey: key, identityFile: file });
    expect(missing.code).toBe(2);
  }, 60_000);

  it('the top-level usage lists whoami and every cluster command', async () => {
    const r = await cli(['--help']);
    expect(r.stdout).toMatch(/whoami/);
    expect(r.stdout).toMatch(/refresh-keys \| replace-node \| drill/);
    expect(r.stdout).toMatch(/OCEANSTORE_IDENTITY/);
  }, 30_000);
});

describe('locate: a role no node has is a usage error', () => {
  it('locate --role bogus exits 2 naming the roles (it said "not found", exit 1)', async () => {
    const r = await cli(['locate', '--role', 'bogus', '--config', config]);
    expect(r.code).toBe(2);
    expectOneLine(r, /--role takes one of ring, archive, replica, spare, not 'bogus'/);
  }, 60_000);
});

describe('cluster and restore: one-line errors', () => {
  it('stop-node of an unknown name, unknown options, a data dir under a file, restore flags and outputs', async () => {
    const underFile = join(dir, 'under-file.json');
    writeFileSync(underFile, JSON.stringify({ ...JSON_config(), dataDir: join(dir, 'file.txt', 'data') }));
    const owner = 'ab'.repeat(32);
    const [bogus, jsn, init, timeout, out, outFile] = await Promise.all([
      cli(['cluster', 'stop-node', 'bogus', '--config', config]),
      cli(['cluster', 'status', '--jsn', '--config', config]),
      cli(['cluster', 'init', '--config', underFile]),
      cli(['restore', 'notes', '--owner', owner, '-o', join(dir, 'x'), '--timeout-ms', 'abc', '--config', config]),
      cli(['restore', 'notes', '--owner', owner, '-o', join(dir, 'no-such-dir', 'x'), '--config', config]),
      cli(['restore', '--all', '--out', join(dir, 'file.txt'), '--config', config]),
    ]);
    expect(bogus.code).toBe(1);
    expectOneLine(bogus, /no node named 'bogus'/);
    expect(jsn.code).toBe(2);
    expectOneLine(jsn, /unknown option --jsn \(known: --config, --json\)/);
    expect(init.code).toBe(1);
    expectOneLine(init, /file\.txt.* is below something that is a file, not a folder; choose another path \(ENOTDIR\)/);
    expect(timeout.code).toBe(2);
    expectOneLine(timeout, /--timeout-ms takes a positive integer/);
    expect(out.code).toBe(2);
    expectOneLine(out, /the folder .*no-such-dir does not exist/);
    expect(outFile.code).toBe(2);
    expectOneLine(outFile, /--out .*file\.txt/);
  }, 90_000);

  it('a closed stdout pipe ends quietly (EPIPE was a stack trace)', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['bin/oceanstore.js', 'cluster', 'status', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader went away (`| head -0`)
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code === 0 || code === 1).toBe(true); // quiet; 1 = status's own "nodes down"
  }, 40_000);
});

function JSON_config(): Record<string, unknown> {
  return JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
}
