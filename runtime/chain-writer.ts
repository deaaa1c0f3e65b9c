/**
 * A workload for drills, process tests and the cluster benchmark: one writer per ring client,
 * writing a chain of versions where every write demands the version after the last acknowledged
 * one. An acknowledged write the ring lost (or reordered) makes a later write fail, so "one more
 * write demanding the last acknowledged version commits" proves the acknowledged history is there.
 *
 * It speaks whichever service the ring runs (detected once per session with a probe):
 *  - the versioned KV service (ring/kv-service.ts): the writer also recomputes the VGUID chain,
 *    vguid_v = H(root-tag ‖ vguid_{v−1} ‖ [key, v] ‖ value), and checks every answer against it;
 *  - the Pond object service (ring/object-service.ts): signed updates with a `version-is`
 *    predicate; the object is created by `prepare()`, and the ring's version must advance by one.
 */
import { bytesEqual } from '../core/bytes.ts';
import { asBytesField, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { aguidOf, HashTag, taggedHash, type Signer } from '../core/crypto.ts';
import { encodeUpdate } from '../core/update/update-codec.ts';
import { signUpdate } from '../core/update/update-signature.ts';
import type { Action, Clause } from '../core/update/update.ts';
import { kvKeyFor, kvOperation } from '../ring/kv-service.ts';
import { decodeObjectResult } from '../ring/object-result.ts';
import { nodeCrypto } from './node-crypto.ts';
import type { RingSession } from './ring-session.ts';

export type RingService = 'kv' | 'object';

export interface ChainWriter {
  readonly version: number;
  readonly acknowledged: number;
  /** Creates the object if the service needs one (not counted as an acknowledged write). */
  prepare(timeoutMs: number): Promise<void>;
  /** One chained write of `value`; resolves with the client-side latency in ms. */
  write(value: Uint8Array, timeoutMs: number): Promise<number>;
  /** One chained write naming an uploaded block (2 MiB writes: the bytes went by put-block). */
  writeBlock(bguid: Uint8Array, blockBytes: number, timeoutMs: number): Promise<number>;
}

const serviceOfSession = new WeakMap<RingSession, Promise<RingService>>();

/** Which service the ring executes: a KV probe is answered 'ok' by the KV service only. */
export function ringServiceOf(session: RingSession, clientIndex = 0): Promise<RingService> {
  let known = serviceOfSession.get(session);
  if (!known) {
    known = (async () => {
      const probe = kvOperation(kvKeyFor(session.clientKeys[clientIndex]!, 'service-probe'), -1, new Uint8Array(1));
      const c = await withTimeout(session.submit(clientIndex, probe), 60_000, 'service probe');
      const t = decode(c.result, 4096, 'probe result') as unknown[];
      return Array.isArray(t) && t[0] === 'ok' ? 'kv' : 'object';
    })();
    serviceOfSession.set(session, known);
  }
  return known;
}

export async function chainWriter(session: RingSession, clientIndex: number, name: string): Promise<ChainWriter> {
  const service = await ringServiceOf(session);
  return service === 'kv' ? new KvChainWriter(session, clientIndex, name) : new ObjectChainWriter(session, clientIndex, name);
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

class KvChainWriter implements ChainWriter {
  private readonly key: string;
  version = 0;
  acknowledged = 0;
  private vguid: Uint8Array = new Uint8Array(32);

  constructor(
    private readonly session: RingSession,
    private readonly clientIndex: number,
    name: string,
  ) {
    this.key = kvKeyFor(session.clientKeys[clientIndex]!, name);
  }

  async prepare(): Promise<void> {}

  async write(value: Uint8Array, timeoutMs: number): Promise<number> {
    const startedMs = performance.now();
    const completion = await withTimeout(this.session.submit(this.clientIndex, kvOperation(this.key, this.version, value)), timeoutMs, `write ${this.key} v${this.version + 1}`);
    const t = asTuple(decode(completion.result, 256, 'kv result'), 'kv result', 1, 3);
    if (t[0] !== 'ok') throw new Error(`write ${this.key} v${this.version + 1}: ring answered ${JSON.stringify(t[0])} ${String(t[1])}`);
    const version = asUint(t[1], 'version');
    const vguid = asBytesField(t[2], 'vguid', { bytes: 32 });
    const expected = taggedHash(nodeCrypto, HashTag.rootBlock, this.vguid, encode([this.key, this.version + 1]), value);
    if (version !== this.version + 1 || !bytesEqual(vguid, expected)) throw new Error(`write ${this.key}: version ${version} breaks the chain`);
    this.version = version;
    this.vguid = vguid;
    this.acknowledged += 1;
    return performance.now() - startedMs;
  }

  writeBlock(bguid: Uint8Array, _blockBytes: number, timeoutMs: number): Promise<number> {
    return this.write(bguid, timeoutMs);
  }
}

class ObjectChainWriter implements ChainWriter {
  /** The ring client's own key and nonces, as an SDK client's (the object service runs an update only for its writer's key). */
  private readonly signer: Signer;
  private readonly aguid: Uint8Array;
  version = 0;
  acknowledged = 0;

  constructor(
    private readonly session: RingSession,
    private readonly clientIndex: number,
    private readonly name: string,
  ) {
    this.signer = session.clientIdentity(clientIndex).signer;
    this.aguid = aguidOf(nodeCrypto, this.signer.publicKey, name);
  }

  private created = false;

  async prepare(timeoutMs: number): Promise<void> {
    if (this.created) return;
    const create: Action = { kind: 'create', name: this.name, blockBytes: 4 * 1024 * 1024, fanoutMax: 64, writerPublicKeys: [] };
    // A create makes version 0 (the empty object); the first write is version 1.
    await this.submit([{ predicates: [{ kind: 'always' }], actions: [create] }], timeoutMs, 'create', 0);
    this.created = true;
  }

  async write(value: Uint8Array, timeoutMs: number): Promise<number> {
    const startedMs = performance.now();
    const clause: Clause = { predicates: [{ kind: 'version-is', version: this.version }], actions: [{ kind: 'write-bytes', offset: 0, bytes: value }] };
    await this.submit([clause], timeoutMs, `write v${this.version + 1}`);
    this.acknowledged += 1;
    return performance.now() - startedMs;
  }

  async writeBlock(bguid: Uint8Array, blockBytes: number, timeoutMs: number): Promise<number> {
    const startedMs = performance.now();
    const clause: Clause = {
      predicates: [{ kind: 'version-is', version: this.version }],
      actions: [{ kind: 'append-blocks', blocks: [{ kind: 'ref', bguid, length: blockBytes }] }],
    };
    await this.submit([clause], timeoutMs, `block write v${this.version + 1}`);
    this.acknowledged += 1;
    return performance.now() - startedMs;
  }

  private async submit(clauses: Clause[], timeoutMs: number, what: string, expectedVersion = this.version + 1): Promise<void> {
    const nonce = this.session.clientIdentity(this.clientIndex).nextNonce;
    const update = signUpdate(nodeCrypto, this.signer, { aguid: this.aguid, writerPublicKey: this.signer.publicKey, nonce, clauses });
    const completion = await withTimeout(this.session.submit(this.clientIndex, encodeUpdate(update)), timeoutMs, `${this.name}: ${what}`);
    const result = decodeObjectResult(completion.result);
    if (result.outcome !== 'commit') throw new Error(`${this.name}: ${what}: ring answered abort ${result.reason} (${result.detail})`);
    if (result.version !== expectedVersion) throw new Error(`${this.name}: ${what}: version ${result.version} after ${this.version} breaks the chain`);
    this.version = result.version;
  }
}
