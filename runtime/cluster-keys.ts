/**
 * `cluster init`: the responsible party makes every node's ed25519 identity, deals the ring's
 * threshold BLS key (Shamir shares with Feldman commitments, core/threshold/dealer.ts), and writes
 * a ring descriptor — ring id, members, public keys, ring public key — signed by an admin key.
 * Secrets go under the data directory with mode 0600, never into the repository. A node trusts
 * the descriptor only if the admin signature verifies and its own keys match it.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fromHex, toHex } from '../core/bytes.ts';
import { encode } from '../core/codec.ts';
import { taggedHash, HashTag, type Crypto } from '../core/crypto.ts';
import { ConfigError } from '../core/errors.ts';
import type { RandomSource } from '../core/machine.ts';
import { dealRingKey, verifyKeyShare, type KeyShare } from '../core/threshold/dealer.ts';
import { clusterPaths, type ClusterConfig, type Role } from './cluster-config.ts';

export interface DescriptorNode {
  readonly name: string;
  readonly role: Role;
  readonly url: string;
  readonly publicKey: string;
  /** 1-based BLS share index for ring servers; 0 for others. */
  readonly shareIndex: number;
}

export interface RingDescriptor {
  readonly version: 1;
  readonly cluster: string;
  readonly ringId: string;
  readonly f: number;
  readonly threshold: number;
  readonly ringPublicKey: string;
  readonly commitments: readonly string[];
  readonly nodes: readonly DescriptorNode[];
  readonly adminPublicKey: string;
  /**
   * The ring's members now, by name in share-index order, and the key epoch they hold shares of:
   * absent until a membership change (`cluster replace-node`) re-signs the descriptor; until then
   * the ring is the nodes of role `ring`. Clients talk to these; the roles in `nodes` stay those
   * of the config (a spare that replaced a member keeps role `spare` and runs from its join file).
   */
  readonly ring?: { readonly epoch: number; readonly members: readonly string[] };
  readonly signature: string;
}

const descriptorDomain = 'oceanstore/ring-descriptor/v1';

/** Crypto-strength randomness for the dealer and key generation (the runtime's RandomSource). */
export const secureRandom: RandomSource = {
  int: (bound) => randomInt(bound),
  float: () => randomInt(2 ** 48) / 2 ** 48,
  bytes: (count) => new Uint8Array(randomBytes(count)),
};

/** The bytes the admin signs: every field but the signature. */
export function descriptorSignedPart(d: Omit<RingDescriptor, 'signature'>): Uint8Array {
  return encode([
    descriptorDomain, d.version, d.cluster, d.ringId, d.f, d.threshold, d.ringPublicKey, [...d.commitments],
    d.nodes.map((n) => [n.name, n.role, n.url, n.publicKey, n.shareIndex]), d.adminPublicKey,
    // Only when present, so descriptors written before the field existed still verify.
    ...(d.ring ? [['ring', d.ring.epoch, [...d.ring.members]]] : []),
  ]);
}

/** The ring `cluster init` dealt (epoch 0): nodes of role `ring` in share-index order; replica index = shareIndex − 1. */
export function initialRingOf(descriptor: RingDescriptor): { id: string; publicKey: Uint8Array }[] {
  return descriptor.nodes
    .filter((n) => n.role === 'ring')
    .sort((a, b) => a.shareIndex - b.shareIndex)
    .map((n) => ({ id: n.name, publicKey: fromHex(n.publicKey) }));
}

/**
 * The ring's current members in share-index order: the descriptor's signed `ring` list after a
 * membership change, else the initial ring. What clients (and admin commands) talk to.
 */
export function currentRingOf(descriptor: RingDescriptor): { id: string; publicKey: Uint8Array }[] {
  if (!descriptor.ring) return initialRingOf(descriptor);
  return descriptor.ring.members.map((name) => {
    const node = descriptor.nodes.find((n) => n.name === name);
    if (!node) throw new ConfigError(`ring descriptor lists ring member '${name}' that is not one of its nodes`);
    return { id: name, publicKey: fromHex(node.publicKey) };
  });
}

/**
 * Re-signs the descriptor with the ring's members after a membership change (same ring key, ids
 * and nodes) and replaces the file atomically. Returns the new descriptor.
 */
