/** STYLE.md: cores are pure. Every replica/ module imports no node:* and uses no clock, timer, randomness, process or async. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '../../replica');
const forbidden: [RegExp, string][] = [
  [/from ['"]node:/, 'node:* import'],
  [/\bDate\b/, 'Date'],
  [/Math\.random/, 'Math.random'],
  [/\bset(Timeout|Interval|Immediate)\b/, 'timer'],
  [/\bprocess\./, 'process'],
  [/\basync\b|\bawait\b/, 'async'],
  [/from ['"](ws|lmdb|pino)['"]/, 'I/O package'],
];

describe('replica/ is a pure core', () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  it('has modules to check', () => expect(files.length).toBeGreaterThan(5));
  for (const file of files) {
    it(`${file} touches no world`, () => {
      const code = readFileSync(join(dir, file), 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
      for (const [pattern, what] of forbidden) expect(pattern.test(code), `${file} uses ${what}`).toBe(false);
    });
  }
});
