/**
 * `oceanstore restore`: rebuild objects from the archive alone, with every ring server and replica
 * gone. Needs only the cluster config and its ring descriptor (archive server addresses and keys,
 * the ring public key). Everything is verified: each fragment against its Merkle path, each block
 * against its BGUID, the tree up to the VGUID, and the VGUID against a ring certificate.
 *
 *   restore NAME|AGUID [--version N] -o FILE     one version (default: the latest certified)
 *   restore NAME|AGUID --all --out DIR           every version of one object
 *   restore --all --out DIR                      every version of every object
 *   restore [NAME|AGUID] --verify-only           restore and verify, write nothing, report
 * Each version streams to a temporary file beside its final name, fsynced and renamed into place
 * once the whole version verified; a failure or a signal (Ctrl-C) removes the temporary file.
 * Options: --config FILE, --owner HEX | --identity FILE (to turn NAME into an AGUID), --json,
 * --quiet, --timeout-ms N. Exit codes: 0 all restored, 1 something missing or failed (a version,
 * a chain link, an archive server that did not answer, or nothing found at all), 2 usage.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pino } from 'pino';
import { fromHex, toHex } from '../core/bytes.ts';
import { aguidOf } from '../core/crypto.ts';
import { OceanStoreError } from '../core/errors.ts';
import { loadOrCreateIdentity, defaultIdentityPath } from '../client/identity.ts';
import { loadClusterConfig } from '../runtime/cluster-config.ts';
import { loadDescriptor } from '../runtime/cluster-keys.ts';
import { useMclBls } from '../runtime/mcl-bls.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import type { PeerAddress } from '../runtime/transport.ts';
import type { LeafWriter, VersionRef, VersionSink } from '../archive/shell/restore.ts';
import type { RootBlock } from '../core/version/root-block.ts';
import { runRestore, type RestoreTarget, type RestoreToolReport } from '../archive/shell/restore-tool.ts';
import { WsArchiveSource } from '../archive/shell/ws-archive-source.ts';
import { fsErrorMessage } from './fs-errors.ts';
import { Progress } from './progress.ts';
import { interruptCleanup, interruptSignals, OutputFile } from './output-file.ts';

// Tests and older callers import these from here.
export { discardUnfinished, interruptCleanup, OutputFile } from './output-file.ts';

const usage = `usage: oceanstore restore NAME|AGUID [--version N] -o FILE
       oceanstore restore [NAME|AGUID] --all --out DIR
       oceanstore restore [NAME|AGUID] --verify-only
options: --config FILE  --owner HEX | --identity FILE  --json  --quiet  --timeout-ms N`;

const valueFlags = new Set(['--config', '--version', '-o', '--out', '--owner', '--identity', '--timeout-ms']);
const boolFlags = new Set(['--all', '--verify-only', '--json', '--quiet']);

interface Parsed {
  positional: string[];
  values: Map<string, string>;
  bools: Set<string>;
}

class UsageError extends Error {}

export function parseRestoreArgs(args: readonly string[]): Parsed {
  const parsed: Parsed = { positional: [], values: new Map(), bools: new Set() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (valueFlags.has(a)) {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      parsed.values.set(a, v);
    } else if (boolFlags.has(a)) parsed.bools.add(a);
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else parsed.positional.push(a);
  }
  if (parsed.positional.length > 1) throw new UsageError('give at most one NAME or AGUID');
  const all = parsed.bools.has('--all');
  const verifyOnly = parsed.bools.has('--verify-only');
  if (!verifyOnly && !all && (parsed.positional.length === 0 || !parsed.values.has('-o'))) {
    throw new UsageError('restore one object with NAME|AGUID -o FILE, or use --all --out DIR, or --verify-only');
  }
  if (all && !verifyOnly && !parsed.values.has('--out')) throw new UsageError('--all needs --out DIR (or --verify-only)');
  if (parsed.values.has('--version') && (all || parsed.positional.length === 0)) throw new UsageError('--version applies to one object without --all');
  const timeout = parsed.values.get('--timeout-ms');
  if (timeout !== undefined && (!/^[0-9]+$/.test(timeout) || !Number.isSafeInteger(Number(timeout)) || Number(timeout) <= 0)) {
    throw new UsageError(`--timeout-ms takes a positive integer (milliseconds), got '${timeout}'`);
  }
  return parsed;
}

function targetOf(p: Parsed): RestoreTarget {
  const name = p.positional[0];
  const target: RestoreTarget = { allVersions: p.bools.has('--all') };
  if (name !== undefined) {
    if (/^[0-9a-f]{64}$/i.test(name)) target.aguid = fromHex(name);
    else {
      const ownerHex = p.values.get('--owner');
      let owner: Uint8Array;
      if (ownerHex !== undefined) {
        if (!/^[0-9a-f]{64}$/i.test(ownerHex)) throw new UsageError('--owner takes a 32-byte ed25519 public key in hex');
        owner = fromHex(ownerHex);
      } else {
        const path = p.values.get('--identity') ?? defaultIdentityPath();
        if (!existsSync(path)) throw new UsageError(`NAME needs the owner's key: pass --owner HEX, or --identity FILE (${path} does not exist), or give the AGUID`);
        owner = loadOrCreateIdentity(path).publicKey;
      }
      target.aguid = aguidOf(nodeCrypto, owner, name);
    }
  }
  const version = p.values.get('--version');
  if (version !== undefined) {
    const n = Number(version);
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--version takes a non-negative integer, got '${version}'`);
    target.version = n;
  }
  return target;
}

/**
 * Reported per version: say it is our output that failed, not the archive. `verified` when the
 * whole version had verified (the commit failed); a write part way through comes before that.
 */
