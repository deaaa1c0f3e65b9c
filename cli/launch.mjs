#!/usr/bin/env node
/**
 * `node cli/launch.mjs <verb> ...`: the CLI without a TypeScript loader whenever it can.
 *
 * The object verbs (put, get, append, log, stat, acl, watch, whoami) run from the esbuild bundle that
 * cli/verb-bundle.ts keeps under node_modules/.cache/oceanstore. Under tsx, even a bundled verb
 * paid ~0.3 s of CPU per call: tsx registers its hooks in a worker thread and every import (the
 * bundle's packages too) is resolved through it. So when that bundle exists and none of its
 * inputs changed, this file imports it directly. Anything else (other verbs, a stale or missing
 * bundle, OCEANSTORE_NO_BUNDLE=1) goes through cli/main.ts under tsx, which also (re)builds the
 * bundle for next time. Plain JavaScript on purpose: it must start without a loader.
 *
 * Kept in step with cli/verb-bundle.ts (bundle path and first-line inputs record) and cli/main.ts
 * (which verbs are object verbs, error printing and exit codes).
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const objectVerbs = new Set(['put', 'get', 'append', 'log', 'stat', 'acl', 'watch', 'whoami']);
const inputsMarker = '// oceanstore-bundle-inputs ';

/** The object verbs' bundle if it is there and fresh (same check as cli/verb-bundle.ts), else null. */
function freshObjectBundle() {
  const bundle = resolve(repoRoot, 'node_modules/.cache/oceanstore/cli-cli-object-ts.mjs');
  try {
    const text = readFileSync(bundle, 'utf8');
    const firstLine = text.slice(0, text.indexOf('\n'));
    if (!firstLine.startsWith(inputsMarker)) return null;
    const { files } = JSON.parse(firstLine.slice(inputsMarker.length));
    for (const [path, sizeBytes, mtimeMs] of files) {
      const s = statSync(resolve(repoRoot, path));
      if (s.size !== sizeBytes || s.mtimeMs !== mtimeMs) return null;
    }
    return bundle;
  } catch {
    return null;
  }
}

/** By class name: the bundle has its own copy of the error classes. */
function isOceanStoreError(error) {
  for (let p = error instanceof Error ? Object.getPrototypeOf(error) : null; p; p = Object.getPrototypeOf(p)) {
    if (p.constructor?.name === 'OceanStoreError') return true;
  }
  return false;
}

// msgpackr's native add-on only speeds up decoding long strings, which our messages do not carry;
// loading it (node-gyp-build's search included) took ~30 ms of every call's start.
process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED ??= 'true';

const [verb, ...args] = process.argv.slice(2);
const bundle = objectVerbs.has(verb) && !process.env.OCEANSTORE_NO_BUNDLE && !args.includes('--help') ? freshObjectBundle() : null;
const entry = bundle ? (await import(pathToFileURL(bundle).href))[verb] : undefined;
if (typeof entry === 'function') {
  try {
    process.exitCode = await entry(args);
  } catch (error) {
    if (!isOceanStoreError(error)) throw error;
    console.error(`oceanstore: ${error.name}: ${error.message}`);
    process.exitCode = error.name === 'PredicateFailedError' ? 3 : 1;
  }
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./main.ts');
}
