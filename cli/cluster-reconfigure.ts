/**
 * `oceanstore cluster refresh-keys` (issue 10): the admin orders a key refresh through the ring;
 * the ring servers reshare their key shares (every share changes, the ring public key does not),
 * switch to the new shares after the next checkpoint boundary and delete the old ones. The
 * command returns once every ring server certifies under the new epoch and holds only its new
 * share. `cluster replace-node OLD --with NEW` puts a `spare` node of the config in OLD's place.
 */
import { ConfigError, InvalidArgumentError, OceanStoreError } from '../core/errors.ts';
import type { ClusterConfig } from '../runtime/cluster-config.ts';
import type { ParsedArgs } from './cluster-args.ts';
import { writeFileSync } from 'node:fs';
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
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Orders a refresh and waits until every ring server runs the new epoch with only its new share. */
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
  const deadline = startedMs + timeoutMs;
  for (let i = 0; i < 1_000_000 && Date.now() < deadline; i++) {
    const rows = await ringReconfigurationStatus(config, ringNames);
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

export interface ReplaceResult extends RefreshResult {
  readonly members: readonly string[];
}

async function until(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1_000_000 && Date.now() < deadlineMs; i++) {
    if (await check()) return;
    await sleep(250);
  }
  throw new ReconfigurationFailedError(`${what} did not happen in time (see \`cluster status --json\`)`);
}

/**
 * Replaces ring member `oldName` by the spare `newName`: the ring reshares to the new member set
 * and, at the second checkpoint boundary after that, switches PBFT to it; the spare is restarted as the
 * joining member, catches up by state transfer, computes its share and votes; the old server
 * deletes its share and is stopped.
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
  const before = (await ringReconfigurationStatus(config, ring.map((m) => m.id))).filter((r) => r.status !== null);
  if (before.length < 2 * config.f + 1) throw new ConfigError(`only ${before.length} ring servers answer /status; a replacement needs 2f+1 = ${2 * config.f + 1} up`);
  const target = Math.max(...before.map((r) => r.status!.epochScheduled)) + 1;
  const future = ring.map((m) => (m.id === oldName ? { id: newName, publicKey: fromHex(spare.publicKey) } : m));
  log(`ordering the replacement of ${oldName} by ${newName} (epoch ${target})`);
  const action = { kind: 'replace' as const, oldIndex, newId: newName, newPublicKey: fromHex(spare.publicKey) };
  const outcome = await submitAdminRecord(descriptor, admin, target, action, nodeCrypto, silentLogger(), timeoutMs);
  if (outcome.startsWith('refused')) throw new ReconfigurationFailedError(`the ring refused the replacement: ${outcome}`);
  log(`ring: ${outcome}`);
  const staying = future.filter((m) => m.id !== newName).map((m) => m.id);
  await until(`the resharing round of epoch ${target}`, deadlineMs, async () => {
    const rows = await ringReconfigurationStatus(config, staying);
    const aborted = rows.find((r) => r.status?.lastRound?.epoch === target && r.status.lastRound.result === 'aborted');
    if (aborted) throw new ReconfigurationFailedError(`the replacement was aborted: ${aborted.status!.lastRound!.reason}`);
    return rows.every((r) => r.status?.lastRound?.epoch === target && r.status.lastRound.result === 'installed');
  });
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
  const ids = future.map((m) => m.id).join();
  await until(`${newName} joining with its share of epoch ${target}`, deadlineMs, async () => {
    const rows = await ringReconfigurationStatus(config, [...staying, newName]);
    return rows.every((r) => r.status && r.status.members.join() === ids && r.status.epoch >= target && r.status.shareEpochs.join() === String(target));
  });
  await until(`${oldName} deleting its share`, deadlineMs, async () => (await ringReconfigurationStatus(config, [oldName]))[0]?.status?.shareEpochs.length === 0);
  await stopNode(config, oldName);
  const s = (await ringReconfigurationStatus(config, [newName]))[0]!.status!;
  return { epoch: target, firstSeq: s.epochFirstSeq, detail: s.lastRound?.reason ?? '', elapsedMs: Date.now() - startedMs, members: future.map((m) => m.id) };
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
    console.log(`epoch ${r.epoch} in force from seq ${r.firstSeq} (${r.detail}); old shares deleted on every ring server; ${(r.elapsedMs / 1000).toFixed(1)} s`);
    return 0;
  }
  const old = parsed.positional[0];
  const replacement = parsed.flags.get('with');
  if (!old || typeof replacement !== 'string') throw new InvalidArgumentError('usage: cluster replace-node OLD --with NEW');
  const r = await replaceNode(config, old, replacement, timeoutMs, (line) => console.log(line));
  console.log(`epoch ${r.epoch} in force from seq ${r.firstSeq}; ring members [${r.members.join(', ')}]; ${old} stopped, its share deleted; ${(r.elapsedMs / 1000).toFixed(1)} s`);
  return 0;
}
