/**
 * Builds and drives isal-harness.c (Intel ISA-L through Debian's libisal-dev) for the
 * cross-implementation test and the benchmark baseline. Everything lives in a temporary directory
 * removed by dispose(). If the header, the library or gcc is missing, `isalUnavailableReason()`
 * says which, so callers skip visibly instead of failing (CI installs libisal-dev).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = join(dirname(fileURLToPath(import.meta.url)), 'isal-harness.c');
const header = '/usr/include/isa-l/erasure_code.h';

/** Null when the harness can be built; else why not (and how to fix it). */
export function isalUnavailableReason(): string | null {
  if (!existsSync(header)) return `ISA-L header ${header} missing: apt-get install -y libisal-dev`;
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'gcc not found: apt-get install -y gcc';
  }
  return null;
}

export interface IsalBench {
  encodeMBps: number;
  decodeMBps: number;
}

export class IsalHarness {
  private constructor(
    private readonly dir: string,
    private readonly binary: string,
  ) {}

  static build(): IsalHarness {
    const dir = mkdtempSync(join(tmpdir(), 'oceanstore-isal-'));
    const binary = join(dir, 'isal-harness');
    try {
      execFileSync('gcc', ['-O2', '-o', binary, source, '-lisal'], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`building the ISA-L harness failed: ${(error as { stderr?: Buffer }).stderr?.toString() ?? error}`);
    }
    return new IsalHarness(dir, binary);
  }

  /** ISA-L's m parity shards for k data shards of equal length. */
  encode(k: number, m: number, data: readonly Uint8Array[]): Uint8Array[] {
    const shardBytes = data[0]?.length ?? 0;
    const input = join(this.dir, 'in');
    const output = join(this.dir, 'out');
    writeFileSync(input, Buffer.concat(data.map((d) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))));
    execFileSync(this.binary, ['encode', `${k}`, `${m}`, `${shardBytes}`, input, output]);
    return split(readFileSync(output), m, shardBytes);
  }

  /** ISA-L's reconstruction of the k data shards from k fragments (any indices). */
  decode(k: number, m: number, fragments: readonly { index: number; bytes: Uint8Array }[]): Uint8Array[] {
    const shardBytes = fragments[0]?.bytes.length ?? 0;
    const input = join(this.dir, 'in');
    const output = join(this.dir, 'out');
    writeFileSync(input, Buffer.concat(fragments.map((f) => Buffer.from(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength))));
    const indices = fragments.map((f) => f.index).join(',');
    execFileSync(this.binary, ['decode', `${k}`, `${m}`, `${shardBytes}`, input, output, indices]);
    return split(readFileSync(output), k, shardBytes);
  }

  /** Best-of-rounds encode/decode MB/s of block bytes over about `millis` each, one core. */
  bench(k: number, m: number, blockBytes: number, millis: number, path: 'best' | 'sse'): IsalBench {
    const out = execFileSync(this.binary, ['bench', `${k}`, `${m}`, `${blockBytes}`, `${millis}`, path]).toString();
    return JSON.parse(out) as IsalBench;
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function split(bytes: Buffer, count: number, shardBytes: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => Uint8Array.from(bytes.subarray(i * shardBytes, (i + 1) * shardBytes)));
}
