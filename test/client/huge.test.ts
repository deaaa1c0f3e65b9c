// Issue 7's 1 GiB must-show against a real cluster of processes: `put NAME -` streams 1 GiB from
// stdin and `get NAME` streams it back to stdout, each a separate CLI process whose own peak RSS it
// reports (--json); both stay under 300 MB, and the bytes back are identical (compared by streaming
// SHA-256 on both sides: the test never holds the object in memory, nor writes it to disk).
// Slow (minutes on a loaded machine): runs only with OCEANSTORE_HUGE_TESTS=1 (`npm run test:huge`).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateIdentity } from '../../client/identity.ts';
import { type ClusterConfig } from '../../runtime/cluster-config.ts';
import { initAndUpWithCli, removeScratchCluster, startScratchCluster } from '../runtime/cluster-fixture.ts';

const sizeMiB = Number(process.env.OCEANSTORE_HUGE_MIB ?? 1024);
const rssBytesMax = 300 * 1000 * 1000;
let config: ClusterConfig;
let dir: string;

interface Child {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; `feed` writes its stdin, `drain` consumes its stdout. Bounded by `timeoutMs`. */
function cli(args: string[], options: { feed?: (stdin: NodeJS.WritableStream) => Promise<void>; drain?: (chunk: Buffer) => void; timeoutMs?: number } = {}): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', ...args, '--config', config.file], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.stdout.on('data', (chunk: Buffer) => (options.drain ? options.drain(chunk) : (stdout += chunk.toString())));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    if (options.feed) options.feed(child.stdin).catch(reject);
    else child.stdin.end();
  });
}

/** Writes `sizeMiB` MiB of fresh random bytes to `stdin`, honouring backpressure; returns their SHA-256. */
async function feedRandom(stdin: NodeJS.WritableStream, hash: ReturnType<typeof createHash>): Promise<void> {
  for (let i = 0; i < sizeMiB; i++) {
    const chunk = randomBytes(1 << 20);
    hash.update(chunk);
    if (!stdin.write(chunk)) await new Promise((resolve) => stdin.once('drain', resolve));
  }
  stdin.end();
}

beforeAll(async () => {
  if (!process.env.OCEANSTORE_HUGE_TESTS) return;
  const cluster = await startScratchCluster('cluster-configs/local.json', async (c) => {
    config = c.config;
    dir = c.dir;
    await initAndUpWithCli((args) => cli(args), 90_000);
  });
  ({ config, dir } = cluster);
}, 300_000);

afterAll(async () => {
  if (config) await removeScratchCluster({ config, dir });
}, 60_000);

describe.skipIf(!process.env.OCEANSTORE_HUGE_TESTS)(`a ${sizeMiB} MiB object through the CLI (streamed, client RSS under 300 MB)`, () => {
  it('put from stdin and get to stdout round-trip byte-identically, each client process under 300 MB RSS', async () => {
    const identity = join(dir, 'identity.json');
    loadOrCreateIdentity(identity); // the CLI makes only ~/.oceanstore/identity.json by itself
    const sent = createHash('sha256');
    const startedMs = Date.now();
    const put = await cli(['put', 'huge', '-', '--identity', identity, '--json'], { feed: (stdin) => feedRandom(stdin, sent), timeoutMs: 3_600_000 });
    expect(put.code, put.stderr).toBe(0);
    const putMs = Date.now() - startedMs;
    const putUsage = JSON.parse(put.stdout.trim().split('\n').at(-1)!) as { maxRssBytes: number; version: number };

    const received = createHash('sha256');
    let receivedBytes = 0;
    const getStartedMs = Date.now();
    const get = await cli(['get', 'huge', '--identity', identity, '--json'], {
      drain: (chunk) => {
        received.update(chunk);
        receivedBytes += chunk.length;
      },
      timeoutMs: 3_600_000,
    });
    expect(get.code, get.stderr).toBe(0);
    const getMs = Date.now() - getStartedMs;
    const getUsage = JSON.parse(get.stderr.trim().split('\n').at(-1)!) as { maxRssBytes: number; version: number; sizeBytes: number };

    console.log(
      `${sizeMiB} MiB: put ${putMs} ms (${((sizeMiB * 1000) / putMs).toFixed(1)} MiB/s, peak RSS ${(putUsage.maxRssBytes / 2 ** 20).toFixed(0)} MiB), ` +
        `get ${getMs} ms (${((sizeMiB * 1000) / getMs).toFixed(1)} MiB/s, peak RSS ${(getUsage.maxRssBytes / 2 ** 20).toFixed(0)} MiB)`,
    );
    expect(receivedBytes).toBe(sizeMiB * 2 ** 20);
    expect(getUsage.sizeBytes).toBe(sizeMiB * 2 ** 20);
    expect(received.digest('hex')).toBe(sent.digest('hex'));
    expect(putUsage.maxRssBytes).toBeLessThan(rssBytesMax);
    expect(getUsage.maxRssBytes).toBeLessThan(rssBytesMax);
  }, 7_200_000);
});