function outputFailed(error: unknown, verified: boolean): Error {
  const reason = fsErrorMessage(error, 'output') ?? (error as Error).message;
  return new Error(verified ? `restored and verified, but writing the output failed: ${reason}` : `writing the output failed (not the archive's fault): ${reason}`);
}

/** Writes through a temporary file and a rename; a failed write or rename leaves neither it nor a partial output behind. */
export function writeAtomic(path: string, bytes: Uint8Array): void {
  let file: OutputFile | null = null;
  try {
    file = new OutputFile(path);
    file.write(bytes);
    file.commit();
  } catch (error) {
    file?.discard();
    throw outputFailed(error, true);
  }
}

/**
 * Checks the output paths before connecting: -o's folder exists and -o is not a folder; --out is
 * made (a file in its way is a usage error). A bad output path once read as archive loss.
 */
function prepareOutput(p: Parsed): void {
  if (p.bools.has('--verify-only')) return;
  const file = p.values.get('-o');
  if (file !== undefined && !p.bools.has('--all')) {
    const dir = dirname(resolve(file));
    if (!existsSync(dir)) throw new UsageError(`-o ${file}: the folder ${dir} does not exist; create it first`);
    if (!statSync(dir).isDirectory()) throw new UsageError(`-o ${file}: ${dir} is a file, not a folder`);
    if (existsSync(file) && statSync(file).isDirectory()) throw new UsageError(`-o ${file} is a folder; give a file name (or use --all --out DIR)`);
  }
  const out = p.values.get('--out');
  if (out !== undefined) {
    try {
      mkdirSync(out, { recursive: true });
    } catch (error) {
      throw new UsageError(`--out ${out}: ${fsErrorMessage(error, 'folder') ?? (error as Error).message}`);
    }
    if (!statSync(out).isDirectory()) throw new UsageError(`--out ${out} is a file; give a folder`);
  }
}

/**
 * Where each restored version goes, and the manifest of those written. Each version streams into
 * a temporary file beside its final name, renamed into place once the whole version verified. An
 * entry is added only once its output is in place: the manifest listed versions whose write had
 * failed, and a failed mkdir of DIR/<aguid> read as archive loss ("MISSING ...: EEXIST";
 * session-20 review, finding 7).
 */