export function resignRing(config: ClusterConfig, descriptor: RingDescriptor, adminSecretKey: Uint8Array, epoch: number, members: readonly string[], crypto: Crypto): RingDescriptor {
  const size = currentRingOf(descriptor).length;
  if (members.length !== size) throw new ConfigError(`a ring of ${members.length} members, expected ${size}`);
  for (const name of members) if (!descriptor.nodes.some((n) => n.name === name)) throw new ConfigError(`'${name}' is not a node of this cluster`);
  const { signature: _old, ...rest } = descriptor;
  const body = { ...rest, ring: { epoch, members: [...members] } };
  const next: RingDescriptor = { ...body, signature: toHex(crypto.ed25519Sign(adminSecretKey, descriptorSignedPart(body))) };
  const path = clusterPaths(config).descriptor;
  writeFileSync(`${path}.tmp`, JSON.stringify(next, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
  return next;
}

/**
 * Keeps a later descriptor node `name` learned from its peers in the node's own directory, so a
 * restart starts from it (the shared descriptor file is the admin's: only its tools write it, and
 * a node writing there could race a re-sign and put an older ring back). Temp file, then rename.
 */
export function saveLearnedDescriptor(config: ClusterConfig, name: string, next: RingDescriptor): void {
  const path = clusterPaths(config).learnedDescriptor(name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(`${path}.tmp`, JSON.stringify(next, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
}

/**
 * The descriptor node `name` starts from: the admin's file, or the one it learned from its peers
 * if that is a later ring of the same admin (isLaterRing); `onIgnored` hears why a learned one was not taken.
 */
export function loadNodeDescriptor(config: ClusterConfig, name: string, crypto: Crypto, onIgnored: (reason: string) => void = () => {}): RingDescriptor {
  const descriptor = loadDescriptor(config, crypto);
  const path = clusterPaths(config).learnedDescriptor(name);
  if (!existsSync(path)) return descriptor;
  try {
    const learned = parseDescriptor(readFileSync(path, 'utf8'), `learned descriptor ${path}`);
    return isLaterRing(descriptor, learned, crypto) ? learned : descriptor;
  } catch (error) {
    onIgnored((error as Error).message);
    return descriptor;
  }
}

function writeSecret(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${what} at ${path}: ${(error as Error).message} (run \`cluster init\` first?)`);
  }
}

function readJson(path: string, what: string): Record<string, unknown> {
  const text = readText(path, what);
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`cannot read ${what} at ${path}: ${(error as Error).message} (run \`cluster init\` first?)`);
  }
}

export function isInitialized(config: ClusterConfig): boolean {
  return existsSync(clusterPaths(config).descriptor);
}

/** Makes all keys and the signed descriptor. Refuses to overwrite an existing cluster. */
export function initCluster(config: ClusterConfig, crypto: Crypto, random: RandomSource = secureRandom): RingDescriptor {
  const paths = clusterPaths(config);
  if (existsSync(paths.descriptor)) throw new ConfigError(`cluster already initialised: ${paths.descriptor} exists (delete ${config.dataDir} to start over)`);
  const ring = config.nodes.filter((n) => n.role === 'ring');
  const threshold = config.f + 1;
  const dealt = dealRingKey(random, ring.length, threshold);
  const adminSecret = random.bytes(32);
  writeSecret(paths.adminKey, { secretKey: toHex(adminSecret) });
  const nodes: DescriptorNode[] = config.nodes.map((node) => {
    const secretKey = random.bytes(32);
    writeSecret(paths.identity(node.name), { name: node.name, secretKey: toHex(secretKey) });
    const ringIndex = ring.findIndex((r) => r.name === node.name);
    if (ringIndex >= 0) {
      const share = dealt.shares[ringIndex]!;
      writeSecret(paths.share(node.name), { index: share.index, secretKey: toHex(share.secretKey) });
    }
    return {
      name: node.name, role: node.role, url: `ws://${node.host}:${node.port}`,
      publicKey: toHex(crypto.ed25519PublicKey(secretKey)), shareIndex: ringIndex >= 0 ? ringIndex + 1 : 0,
    };
  });
  const body = {
    version: 1 as const, cluster: config.name,
    ringId: toHex(taggedHash(crypto, HashTag.identity, dealt.publicKey)),
    f: config.f, threshold, ringPublicKey: toHex(dealt.publicKey), commitments: dealt.commitments.map(toHex),
    nodes, adminPublicKey: toHex(crypto.ed25519PublicKey(adminSecret)),
  };
  const descriptor: RingDescriptor = { ...body, signature: toHex(crypto.ed25519Sign(adminSecret, descriptorSignedPart(body))) };
  writeFileSync(paths.descriptor, JSON.stringify(descriptor, null, 2) + '\n');
  return descriptor;
}

/** True when the descriptor carries a valid signature by `adminPublicKey` (hex). */
function signedBy(d: RingDescriptor, adminPublicKey: string, crypto: Crypto): boolean {
  const { signature, ...body } = d;
  try {
    return crypto.ed25519Verify(fromHex(adminPublicKey), descriptorSignedPart(body), fromHex(signature));
  } catch {
    return false;
  }
}

/**
 * Whether `next` (e.g. the descriptor file read again) is a later membership of `current`'s ring:
 * signed by the admin key `current` names (pinned: a file rewritten under another key is refused),
 * for the same cluster, ring id, ring key, threshold and nodes, with a ring list of a later epoch.
 * False for the same or an older list; ConfigError for anything that is not this ring's admin's word.
 */
export function isLaterRing(current: RingDescriptor, next: RingDescriptor, crypto: Crypto): boolean {
  if (!signedBy(next, current.adminPublicKey, crypto)) throw new ConfigError('ring descriptor: not signed by this ring\'s admin key');
  // A canonical tuple, not JSON text: the same descriptor with its keys in another order is the same ring.
  const same = (d: RingDescriptor): string =>
    toHex(encode([d.cluster, d.ringId, d.f, d.threshold, d.ringPublicKey, [...d.commitments], d.nodes.map((n) => [n.name, n.role, n.url, n.publicKey, n.shareIndex])]));
  if (same(next) !== same(current)) throw new ConfigError('ring descriptor: another cluster or ring key than this one');
  const members = ringNamesOf(next); // every listed member is a node
  if (members.length !== currentRingOf(current).length || new Set(members).size !== members.length) {
    throw new ConfigError('ring descriptor: the ring list must name as many distinct members as before');
  }
  return ringEpochOf(next) > ringEpochOf(current);
}

/**
 * Watches a descriptor file for a re-signed version (`cluster replace-node` replaces it atomically):
 * checks its inode, modification time and size every `intervalMs` and hands each new version read to `onRead`
 * (which decides with isLaterRing whether to take it); a file that cannot be read or parsed, and
 * anything `onRead` throws (a descriptor it refuses), goes to `onError`. Returns the function that
 * stops watching. The timer does not keep a process alive.
 */
export function watchDescriptorFile(path: string, intervalMs: number, onRead: (d: RingDescriptor) => void, onError: (e: Error) => void): () => void {
  // The inode too: a file replaced by rename within the clock's granularity keeps its mtime.
  const versionOf = (): string | null => {
    try {
      const st = statSync(path);
      return `${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch {
      return null;
    }
  };
  // Unseen at first: a re-sign between the caller's read and this call is not missed (the first
  // tick reads the file once; isLaterRing ignores the same version).
  let seen: string | null = null;
  const timer = setInterval(() => {
    const version = versionOf();
    if (version === seen || version === null) return;
    seen = version;
    let d: RingDescriptor;
    try {
      d = parseDescriptor(readFileSync(path, 'utf8'), `ring descriptor ${path}`);
    } catch (error) {
      return onError(error instanceof ConfigError ? error : new ConfigError(`cannot read ring descriptor ${path}: ${(error as Error).message}`));
    }
    try {
      onRead(d);
    } catch (error) {
      onError(error as Error);
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * A descriptor's JSON checked for shape and rebuilt from the fields of the type only: what came
 * from a file or from a peer becomes a RingDescriptor only through here, so a malformed one is a
 * ConfigError and not a TypeError deep inside a signature check, and fields the signature does
 * not cover (a peer's padding, say) are not kept, saved or passed on. The signature is not checked here.
 */
export function parseDescriptor(json: string, what = 'ring descriptor'): RingDescriptor {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (error) {
    throw new ConfigError(`${what}: not JSON (${(error as Error).message})`);
  }
  const bad = (field: string): never => {
    throw new ConfigError(`${what}: ${field} is missing or malformed`);
  };
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const isString = (x: unknown): x is string => typeof x === 'string';
  const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (!isObject(v)) return bad('the descriptor');
  if (v.version !== 1) bad('version');
  for (const field of ['cluster', 'ringId', 'ringPublicKey', 'adminPublicKey', 'signature']) if (!isString(v[field])) bad(field);
  if (!isCount(v.f)) bad('f');
  if (!isCount(v.threshold)) bad('threshold');
  if (!Array.isArray(v.commitments) || !v.commitments.every(isString)) bad('commitments');
  if (!Array.isArray(v.nodes) || v.nodes.length === 0) bad('nodes');
  for (const n of v.nodes as unknown[]) {
    if (!isObject(n) || !isString(n.name) || !isString(n.role) || !isString(n.url) || !isString(n.publicKey) || !isCount(n.shareIndex)) bad('nodes[]');
  }
  const r = v.ring;
  if (r !== undefined && (!isObject(r) || !isCount(r.epoch) || !Array.isArray(r.members) || !r.members.every(isString))) bad('ring');
  const nodes = (v.nodes as Record<string, unknown>[]).map((n) => ({
    name: n.name as string, role: n.role as Role, url: n.url as string, publicKey: n.publicKey as string, shareIndex: n.shareIndex as number,
  }));
  // One key is one Tapestry id and one transport identity: two nodes under it take each other's place.
  const firstWithKey = new Map<string, string>();
  for (const n of nodes) {
    const other = firstWithKey.get(n.publicKey);
    if (other !== undefined) throw new ConfigError(`${what}: nodes ${other} and ${n.name} share a public key`);
    firstWithKey.set(n.publicKey, n.name);
  }
  const ring = r === undefined ? {} : { ring: { epoch: (r as { epoch: number }).epoch, members: [...((r as { members: string[] }).members)] } };
  return {
    version: 1, cluster: v.cluster as string, ringId: v.ringId as string, f: v.f as number, threshold: v.threshold as number,
    ringPublicKey: v.ringPublicKey as string, commitments: [...(v.commitments as string[])], nodes, adminPublicKey: v.adminPublicKey as string,
    ...ring, signature: v.signature as string,
  };
}

/** The ring's current members by name (see currentRingOf). */
export function ringNamesOf(descriptor: RingDescriptor): string[] {
  return currentRingOf(descriptor).map((m) => m.id);
}

/** The descriptor's ring epoch: 0 until a membership change re-signs it. */
export function ringEpochOf(descriptor: RingDescriptor): number {
  return descriptor.ring?.epoch ?? 0;
}

/** Reads the descriptor and checks the admin signature and that it matches the config's nodes. */
export function loadDescriptor(config: ClusterConfig, crypto: Crypto): RingDescriptor {
  const path = clusterPaths(config).descriptor;
  const d = parseDescriptor(readText(path, 'ring descriptor'), `ring descriptor ${path}`);
  if (!signedBy(d, d.adminPublicKey, crypto)) throw new ConfigError(`ring descriptor ${path}: admin signature does not verify (tampered or corrupt)`);
  currentRingOf(d); // every listed member is a node
  for (const node of config.nodes) {
    const entry = d.nodes.find((n) => n.name === node.name);
    if (!entry || entry.role !== node.role) throw new ConfigError(`ring descriptor ${path} has no ${node.role} '${node.name}': re-run init for this config`);
  }
  return d;
}

/** This node's ed25519 secret key, checked against the descriptor. */
export function loadIdentity(config: ClusterConfig, descriptor: RingDescriptor, name: string, crypto: Crypto): Uint8Array {
  const file = readJson(clusterPaths(config).identity(name), `identity of ${name}`);
  const secretKey = fromHex(String(file.secretKey));
  const entry = descriptor.nodes.find((n) => n.name === name);
  if (!entry || toHex(crypto.ed25519PublicKey(secretKey)) !== entry.publicKey) {
    throw new ConfigError(`identity of ${name} does not match the ring descriptor's public key`);
  }
  return secretKey;
}

/** A ring server's BLS key share, checked against the dealer's Feldman commitments. */
export function loadKeyShare(config: ClusterConfig, descriptor: RingDescriptor, name: string): KeyShare {
  const file = readJson(clusterPaths(config).share(name), `key share of ${name}`);
  const share: KeyShare = { index: Number(file.index), secretKey: fromHex(String(file.secretKey)) };
  const entry = descriptor.nodes.find((n) => n.name === name);
  if (!entry || entry.shareIndex !== share.index || !verifyKeyShare(share, descriptor.commitments.map(fromHex))) {
    throw new ConfigError(`key share of ${name} does not match the ring descriptor's commitments`);
  }
  return share;
}

/**
 * A ring server's epoch-0 share file, or null once a key refresh retired it (issue 10: the
 * shares of later epochs live in the node's store; the file must not resurrect the old one).
 */
export function loadKeyShareIfHeld(config: ClusterConfig, descriptor: RingDescriptor, name: string): KeyShare | null {
  const path = clusterPaths(config).share(name);
  if (existsSync(path) && readJson(path, `key share of ${name}`).retired !== undefined) return null;
  return loadKeyShare(config, descriptor, name);
}

/**
 * Overwrites a ring server's epoch-0 share file once its share was replaced by a refresh. The
 * secret is gone from the file system's view; its old blocks on disk are not scrubbed.
 */
export function retireKeyShare(config: ClusterConfig, name: string, retiredAtEpoch: number): void {
  writeSecret(clusterPaths(config).share(name), { retired: retiredAtEpoch });
}

/** The admin's ed25519 secret (only `cluster init` and reconfiguration commands need it). */
export function loadAdminKey(config: ClusterConfig, descriptor: RingDescriptor, crypto: Crypto): Uint8Array {
  const file = readJson(clusterPaths(config).adminKey, 'admin key');
  const secretKey = fromHex(String(file.secretKey));
  if (toHex(crypto.ed25519PublicKey(secretKey)) !== descriptor.adminPublicKey) {
    throw new ConfigError(`admin key at ${clusterPaths(config).adminKey} does not match the ring descriptor's admin public key`);
  }
  return secretKey;
}
