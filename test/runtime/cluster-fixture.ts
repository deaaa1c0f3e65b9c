/** Process-test helpers: a scratch cluster config in a temp dir, and a node's parsed log. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scratchClusterConfig } from '../../runtime/scratch-cluster.ts';

export async function tempClusterConfig(shipped: string): Promise<{ file: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'oceanstore-cluster-'));
  return { file: await scratchClusterConfig(shipped, dir), dir };
}

/** Parsed JSON lines of a node's pino log. */
export function logLines(file: string): Record<string, unknown>[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  } catch {
    return [];
  }
}
