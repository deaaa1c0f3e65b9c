/**
 * `oceanstore cluster refresh-keys` (issue 10): the admin orders a key refresh through the ring;
 * the ring servers reshare their key shares (every share changes, the ring public key does not),
 * switch to the new shares after the next checkpoint boundary and delete the old ones. The
 * command returns once every ring server certifies under the new epoch and holds only its new
 * share. `cluster replace-node OLD --with NEW` is refused for now: the ring core replaces a member
 * in the simulator, but real processes lack a spare node kind for NEW — see docs/reconfiguration.md.
 */
import { ConfigError, InvalidArgumentError, OceanStoreError } from '../core/errors.ts';
import type { ClusterConfig } from '../runtime/cluster-config.ts';
import type { ParsedArgs } from './cluster-args.ts';
import { loadAdminKey, loadDescriptor } from '../runtime/cluster-keys.ts';
import { silentLogger } from '../runtime/log.ts';
import { nodeCrypto } from '../runtime/node-crypto.ts';
import { ringReconfigurationStatus, submitAdminRecord } from '../runtime/reconfiguration-client.ts';

/** A reconfiguration the ring refused or aborted. */
export class ReconfigurationFailedError extends OceanStoreError {
  override name = 'ReconfigurationFailedError';
}

export interface RefreshResult {
  readonly epoch: number;
  readonly firstSeq: number;
  readonly detail: string;
  readonly elapsedMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Orders a refresh and waits until every ring server runs the new epoch with only its new share. */
export async function refreshKeys(config: ClusterConfig, timeoutMs: number, log: (line: string) => void = () => {}): Promise<RefreshResult> {
  const startedMs = Date.now();
  const descriptor = loadDescriptor(config, nodeCrypto);
  const admin = loadAdminKey(config, descriptor, nodeCrypto);
  const before = await ringReconfigurationStatus(config);
  const answered = before.filter((r) => r.status !== null);
  if (answered.length < 2 * config.f + 1) throw new ConfigError(`only ${answered.length} ring servers answer /status; a refresh needs 2f+1 = ${2 * config.f + 1} up`);
  const target = Math.max(...answered.map((r) => r.status!.epochScheduled)) + 1;
  log(`ordering a key refresh to epoch ${target}`);
  const outcome = await submitAdminRecord(descriptor, admin, target, { kind: 'refresh' }, nodeCrypto, silentLogger(), timeoutMs);
  if (outcome.startsWith('refused')) throw new ReconfigurationFailedError(`the ring refused the refresh: ${outcome}`);
  log(`ring: ${outcome}`);
  const deadline = startedMs + timeoutMs;
  for (let i = 0; i < 1_000_000 && Date.now() < deadline; i++) {
    const rows = await ringReconfigurationStatus(config);
    const aborted = rows.find((r) => r.status?.lastRound?.epoch === target && r.status.lastRound.result === 'aborted');
    if (aborted) throw new ReconfigurationFailedError(`the refresh to epoch ${target} was aborted: ${aborted.status!.lastRound!.reason}`);
    const done = rows.every((r) => r.status && r.status.epoch >= target && r.status.shareEpochs.every((e) => e >= target) && r.status.shareEpochs.length > 0);
    if (done) {
      const s = rows[0]!.status!;
      return { epoch: target, firstSeq: s.epochFirstSeq, detail: s.lastRound?.reason ?? '', elapsedMs: Date.now() - startedMs };
    }
    await sleep(250);
  }
  throw new ReconfigurationFailedError(`epoch ${target} not in force on every ring server within ${timeoutMs} ms (see \`cluster status --json\`)`);
}

/** Dispatch for cli/cluster.ts. */
export async function runReconfigure(command: string, config: ClusterConfig, parsed: ParsedArgs, timeoutMs: number): Promise<number> {
  if (command === 'refresh-keys') {
    const r = await refreshKeys(config, timeoutMs, (line) => console.log(line));
    console.log(`epoch ${r.epoch} in force from seq ${r.firstSeq} (${r.detail}); old shares deleted on every ring server; ${(r.elapsedMs / 1000).toFixed(1)} s`);
    return 0;
  }
  const old = parsed.positional[0];
  if (!old || typeof parsed.flags.get('with') !== 'string') throw new InvalidArgumentError('usage: cluster replace-node OLD --with NEW');
  throw new ReconfigurationFailedError(
    `replace-node ${old}: not supported on real processes yet — the ring core replaces a member in the simulator (resharing, PBFT member switch at the checkpoint boundary, the new server catching up by state transfer), but the cluster config has no spare node kind for NEW to run as before it joins; use refresh-keys to make a suspected server's share useless (docs/reconfiguration.md)`,
  );
}
