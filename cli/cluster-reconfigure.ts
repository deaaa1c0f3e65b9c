/**
 * `oceanstore cluster refresh-keys` (issue 10): the admin orders a key refresh through the ring;
 * the ring servers reshare their key shares (every share changes, the ring public key does not),
 * switch to the new shares after the next checkpoint boundary and delete the old ones. The
 * command returns once 2f+1 ring servers say they run the new epoch and hold only their new share
 * (and none says the round was aborted); servers that did not answer are named. `cluster
 * replace-node OLD --with NEW` puts a `spare` node of the config in OLD's place; it does not need
 * OLD to answer (a crashed or Byzantine OLD is the usual reason to replace it).
 */
import { ConfigError, InvalidArgumentError, OceanStoreError } from '../core/errors.ts';
import type { ClusterConfig } from '../runtime/cluster-config.ts';
import type { ParsedArgs } from './cluster-args.ts';
import { writeFileSync } from 'node:fs';
import { clusterPaths } from '../runtime/cluster-config.ts';
import { fromHex, toHex } from '../core/bytes.ts';
import { currentRingOf, loadAdminKey, loadDescriptor, resignRing, ringNamesOf, type RingDescriptor } from '../runtime/cluster-keys.ts';
import { RingSession } from '../runtime/ring-session.ts';
import { spawnNode, stopNode, waitReady } from '../runtime/cluster-launcher.ts';
import { joinFileOf } from '../runtime/reconfiguration-role.ts';
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
  /** Ring servers that said they run the new epoch with only their new share. */
  readonly confirmed: readonly string[];
  /** Ring servers that did not say so (down, not answering, or still behind when the wait ended). */
  readonly unconfirmed: readonly string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type StatusRow = Awaited<ReturnType<typeof ringReconfigurationStatus>>[number];

/** How long, once 2f+1 servers confirmed, the others that answer get to confirm too. */
const stragglerGraceMs = 10_000;

interface QuorumWait {
  /** Servers that must not be missing from the quorum (NEW when it joins). */
  readonly mustInclude?: string;
  /** How long servers that answer but have not confirmed are waited for once the quorum is there. */
  readonly graceMs?: number;
}

/**
 * Polls `names` until at least `quorum` of them are `confirmed` (`mustInclude` among them) and
 * every other one either confirmed too, did not answer two polls in a row (down: nothing to wait
 * for), or had `graceMs` to catch up (a slow or lying server cannot hold the command).
 * `check` throws on a report that contradicts the outcome (an aborted round). Fails at the
 * deadline unless the quorum was reached.
 */
async function untilQuorum(
  what: string, config: ClusterConfig, names: readonly string[], quorum: number, deadlineMs: number,
  confirmed: (row: StatusRow) => boolean, check: (rows: readonly StatusRow[]) => void, options: QuorumWait = {},
): Promise<{ rows: StatusRow[]; confirmed: string[]; unconfirmed: string[] }> {
  const { mustInclude, graceMs = stragglerGraceMs } = options;
  const silentPolls = new Map<string, number>(names.map((n) => [n, 0]));
  let quorumAtMs: number | null = null;
  let last: { rows: StatusRow[]; confirmed: string[]; unconfirmed: string[] } | null = null;
  for (let i = 0; i < 1_000_000; i++) {
    const rows = await ringReconfigurationStatus(config, names);
    check(rows);
    for (const r of rows) silentPolls.set(r.name, r.status === null ? silentPolls.get(r.name)! + 1 : 0);
    const yes = rows.filter(confirmed).map((r) => r.name);
    const no = rows.map((r) => r.name).filter((n) => !yes.includes(n));
    if (yes.length >= quorum && (mustInclude === undefined || yes.includes(mustInclude))) {
      last = { rows, confirmed: yes, unconfirmed: no };
      quorumAtMs ??= Date.now();
      if (no.every((n) => silentPolls.get(n)! >= 2) || Date.now() - quorumAtMs >= graceMs) return last;
    } else {
      // A server that confirmed may not answer the next poll: the quorum counts from scratch.
      quorumAtMs = null;
      last = null;
    }
    if (Date.now() >= deadlineMs) break;
    await sleep(250);
  }
  if (last) return last;
  throw new ReconfigurationFailedError(`${what} did not happen in time: fewer than ${quorum} ring servers confirmed it${mustInclude ? ` (${mustInclude} among them)` : ''} (see \`cluster status --json\`)`);
}

/** "ring-2 did not answer, ring-3 had not confirmed it": the servers a wait could not confirm. */
function unconfirmedText(rows: readonly StatusRow[], unconfirmed: readonly string[]): string {
  return unconfirmed.map((n) => `${n} ${rows.find((r) => r.name === n)?.status ? 'had not confirmed it' : 'did not answer'}`).join(', ');
}

