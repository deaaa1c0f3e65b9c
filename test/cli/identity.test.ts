/**
 * client/identity.ts loadOrCreateIdentity: an identity file that cannot be used, or created, is a
 * one-line ConfigError naming it (a file holding `null` threw a TypeError; a path whose parent is a
 * file threw EEXIST from mkdir with a stack trace).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.ts';
import { loadOrCreateIdentity } from '../../client/identity.ts';

const dir = mkdtempSync(join(tmpdir(), 'oceanstore-identity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('identity files', () => {
  it('JSON that is not an object (null, a number, a list) is a ConfigError naming the file', () => {
    for (const text of ['null', '42', '[]', '{"secretKey": 7}']) {
      const file = join(dir, 'bad.json');
      writeFileSync(file, text);
      expect(() => loadOrCreateIdentity(file)).toThrow(ConfigError);
      expect(() => loadOrCreateIdentity(file)).toThrow(/identity file .*bad\.json has no 64-hex-digit secretKey/);
    }
  });

  it('a path below a file cannot be created: a ConfigError saying what to do', () => {
    writeFileSync(join(dir, 'plain'), 'x');
    expect(() => loadOrCreateIdentity(join(dir, 'plain', 'identity.json'))).toThrow(ConfigError);
    expect(() => loadOrCreateIdentity(join(dir, 'plain', 'sub', 'identity.json'))).toThrow(/cannot create identity file .*; choose another path with --identity FILE/);
  });

  it('a fresh path is created and read back', () => {
    const file = join(dir, 'new', 'identity.json');
    const made = loadOrCreateIdentity(file);
    expect(loadOrCreateIdentity(file).publicKey).toEqual(made.publicKey);
  });
});