export function sinkOf(p: Parsed): { sink: VersionSink; manifest: unknown[] } {
  const manifest: unknown[] = [];
  const quiet = p.bools.has('--quiet') || p.bools.has('--json');
  const open = (ref: VersionRef, root: RootBlock): LeafWriter => {
    const entry = { aguid: toHex(ref.aguid), version: ref.version, vguid: toHex(ref.vguid), sizeBytes: root.sizeBytes, timestampMs: root.timestampMs };
    // A bar for one large version (the versions line below moves only when a version is done: a
    // 1 GiB restore showed nothing for 7-14 s).
    const progress = new Progress(`restore version ${ref.version}`, root.sizeBytes, quiet);
    const path = outputPathOf(p, entry.aguid, entry.version);
    let file: OutputFile | null = null;
    try {
      file = path === null ? null : new OutputFile(path, p.bools.has('--all'));
    } catch (error) {
      throw outputFailed(error, false);
    }
    return {
      write: (leaf) => {
        try {
          file?.write(leaf);
        } catch (error) {
          throw outputFailed(error, false);
        }
        progress.add(leaf.length);
      },
      commit: () => {
        try {
          file?.commit();
        } catch (error) {
          throw outputFailed(error, true);
        }
        progress.done();
        manifest.push(entry);
      },
      discard: () => file?.discard(),
    };
  };
  return { sink: { open }, manifest };
}

/** The file a version goes to (null for --verify-only); makes DIR/<aguid> for --all. */
function outputPathOf(p: Parsed, aguidHex: string, version: number): string | null {
  if (p.bools.has('--verify-only')) return null;
  const file = p.values.get('-o');
  if (file !== undefined && !p.bools.has('--all')) return file;
  const dir = join(p.values.get('--out')!, aguidHex);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    throw outputFailed(error, false);
  }
  return join(dir, String(version));
}

function printReport(p: Parsed, report: RestoreToolReport): void {
  if (p.bools.has('--json')) {
    console.log(JSON.stringify(report));
    return;
  }
  const mb = report.restoredBytes / 2 ** 20;
  const seconds = report.elapsedMs / 1000;
  console.log(`restored ${report.restored}/${report.selected.length} versions, ${mb.toFixed(2)} MiB in ${seconds.toFixed(1)} s (${(mb / Math.max(seconds, 0.001)).toFixed(1)} MiB/s)`);
  console.log(`fragments: ${report.fetch.fragmentsReceived} received, ${report.fetch.fragmentsRejected} refused; blocks: ${report.fetch.blocks} fetched, ${report.fetch.cacheHits} shared`);
  if (report.unreachableServers.length > 0) console.log(`archive servers not answering (versions only they list may be missing): ${report.unreachableServers.join(', ')}`);
  if (report.selected.length === 0) console.log('no certified version found in the archive');
  if (report.rejectedCertificates > 0) console.log(`certificates refused (bad signature or malformed): ${report.rejectedCertificates}`);
  for (const c of report.conflicts) console.log(`CONFLICT (two certified versions): ${c}`);
  for (const b of report.chainBreaks) console.log(`chain break (previous VGUID mismatch): ${b}`);
  for (const f of report.failed) console.log(`MISSING ${f.aguid}@${f.version}: ${f.reason}`);
}

/**
 * 0 only for a restore that is known complete: every selected version restored, no conflict, no
 * break in a version chain, something selected, and every listing finished on all but at most
 * `unreachableTolerated` archive servers (the code's parity m: a version's certificate is kept
 * beside each of its root block's k + m fragments, so with at most m servers silent another one
 * listed it; with more, a version only they list may be missing and "all" or "the latest" is not
 * known). With `explicitVersion` (`--version N`) the one version asked for is the whole job:
 * restored and verified, it is complete however many servers were silent (it exited 1;
 * session-20 review, finding 8e).
 */