/** Orders a refresh and waits until 2f+1 ring servers run the new epoch with only their new share. */
export async function refreshKeys(config: ClusterConfig, timeoutMs: number, log: (line: string) => void = () => {}): Promise<RefreshResult> {
  const startedMs = Date.now();
  const descriptor = loadDescriptor(config, nodeCrypto);
  const admin = loadAdminKey(config, descriptor, nodeCrypto);
  // After a replacement the ring is the descriptor's signed list, not the config's `ring` roles.
  const ringNames = ringNamesOf(descriptor);
  const before = await ringReconfigurationStatus(config, ringNames);
  const answered = before.filter((r) => r.status !== null);
  if (answered.length < 2 * config.f + 1) throw new ConfigError(`only ${answered.length} ring servers answer /status; a refresh needs 2f+1 = ${2 * config.f + 1} up`);
  const target = Math.max(...answered.map((r) => r.status!.epochScheduled)) + 1;
  log(`ordering a key refresh to epoch ${target}`);
  const outcome = await submitAdminRecord(descriptor, admin, target, { kind: 'refresh' }, nodeCrypto, silentLogger(), timeoutMs);
  if (outcome.startsWith('refused')) throw new ReconfigurationFailedError(`the ring refused the refresh: ${outcome}`);
  log(`ring: ${outcome}`);
  const done = await untilQuorum(
    `epoch ${target} in force`, config, ringNames, 2 * config.f + 1, startedMs + timeoutMs,
    (r) => r.status !== null && r.status.epoch >= target && r.status.shareEpochs.length > 0 && r.status.shareEpochs.every((e) => e >= target),
    (rows) => {
      const aborted = rows.find((r) => r.status?.lastRound?.epoch === target && r.status.lastRound.result === 'aborted');
      if (aborted) throw new ReconfigurationFailedError(`the refresh to epoch ${target} was aborted: ${aborted.status!.lastRound!.reason}`);
    },
  );
  if (done.unconfirmed.length > 0) {
    log(`${unconfirmedText(done.rows, done.unconfirmed)}: ${done.unconfirmed.length === 1 ? 'its' : 'their'} old share could not be confirmed deleted; a ring server that is back up computes its new share from the ring's transcript and then deletes the old one (see \`cluster status --json\`)`);
  }
  const s = done.rows.find((r) => r.name === done.confirmed[0])!.status!;
  return { epoch: target, firstSeq: s.epochFirstSeq, detail: s.lastRound?.reason ?? '', elapsedMs: Date.now() - startedMs, confirmed: done.confirmed, unconfirmed: done.unconfirmed };
}

export interface ReplaceResult extends RefreshResult {
  readonly members: readonly string[];
  /**
   * What OLD said of its share: `deleted` (it reported holding none), `silent` (it did not answer
   * /status: down, or not telling), `kept` (it answered but still reported a share when the
   * wait for it ended). In every case OLD was stopped if it ran here.
   */
  readonly oldShare: 'deleted' | 'silent' | 'kept';
  /** Whether OLD's process ran on this machine when the command stopped it. */
  readonly oldWasRunning: boolean;
}

/** How long a replacement waits for OLD, once NEW has joined, to say it deleted its share. */
const oldShareWaitMs = 15_000;

/**
 * Replaces ring member `oldName` by the spare `newName`: the ring reshares to the new member set
 * and, at the second checkpoint boundary after that, switches PBFT to it; the spare is restarted as the
 * joining member, catches up by state transfer, computes its share and votes; the old server
 * deletes its share and is stopped. Done once 2f+1 of the new ring (NEW among them) say so; OLD
 * need not answer (`oldShare` says whether it confirmed the deletion).
 */
