/**
 * Loads a CLI verb module from an esbuild bundle instead of through tsx's loader. Every CLI call is
 * a fresh process, and loading the ~100 TypeScript modules a `get` needs one by one through tsx's
 * hooks took 1.2 s of CPU on an idle machine and ~3 s of wall time at load 15: most of a 256 MiB
 * get. One bundled file (node_modules imports left external, as runtime/node-bundle.ts does for
 * node processes) loads in a fraction of that.
 *
 * The bundle is rebuilt whenever any of its inputs changed (size or mtime, from esbuild's
 * metafile), so an edited source is never run stale; builds are written then renamed, so
 * concurrent CLI processes never read a half-written file. Only modules that do not locate files
 * through `import.meta.url` may be bundled (a bundle lives elsewhere). Any failure falls back to
 * the plain import; `OCEANSTORE_NO_BUNDLE=1` skips bundling.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Inside node_modules so the bundle's bare imports resolve to the repository's packages. */
const cacheDir = resolve(repoRoot, 'node_modules/.cache/oceanstore');

interface Inputs {
  readonly files: [path: string, sizeBytes: number, mtimeMs: number][];
}

export async function importVerb(source: string): Promise<Record<string, unknown>> {
  if (process.env.OCEANSTORE_NO_BUNDLE) return import(source);
  let bundle: string | null = null;
  try {
    bundle = fresh(source) ?? (await build(source));
  } catch {
    bundle = null;
  }
  return bundle ? import(pathToFileURL(bundle).href) : import(source);
}

/** The bundle's first line records its inputs, so the code and its freshness check never disagree. */
const inputsMarker = '// oceanstore-bundle-inputs ';

function bundlePathOf(source: string): string {
  return resolve(cacheDir, `cli-${relative(repoRoot, source).replace(/[^A-Za-z0-9]+/g, '-')}.mjs`);
}

/** The bundle, if it exists and none of its inputs changed since it was built. */
function fresh(source: string): string | null {
  const bundle = bundlePathOf(source);
  try {
    const text = readFileSync(bundle, 'utf8');
    const firstLine = text.slice(0, text.indexOf('\n'));
    if (!firstLine.startsWith(inputsMarker)) return null;
    const recorded = JSON.parse(firstLine.slice(inputsMarker.length)) as Inputs;
    for (const [path, sizeBytes, mtimeMs] of recorded.files) {
      const s = statSync(resolve(repoRoot, path));
      if (s.size !== sizeBytes || s.mtimeMs !== mtimeMs) return null;
    }
    return bundle;
  } catch {
    return null;
  }
}

async function build(source: string): Promise<string> {
  const esbuild = await import('esbuild');
  const bundle = bundlePathOf(source);
  const result = await esbuild.build({
    entryPoints: [source], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external',
    // keepNames: error classes keep their names (callers and messages go by them).
    keepNames: true, logLevel: 'silent', write: false, metafile: true, outfile: bundle, absWorkingDir: repoRoot,
  });
  const output = result.outputFiles?.find((f) => f.path === bundle) ?? result.outputFiles?.[0];
  if (!output) throw new Error('esbuild produced no output');
  const files: Inputs['files'] = Object.keys(result.metafile.inputs).map((path) => {
    const s = statSync(resolve(repoRoot, path));
    return [path, s.size, s.mtimeMs];
  });
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${bundle}.${process.pid}.tmp`;
  writeFileSync(tmp, `${inputsMarker}${JSON.stringify({ files } satisfies Inputs)}\n${output.text}`);
  renameSync(tmp, bundle);
  return bundle;
}
