// STYLE.md "Layout": protocol cores import no node:* module and use no async, Date, Math.random,
// timers or process — randomness, clocks, crypto and storage are injected, so the simulator and the
// runtime drive the same code. This scans the core folders' sources and fails on any violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const coreFolders = ['core', 'ring', 'tapestry', 'replica', 'archive'];
/** Shells living beside their cores: simulation drivers, CLIs and the wasm loader may touch the world. */
const shellPattern = /(^|\/)(sim-scenario|.*-shell|.*-cli|build-wasm)\.ts$|\/(sim|shell)\//;

const forbidden: [RegExp, string][] = [
  [/from ['"]node:/, 'imports a node:* module'],
  [/\bDate\.now\(|new Date\(/, 'reads the clock'],
  [/\bMath\.random\(/, 'uses Math.random'],
  [/\bset(Timeout|Interval|Immediate)\(/, 'uses a timer'],
  [/\bprocess\./, 'touches process'],
  [/\basync\s+(function|\(|[a-zA-Z_]+\s*\()/, 'is async'],
];

function sources(dir: string): string[] {
  let out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('core purity', () => {
  it('no core file reaches for the world', () => {
    const violations: string[] = [];
    let scanned = 0;
    for (const folder of coreFolders) {
      let files: string[] = [];
      try {
        files = sources(join(root, folder));
      } catch {
        continue; // folder not built yet
      }
      for (const file of files) {
        const rel = relative(root, file);
        if (shellPattern.test(rel)) continue;
        scanned++;
        const text = readFileSync(file, 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
        for (const [pattern, what] of forbidden) if (pattern.test(text)) violations.push(`${rel} ${what}`);
      }
    }
    expect(scanned).toBeGreaterThan(5);
    expect(violations).toEqual([]);
  });
});