export async function replaceNode(config: ClusterConfig, oldName: string, newName: string, timeoutMs: number, log: (line: string) => void = () => {}): Promise<ReplaceResult> {
  const startedMs = Date.now();
  const deadlineMs = startedMs + timeoutMs;
  const descriptor = loadDescriptor(config, nodeCrypto);
  const admin = loadAdminKey(config, descriptor, nodeCrypto);
  // The ring now: after an earlier replacement, the descriptor's signed member list.
  const ring = currentRingOf(descriptor);
  const oldIndex = ring.findIndex((m) => m.id === oldName) + 1;
  const spare = descriptor.nodes.find((n) => n.name === newName);
  if (oldIndex === 0) throw new InvalidArgumentError(`${oldName} is not a ring server of this cluster (ring: ${ring.map((m) => m.id).join(', ')})`);
  if (ring.some((m) => m.id === newName)) throw new InvalidArgumentError(`${newName} is already a ring member`);
  if (!spare || spare.role !== 'spare') throw new InvalidArgumentError(`${newName} must be a node of role 'spare' in the config (it is ${spare ? `a ${spare.role} node` : 'not in it'})`);
  // The ring runs on the staying members until NEW has caught up: 2f+1 of them must be up. OLD
  // need not answer (it is usually replaced because it is down).
  const before = (await ringReconfigurationStatus(config, ring.map((m) => m.id).filter((id) => id !== oldName))).filter((r) => r.status !== null);
  if (before.length < 2 * config.f + 1) throw new ConfigError(`only ${before.length} ring servers besides ${oldName} answer /status; a replacement needs 2f+1 = ${2 * config.f + 1} of them up`);
  const target = Math.max(...before.map((r) => r.status!.epochScheduled)) + 1;
  const future = ring.map((m) => (m.id === oldName ? { id: newName, publicKey: fromHex(spare.publicKey) } : m));
  log(`ordering the replacement of ${oldName} by ${newName} (epoch ${target})`);
  const action = { kind: 'replace' as const, oldIndex, newId: newName, newPublicKey: fromHex(spare.publicKey) };
  const outcome = await submitAdminRecord(descriptor, admin, target, action, nodeCrypto, silentLogger(), timeoutMs);
  if (outcome.startsWith('refused')) throw new ReconfigurationFailedError(`the ring refused the replacement: ${outcome}`);
  log(`ring: ${outcome}`);
  const quorum = 2 * config.f + 1;
  const staying = future.filter((m) => m.id !== newName).map((m) => m.id);
  const oldIds = ring.map((m) => m.id).join();
  const ids = future.map((m) => m.id).join();
  // Any answering server that says the round was aborted, or that it runs the new epoch with a
  // member list that is neither the old nor the new one, contradicts the replacement.
  const contradictions = (rows: readonly StatusRow[]) => {
    const aborted = rows.find((r) => r.status?.lastRound?.epoch === target && r.status.lastRound.result === 'aborted');
    if (aborted) throw new ReconfigurationFailedError(`the replacement was aborted: ${aborted.status!.lastRound!.reason}`);
    const other = rows.find((r) => r.status && r.status.epoch >= target && r.status.members.join() !== ids && r.status.members.join() !== oldIds);
    if (other) throw new ReconfigurationFailedError(`${other.name} runs epoch ${other.status!.epoch} with members [${other.status!.members.join(', ')}], not [${future.map((m) => m.id).join(', ')}]`);
  };
  // The round's outcome is ordered, so 2f+1 saying it was installed is enough: no grace for the rest.
  await untilQuorum(`the resharing round of epoch ${target}`, config, staying, quorum, deadlineMs,
    (r) => r.status?.lastRound?.epoch === target && r.status.lastRound.result === 'installed', contradictions, { graceMs: 0 });
  // The ring has committed to the new member list (it switches at the second checkpoint boundary
  // after the deciding record), so the descriptor says so now: running clients that follow it (the SDK, ring sessions) move to
  // NEW before it can become the primary they would otherwise not hear from.
  const next = resignRing(config, descriptor, admin, target, future.map((m) => m.id), nodeCrypto);
  log(`ring descriptor re-signed: ring members [${future.map((m) => m.id).join(', ')}]`);
  // Processes that do not read this file (other hosts, clients given the descriptor) learn it from
  // the nodes: hand it to the staying members, which pass it on (runtime/descriptor-gossip.ts).
  // Best effort: the replacement goes on if this fails (processes that read the file follow it).
  try {
    const told = await spreadDescriptor(descriptor, next, staying, Math.min(5_000, Math.max(1_000, deadlineMs - Date.now())));
    log(`ring descriptor handed to ${told.length} of ${staying.length} staying members (as they say)${told.length < staying.length ? '; the others learn it from their peers' : ''}`);
  } catch (error) {
    log(`ring descriptor not handed to the ring (${(error as Error).message}); nodes and clients that read the file follow it, others learn it when a peer does`);
  }
  // The spare now starts as the joining member: it votes once state transfer has caught it up.
  writeFileSync(joinFileOf(config, newName), JSON.stringify(future.map((m) => ({ id: m.id, publicKey: toHex(m.publicKey) }))) + '\n');
  await stopNode(config, newName);
  await spawnNode(config, newName);
  await waitReady(config, [newName], Math.max(1000, deadlineMs - Date.now()));
  log(`${newName} restarted as the joining member`);
  // Done once 2f+1 of the new ring, NEW among them, run the new list holding only a share of the
  // new epoch; a staying member that is down (or does not answer) is named, not waited for.
  const joined = await untilQuorum(`${newName} joining with its share of epoch ${target}`, config, [...staying, newName], quorum, deadlineMs,
    (r) => r.status !== null && r.status.members.join() === ids && r.status.epoch >= target && r.status.shareEpochs.join() === String(target), contradictions, { mustInclude: newName });
  if (joined.unconfirmed.length > 0) log(`${unconfirmedText(joined.rows, joined.unconfirmed)}; the ring runs on the ${joined.confirmed.length} that did`);
  // OLD deletes its share once it has executed its last batch under the old list (or earlier: once
  // it holds nothing of the old epoch uncertified, or by a deadline from the install). A down OLD
  // cannot say so (nor a Byzantine one that will not): its files keep a share of an old epoch,
  // useless alone once the others deleted theirs. Stopping it is harmless if it is not running.
  const oldShare = await oldShareOutcome(config, oldName, Math.min(deadlineMs, Date.now() + oldShareWaitMs));
  const oldWasRunning = await stopNode(config, oldName);
  if (oldShare !== 'deleted') {
    const dir = clusterPaths(config).nodeDir(oldName);
    const why = oldShare === 'silent' ? `${oldName} did not answer /status` : `${oldName} still reported a key share after ${oldShareWaitMs / 1000} s`;
    const stopped = oldWasRunning ? 'stopped it' : 'it was not running here';
    log(`${why}, so its share could not be confirmed deleted (${stopped}). Its files may still hold a share of an earlier epoch, useless alone now that the ring members deleted theirs: wipe ${dir} on its host (ring-share.json and db/ hold it) and do not start ${oldName} again`);
  }
  const s = joined.rows.find((r) => r.name === newName)!.status!;
  return {
    epoch: target, firstSeq: s.epochFirstSeq, detail: s.lastRound?.reason ?? '', elapsedMs: Date.now() - startedMs, members: future.map((m) => m.id),
    confirmed: joined.confirmed, unconfirmed: joined.unconfirmed, oldShare, oldWasRunning,
  };
}

