/**
 * `npm run bench -- <topic> [args]`: runs bench/<topic>.ts, which prints a table (with a baseline
 * measured in the same run and the machine it ran on) and writes bench/results/<topic>.json.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const topics = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'main.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [topic, ...rest] = process.argv.slice(2);
if (!topic || topic === '--help' || !existsSync(join(here, `${topic}.ts`))) {
  console.log(`usage: npm run bench -- <topic> [args]\ntopics: ${topics.join(', ')}`);
  process.exit(topic && topic !== '--help' ? 2 : 0);
}
const mod = (await import(join(here, `${topic}.ts`))) as { run(args: string[]): Promise<void> };
await mod.run(rest);
