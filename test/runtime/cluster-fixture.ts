/** Process-test helpers: a scratch cluster config in a temp dir, and a node's parsed log. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

/** `overrides` are merged into the top level of the copied config (e.g. `ring` timeouts). */
export async function tempClusterConfig(shipped: string, overrides: Record<string, unknown> = {}): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-cluster-'));
  const file = await scratchClusterConfig(shipped, dir);
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...overrides }, null, 2));
  return { file, dir };
}

/** Parsed JSON lines of a node's pino log. */
export function logLines(file: string): Record<string, unknown>[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}