/** Waits until `untilMs` for OLD to report no key share; `silent` if it did not answer twice in a row. */
async function oldShareOutcome(config: ClusterConfig, oldName: string, untilMs: number): Promise<ReplaceResult['oldShare']> {
  let silent = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const status = (await ringReconfigurationStatus(config, [oldName]))[0]?.status ?? null;
    if (status && status.shareEpochs.length === 0) return 'deleted';
    silent = status ? 0 : silent + 1;
    if (silent >= 2) return 'silent';
    if (Date.now() >= untilMs) return status ? 'kept' : 'silent';
    await sleep(250);
  }
  return 'silent';
}

/** Sends `next` to the nodes through a short session that starts from `current`; returns the members in `waitFor` that confirmed. */
async function spreadDescriptor(current: RingDescriptor, next: RingDescriptor, waitFor: readonly string[], timeoutMs: number): Promise<string[]> {
  const session = new RingSession({ descriptor: current, crypto: nodeCrypto, log: silentLogger(), clientCount: 0 });
  await session.start();
  try {
    return await session.spreadDescriptor(next, waitFor, timeoutMs);
  } finally {
    await session.stop();
  }
}

/** Dispatch for cli/cluster.ts. */
export async function runReconfigure(command: string, config: ClusterConfig, parsed: ParsedArgs, timeoutMs: number): Promise<number> {
  if (command === 'refresh-keys') {
    const r = await refreshKeys(config, timeoutMs, (line) => console.log(line));
    const where = r.unconfirmed.length === 0 ? 'every ring server' : `${r.confirmed.length} of ${r.confirmed.length + r.unconfirmed.length} ring servers (not confirmed: ${r.unconfirmed.join(', ')})`;
    console.log(`epoch ${r.epoch} in force from seq ${r.firstSeq} (${r.detail}); old shares deleted on ${where}; ${(r.elapsedMs / 1000).toFixed(1)} s`);
    return 0;
  }
  const old = parsed.positional[0];
  const replacement = parsed.flags.get('with');
  if (!old || typeof replacement !== 'string') throw new InvalidArgumentError('usage: cluster replace-node OLD --with NEW');
  const r = await replaceNode(config, old, replacement, timeoutMs, (line) => console.log(line));
  const share = r.oldShare === 'deleted' ? 'its share deleted' : `its share not confirmed deleted (${r.oldShare === 'silent' ? 'it did not answer' : 'it still reported one'}: wipe its data directory)`;
  const unconfirmed = r.unconfirmed.length > 0 ? `; not confirmed: ${r.unconfirmed.join(', ')}` : '';
  console.log(`epoch ${r.epoch} in force from seq ${r.firstSeq}; ring members [${r.members.join(', ')}]; ${old} stopped${r.oldWasRunning ? '' : ' (it was not running)'}, ${share}${unconfirmed}; ${(r.elapsedMs / 1000).toFixed(1)} s`);
  return 0;
}
