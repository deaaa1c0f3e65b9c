/**
 * `npx oceanstore <verb> ...`: dispatches to cli/<module>.ts, each exporting
 * `run(args): Promise<number>` (the exit code). Exit codes: 0 ok, 1 error, 2 usage,
 * 3 predicate failed. Errors print what went wrong and what to do, never a stack trace.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enableRelaxedSimd } from '../archive/erasure/relaxed-simd-shell.ts';
import { OceanStoreError } from '../core/errors.ts';
import { fsErrorMessage, isBrokenPipe, onBrokenStdout } from './fs-errors.ts';
import { importVerb } from './verb-bundle.ts';

const here = dirname(fileURLToPath(import.meta.url));

interface Verb {
  module: string;
  summary: string;
  /** Which export to call; `run` unless stated. */
  entry?: string;
}

const verbs: Record<string, Verb> = {
  start: { module: 'cluster', entry: 'start', summary: 'init the local cluster if needed, then run it in the foreground' },
  cluster: { module: 'cluster', summary: 'init | up [--detach] | status [--json] | stop-node | start-node | down | refresh-keys | replace-node | drill' },
  node: { module: 'node', summary: 'run one node process: node --config FILE --node NAME' },
  put: { module: 'object', entry: 'put', summary: 'put NAME FILE|- [--if-version N]: write an object' },
  get: { module: 'object', entry: 'get', summary: 'get NAME [--version N] [-o FILE]: read an object' },
  append: { module: 'object', entry: 'append', summary: 'append NAME FILE|-: append to an object' },
  log: { module: 'object', entry: 'log', summary: 'log NAME: list versions' },
  stat: { module: 'object', entry: 'stat', summary: 'stat NAME: latest version, size, owner, writers' },
  acl: { module: 'object', entry: 'acl', summary: 'acl NAME [--writer KEY... | --owner-only]: show or set the writers' },
  watch: { module: 'object', entry: 'watch', summary: 'watch NAME: print new certified versions' },
  whoami: { module: 'object', entry: 'whoami', summary: 'whoami: print your public key (for acl --writer)' },
  locate: { module: '../runtime/tapestry-cli', summary: 'locate --role R | --node N | --aguid HEX [--via NODE|all]: find servers and objects through Tapestry' },
  restore: { module: 'restore', summary: 'restore NAME|AGUID [--version N] -o FILE | --all --out DIR | --verify-only' },
};

function usage(): string {
  const lines = ['usage: oceanstore <verb> [args]', '', 'verbs:'];
  for (const [name, verb] of Object.entries(verbs)) lines.push(`  ${name.padEnd(9)} ${verb.summary}`);
  lines.push('', 'Cluster config: --config FILE or OCEANSTORE_CONFIG (default cluster-configs/local.json).');
  lines.push('Identity: --identity FILE or OCEANSTORE_IDENTITY (must exist), else ~/.oceanstore/identity.json (made on first use).');
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const verb = verbs[name];
  if (!verb) {
    console.error(`oceanstore: unknown verb '${name}'\n\n${usage()}`);
    return 2;
  }
  const path = join(here, `${verb.module}.ts`);
  if (!existsSync(path)) {
    console.error(`oceanstore: '${name}' is not available in this build (cli/${verb.module}.ts is missing).`);
    return 1;
  }
  // The object verbs run on every put and get: load them bundled (cli/verb-bundle.ts).
  const mod = (verb.module === 'object' ? await importVerb(path) : await import(path)) as Record<string, (args: string[]) => Promise<number>>;
  const entry = mod[verb.entry ?? 'run'];
  if (!entry) {
    console.error(`oceanstore: '${name}' is not available in this build (cli/${verb.module}.ts has no ${verb.entry ?? 'run'}).`);
    return 1;
  }
  return entry(args);
}

/** By class name too: a bundled verb has its own copy of the error classes. */
function isOceanStoreError(error: unknown): error is Error {
  if (error instanceof OceanStoreError) return true;
  for (let p = error instanceof Error ? Object.getPrototypeOf(error) : null; p; p = Object.getPrototypeOf(p)) {
    if ((p as { constructor?: { name?: string } }).constructor?.name === 'OceanStoreError') return true;
  }
  return false;
}

// Node 20 keeps relaxed SIMD behind a V8 flag; the erasure coder is ~1.4x faster with it.
enableRelaxedSimd();

// `oceanstore cluster status | head -3`: the reader closing the pipe ends us quietly.
onBrokenStdout();

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (isOceanStoreError(error)) {
    console.error(`oceanstore: ${error.name}: ${error.message}`);
    process.exitCode = error.name === 'PredicateFailedError' ? 3 : 1;
  } else if (isBrokenPipe(error)) {
    process.exitCode = 0;
  } else if (fsErrorMessage(error) !== null) {
    console.error(`oceanstore: ${fsErrorMessage(error)}`);
    process.exitCode = 1;
  } else {
    throw error;
  }
}
