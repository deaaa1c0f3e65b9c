/**
 * `oceanstore node --config FILE --node NAME`: runs one node of a cluster in this process until
 * SIGTERM/SIGINT (what `cluster up` spawns, and what each host runs in a multi-host deployment).
 * Also runnable directly (`node --import tsx cli/node.ts ...`), which is how the launcher spawns it.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OceanStoreError } from '../core/errors.ts';
import { runNodeMain } from '../runtime/node-process.ts';
import { parseArgs, stringFlag } from './cluster-args.ts';

const usage = 'usage: oceanstore node --config FILE --node NAME';

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log(usage);
    return 0;
  }
  try {
    const parsed = parseArgs(args);
    await runNodeMain(stringFlag(parsed, 'config'), stringFlag(parsed, 'node'));
    // Keep running: the signal handlers installed by runNodeMain end the process.
    await new Promise<never>(() => undefined);
    return 0;
  } catch (error) {
    if (error instanceof OceanStoreError) {
      console.error(`oceanstore node: ${error.message}\n${usage}`);
      return 2;
    }
    throw error;
  }
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) process.exitCode = await run(process.argv.slice(2));