export function restoreExitCode(report: RestoreToolReport, unreachableTolerated = 0, explicitVersion = false): 0 | 1 {
  const complete = report.failed.length === 0 && report.conflicts.length === 0 && report.chainBreaks.length === 0 && report.restored === report.selected.length;
  const listed = explicitVersion || report.unreachableServers.length <= unreachableTolerated;
  return complete && report.selected.length > 0 && listed ? 0 : 1;
}

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage);
    return 0;
  }
  let p: Parsed;
  let target: RestoreTarget;
  const json = args.includes('--json');
  const fail = (code: number, name: string, message: string, extra = ''): number => {
    console.error(`oceanstore restore: ${message}${extra}`);
    if (json) console.log(JSON.stringify({ error: { name, message, exitCode: code } }));
    return code;
  };
  let config: ReturnType<typeof loadClusterConfig>;
  let descriptor: ReturnType<typeof loadDescriptor>;
  try {
    p = parseRestoreArgs(args);
    target = targetOf(p);
    prepareOutput(p);
    // Inside the try: a missing or bad config is reported like any other error (--json printed none).
    config = loadClusterConfig(p.values.get('--config') ?? process.env.OCEANSTORE_CONFIG ?? 'cluster-configs/local.json');
    descriptor = loadDescriptor(config, nodeCrypto);
  } catch (error) {
    if (error instanceof UsageError) return fail(2, 'UsageError', error.message, `\n${usage}`);
    if (error instanceof OceanStoreError) return fail(1, error.name, `${error.name}: ${error.message}`);
    throw error;
  }
  const servers = new Map<string, PeerAddress>(
    descriptor.nodes.filter((n) => n.role === 'archive').map((n) => [n.name, { url: n.url, publicKey: fromHex(n.publicKey) }]),
  );
  const source = new WsArchiveSource({ crypto: nodeCrypto, log: pino({ level: 'silent' }), servers, requestTimeoutMs: Number(p.values.get('--timeout-ms') ?? 5000) });
  // Certificates are checked with mcl's WebAssembly pairing, ~5x noble's (the ring's own engine);
  // it compiles while the connections open. Without it a restore spent most of its discovery in
  // noble's pairings (~310 versions with --all: 4.5-6.7 s).
  const engine = useMclBls();
  await source.start();
  await engine;
  const { sink, manifest } = sinkOf(p);
  const quiet = p.bools.has('--quiet') || p.bools.has('--json') || !process.stderr.isTTY;
  const onInterrupt = interruptCleanup();
  for (const s of interruptSignals) process.on(s, onInterrupt);
  try {
    const report = await runRestore(
      {
        crypto: nodeCrypto, source, ringPublicKey: fromHex(descriptor.ringPublicKey),
        k: config.erasure.k, m: config.erasure.m, target, sink,
        onProgress: quiet ? undefined : (done, total, bytes) => process.stderr.write(`\rrestoring ${done}/${total} versions, ${(bytes / 2 ** 20).toFixed(1)} MiB   `),
      },
      () => Date.now(),
    );
    if (!quiet) process.stderr.write('\n');
    if (p.values.has('--out') && !p.bools.has('--verify-only')) writeAtomic(join(p.values.get('--out')!, 'manifest.json'), new TextEncoder().encode(JSON.stringify(manifest, null, 2) + '\n'));
    printReport(p, report);
    return restoreExitCode(report, config.erasure.m, target.version !== undefined);
  } catch (error) {
    if (error instanceof OceanStoreError) return fail(1, error.name, `${error.name}: ${error.message}`);
    const fs = fsErrorMessage(error);
    if (fs !== null) return fail(1, 'FileError', fs);
    if (error instanceof Error) return fail(1, error.name, error.message);
    throw error;
  } finally {
    for (const s of interruptSignals) process.off(s, onInterrupt);
    await source.stop();
  }
}
