/**
 * How the launcher runs a node process. Starting 14 processes that each load ~100 TypeScript
 * files through tsx's loader costs seconds of CPU per process on a small machine; so before
 * spawning, the launcher bundles cli/node.ts and our sources into one ESM file with esbuild
 * (tsx's own compiler, ~0.3 s), leaving node_modules imports as they are, and runs that with plain
 * `node`. A ring server's certificate thread gets a bundle of its own beside it. If esbuild is
 * unavailable or the build fails, nodes run through tsx as before.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const nodeEntrySource = resolve(repoRoot, 'cli/node.ts');
/**
 * Inside node_modules so the bundle's bare imports resolve to the repository's packages. Named
 * after the checkout, so a second checkout sharing node_modules (a symlink, as when comparing two
 * commits side by side) never runs the other's sources.
 */
const checkoutTag = createHash('sha256').update(repoRoot).digest('hex').slice(0, 12);
export const nodeEntryBundle = resolve(repoRoot, `node_modules/.cache/oceanstore/oceanstore-node-${checkoutTag}.mjs`);
/** A ring server's certificate thread (runtime/certificate-thread-worker.ts), bundled beside it. */
export const checksWorkerSource = resolve(repoRoot, 'runtime/certificate-thread-worker.ts');
export const checksWorkerBundle = resolve(repoRoot, `node_modules/.cache/oceanstore/oceanstore-certificate-thread-${checkoutTag}.mjs`);

let prepared: Promise<string[]> | null = null;

/** Arguments after `node` that start a node process (bundled once per launcher process). */
export function nodeEntryArgs(): Promise<string[]> {
  prepared ??= (async () => {
    if (process.env.OCEANSTORE_NO_BUNDLE) return ['--import', 'tsx', nodeEntrySource];
    try {
      const esbuild = await import('esbuild');
      mkdirSync(dirname(nodeEntryBundle), { recursive: true });
      const options = { bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', sourcemap: 'inline', logLevel: 'silent', write: false } as const;
      // The worker first: the node's bundle names it (an esbuild define read by runtime/certificate-thread.ts).
      for (const [source, bundle, define] of [
        [checksWorkerSource, checksWorkerBundle, {}],
        [nodeEntrySource, nodeEntryBundle, { 'process.env.OCEANSTORE_CHECKS_WORKER_BUNDLE': JSON.stringify(checksWorkerBundle) }],
      ] as const) {
        const result = await esbuild.build({ ...options, entryPoints: [source], outfile: bundle, define });
        const output = result.outputFiles?.[0];
        if (!output) throw new Error('esbuild produced no output');
        // Write-then-rename: a node started by another launcher never reads a half-written bundle.
        const tmp = `${bundle}.${process.pid}.tmp`;
        writeFileSync(tmp, output.contents);
        renameSync(tmp, bundle);
      }
      return ['--enable-source-maps', nodeEntryBundle];
    } catch {
      return ['--import', 'tsx', nodeEntrySource];
    }
  })();
  return prepared;
}

/** True if a process command line is one of ours (either way of starting a node). */
export function isNodeEntryArg(arg: string): boolean {
  return arg.endsWith('cli/node.ts') || /oceanstore-node(-[0-9a-f]+)?\.mjs$/.test(arg);
}
