/**
 * A node checks its store's filesystem before lmdb creates an environment there: on a full disk
 * that ended the process with SIGBUS and no log line (session-22 durability review, on a tmpfs).
 * A full filesystem cannot be made here without mounting one, so the check runs against this
 * machine's with a bound it cannot meet and one it always meets.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { checkFreeSpace } from '../../runtime/node-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'oceanstore-free-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('checkFreeSpace', () => {
  it('names the folder and both figures when the filesystem has less free than asked, and passes otherwise', () => {
    expect(() => checkFreeSpace(dir, Number.MAX_SAFE_INTEGER)).toThrow(ConfigError);
    expect(() => checkFreeSpace(dir, Number.MAX_SAFE_INTEGER)).toThrow(new RegExp(`^${dir}: [0-9.]+ MiB free on its filesystem; a node needs at least [0-9.]+ MiB to start`));
    expect(() => checkFreeSpace(dir, 0)).not.toThrow();
  });
});
