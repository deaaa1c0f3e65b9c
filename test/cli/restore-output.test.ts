/**
 * `oceanstore restore` output errors (session-20 archive review, finding 7 and 8b, 8f): a failed
 * mkdir of DIR/<aguid> read as archive loss and the manifest listed versions whose write had
 * failed; a failed write left its temporary file; with --json a missing config printed no JSON.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { RestoredVersion, VersionSink } from '../../archive/shell/restore.ts';
import { toHex } from '../../core/bytes.ts';
import { parseRestoreArgs, run, sinkOf, writeAtomic } from '../../cli/restore.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'restore-output-'));
  dirs.push(dir);
  return dir;
}

function restored(aguidByte: number, version: number): RestoredVersion {
  const aguid = new Uint8Array(32).fill(aguidByte);
  return {
    ref: { aguid, version, vguid: new Uint8Array(32).fill(version), rootFragmentRoot: new Uint8Array(0), certificate: null },
    root: { timestampMs: 1_000 },
    bytes: new Uint8Array([1, 2, 3, version]),
  } as unknown as RestoredVersion;
}

/** Hands one version to the sink as the restore does: open, its bytes, commit; discard on failure. */
async function deliver(sink: VersionSink, r: RestoredVersion): Promise<void> {
  const writer = await sink.open(r.ref, r.root);
  try {
    await writer.write(r.bytes);
    await writer.commit();
  } catch (error) {
    await writer.discard();
    throw error;
  }
}

describe('restore progress', () => {
  it('draws a bar on a terminal for one large version as its leaves arrive, none with --quiet', async () => {
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (writes.push(String(chunk)), true));
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    try {
      const r = restored(5, 1);
      for (const quiet of [false, true]) {
        writes.length = 0;
        const { sink } = sinkOf(parseRestoreArgs(['--verify-only', ...(quiet ? ['--quiet'] : [])]));
        const leaf = new Uint8Array(2 ** 20);
        const writer = await sink.open(r.ref, { ...r.root, sizeBytes: 8 * 2 ** 20 } as RestoredVersion['root']);
        for (let i = 0; i < 8; i++) {
          await writer.write(leaf);
          await new Promise((resolve) => setTimeout(resolve, 110)); // past the bar's redraw interval
        }
        await writer.commit();
        if (quiet) expect(writes).toEqual([]);
        else {
          expect(writes.some((w) => w.includes('restore version 1') && w.includes('50%'))).toBe(true);
          expect(writes.some((w) => w.includes('100%'))).toBe(true);
          expect(writes[writes.length - 1]).toBe('\n');
        }
      }
    } finally {
      spy.mockRestore();
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
  });
});

describe('restore output errors', () => {
  it('--all --out: a file in the way of DIR/<aguid> is an output error, and the manifest lists only what was written', async () => {
    const out = scratch();
    writeFileSync(join(out, toHex(new Uint8Array(32).fill(1))), 'in the way');
    const { sink, manifest } = sinkOf(parseRestoreArgs(['--all', '--out', out]));
    // The folder is made when the version starts streaming, before it has verified: the message says so.
    await expect(deliver(sink, restored(1, 0))).rejects.toThrow(/^writing the output failed \(not the archive's fault\)/);
    expect(manifest).toEqual([]);
    await deliver(sink, restored(2, 3));
    expect(manifest).toEqual([expect.objectContaining({ aguid: toHex(new Uint8Array(32).fill(2)), version: 3 })]);
    expect(existsSync(join(out, toHex(new Uint8Array(32).fill(2)), '3'))).toBe(true);
  });

  it('-o: a failed write is not in the manifest', async () => {
    const dir = scratch();
    const target = join(dir, 'taken');
    mkdirSync(target); // a folder where the file should go: the rename fails
    const { sink, manifest } = sinkOf(parseRestoreArgs(['x', '-o', target]));
    await expect(deliver(sink, restored(3, 0))).rejects.toThrow(/^restored and verified, but writing the output failed/);
    expect(manifest).toEqual([]);
    expect(readdirSync(dir)).toEqual(['taken']);
  });

  it('a failed rename leaves no temporary file behind', () => {
    const dir = scratch();
    const target = join(dir, 'taken');
    mkdirSync(target);
    expect(() => writeAtomic(target, new Uint8Array([1]))).toThrow(/writing the output failed/);
    expect(readdirSync(dir)).toEqual(['taken']);
  });

  it('two restores to one path in processes with one pid (containers) keep their own temporaries (session-21 second review)', async () => {
    const dir = scratch();
    const target = join(dir, 'out.bin');
    const a = sinkOf(parseRestoreArgs(['x', '-o', target]));
    const b = sinkOf(parseRestoreArgs(['x', '-o', target]));
    const r = restored(4, 0);
    const wa = await a.sink.open(r.ref, r.root);
    await wa.write(new Uint8Array(4096).fill(0xaa));
    const wb = await b.sink.open(r.ref, r.root); // before: reopened A's temporary, truncating it
    await wa.write(new Uint8Array(4096).fill(0xbb));
    await wb.discard(); // before: removed A's temporary, and A's commit failed
    await wa.commit();
    const bytes = readFileSync(target);
    expect([bytes.length, bytes[0], bytes[4096]]).toEqual([8192, 0xaa, 0xbb]);
    expect(readdirSync(dir)).toEqual(['out.bin']);
  });

  it('--all: a version that fails leaves no empty DIR/<aguid> behind', async () => {
    const out = scratch();
    const { sink } = sinkOf(parseRestoreArgs(['--all', '--out', out]));
    const r = restored(5, 0);
    const writer = await sink.open(r.ref, r.root);
    await writer.write(new Uint8Array([1]));
    await writer.discard();
    expect(readdirSync(out)).toEqual([]);
  });

  it('--json with a config that cannot be read prints a JSON error and exits 1', async () => {
    const printed: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: unknown) => void printed.push(String(line)));
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const code = await run(['--verify-only', '--json', '--config', join(scratch(), 'missing.json')]);
      expect(code).toBe(1);
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
    expect(printed).toHaveLength(1);
    expect(JSON.parse(printed[0]!)).toEqual({ error: expect.objectContaining({ name: 'ConfigError', exitCode: 1 }) });
  });
});
