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
    const parsed = parseArgs(args, [], ['config', 'node']);
    await runNodeMain(stringFlag(parsed, 'config'), stringFlag(parsed, 'node'));
  } catch (error) {
    // A failed start must end the process: the store, transport or admin port it already opened
    // kept it alive, printing its error and never exiting, so a launcher could only time out.
    const usageFault = error instanceof OceanStoreError && error.name === 'InvalidArgumentError';
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    console.error(`oceanstore node: start failed: ${message}${usageFault ? `\n${usage}` : ''}`);
    process.exit(usageFault ? 2 : 1);
  }
  // Keep running: the signal handlers installed by runNodeMain end the process.
  await new Promise<never>(() => undefined);
  return 0;
}

const invokedDirectly = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) process.exitCode = await run(process.argv.slice(2));
