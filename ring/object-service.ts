/**
 * The ring's replicated service for Pond updates (DESIGN.md "Updates"): the object table (AGUID ->
 * latest VGUID and version) and the last nonce per writer, executing each ordered operation —
 * an encoded, signed Update — through core/update's applyUpdate over the replica's block store.
 * Every evaluated update (commit or abort) yields a core/threshold certificate statement; heartbeats
 * re-state the latest version of each object.
 *
 * Checkpointed state is the table and the nonces; blocks are content-addressed and travel
 * separately: a replica that installs a table by state transfer fetches the blocks its heads reach
 * (missingStateBlocks) before it executes again, and a replica that lacks a block an update names
 * fetches it before executing (blocksNeeded), so every replica applies with the same blocks.
 */
import { compareBytes, fromHex, toHex } from '../core/bytes.ts';
import { asBytesField, asList, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { hashBytes, type Crypto } from '../core/crypto.ts';
import { IntegrityError } from '../core/errors.ts';
import type { KvStore } from '../core/store.ts';
import { certificateStatementFromTuple, encodeCertificateStatement, encodeHeartbeatStatement, type CertificateStatement } from '../core/threshold/statements.ts';
import { applyUpdate } from '../core/update/apply.ts';
import { nonceIsFresh } from '../core/update/nonce.ts';
import { decodeUpdate } from '../core/update/update-codec.ts';
import { updateDigest, verifyUpdateSignature } from '../core/update/update-signature.ts';
import type { BlockSource, Update } from '../core/update/update.ts';
import { bguidOf, type BlockKind } from '../core/version/block.ts';
import type { BlockStore } from '../core/version/block-store.ts';
import { decodeInteriorBlock, type Pointer } from '../core/version/interior-block.ts';
import { decodeRootBlock, type Head } from '../core/version/root-block.ts';
import { encodeObjectResult } from './object-result.ts';
import type { ClientConfig } from './config.ts';
import type { ExecutionContext, ExecutionResult, ReplicatedService } from './service.ts';

const tablePrefix = 'svc/obj/';
const noncePrefix = 'svc/nonce/';
const heartbeatObjectsMax = 256;
const missingReportMax = 64;
/**
 * The blocks each operation (these exact bytes, which never change) names by reference; `absent`
 * from `start` on are those a limited blocksNeeded call has not found here yet.
 */
const refsOfOperation = new WeakMap<Uint8Array, { refs: Uint8Array[]; absent: Uint8Array[]; start: number; corruptSeen: number }>();

export interface ObjectServiceOptions {
  readonly crypto: Crypto;
  readonly store: KvStore;
  readonly blocks: BlockStore;
  /** Ring id written into every statement. */
  readonly ringId: Uint8Array;
}

const refused = (reason: string, detail: string): ExecutionResult => ({
  result: encodeObjectResult({ outcome: 'abort', reason, detail, currentVersion: 0 }),
  statement: null,
});

function blockRefs(update: Update): Uint8Array[] {
  const out: Uint8Array[] = [];
  const add = (b: BlockSource): void => {
    if (b.kind === 'ref') out.push(b.bguid);
  };
  for (const clause of update.clauses) {
    for (const a of clause.actions) {
      if (a.kind === 'append-blocks') a.blocks.forEach(add);
      else if (a.kind === 'replace-block' || a.kind === 'insert-block') add(a.block);
    }
  }
  return out;
}

/**
 * ClientConfig.certificateBinding for this service: a certificate answers an update only if its
 * statement carries that update's digest (the ring executes an update once: its nonce is spent).
 */
export function objectCertificateBinding(crypto: Crypto): NonNullable<ClientConfig['certificateBinding']> {
  return {
    operationKey: (operation) => {
      try {
        return updateDigest(crypto, decodeUpdate(operation));
      } catch {
        return null;
      }
    },
    statementKey: (statement) => {
      try {
        return certificateStatementFromTuple(decode(statement, 4096, 'certificate statement')).updateDigest;
      } catch {
        return null;
      }
    },
  };
}

export class ObjectService implements ReplicatedService {
  private readonly crypto: Crypto;
  private readonly store: KvStore;
  readonly blocks: BlockStore;
  private readonly ringId: Uint8Array;
  /** AGUID hex -> head VGUID and version. */
  private readonly table = new Map<string, { version: number; vguid: Uint8Array }>();
  private readonly nonces = new Map<string, number>();

  constructor(options: ObjectServiceOptions) {
    this.crypto = options.crypto;
    this.store = options.store;
    this.blocks = options.blocks;
    this.ringId = options.ringId;
    for (const k of this.store.keys(tablePrefix)) {
      const t = asTuple(decode(this.store.get(k)!, 128, 'object entry'), 'object entry', 2);
      this.table.set(k.slice(tablePrefix.length), { version: asUint(t[0], 'version'), vguid: asBytesField(t[1], 'vguid', { bytes: hashBytes }) });
    }
    for (const k of this.store.keys(noncePrefix)) this.nonces.set(k.slice(noncePrefix.length), asUint(decode(this.store.get(k)!, 16), 'nonce'));
  }

  /** The latest version of an object, or undefined. */
  headOf(aguid: Uint8Array): { version: number; vguid: Uint8Array } | undefined {
    return this.table.get(toHex(aguid));
  }

  objectCount(): number {
    return this.table.size;
  }

  execute(clientKey: Uint8Array, operation: Uint8Array, context: ExecutionContext): ExecutionResult {
    let update: Update;
    try {
      update = decodeUpdate(operation);
    } catch {
      return refused('malformed', 'the operation is not an encoded update');
    }
    // Only signed updates execute; a bad signature is refused without a statement.
    if (!verifyUpdateSignature(this.crypto, update)) return refused('bad-signature', 'the update signature does not verify');
    // Only its writer submits an update (the request envelope is signed by the ring client's key,
    // so nobody else can). A copy submitted under another key ran first and made the writer's own
    // request a 'replay', which the SDK signs again: one faulty primary, or anyone who saw the
    // update on the wire, could make a non-idempotent append apply twice (session-21 review).
    if (compareBytes(update.writerPublicKey, clientKey) !== 0) {
      return refused('unauthorized', "submitted under another key than its writer's (only the writer submits its updates)");
    }
    const writerHex = toHex(update.writerPublicKey);
    if (!nonceIsFresh(this.nonces.get(writerHex), update.nonce)) return refused('replay', `nonce ${update.nonce} is not above the writer's last`);
    this.nonces.set(writerHex, update.nonce);
    this.store.put(noncePrefix + writerHex, encode(update.nonce));
    const aguidHex = toHex(update.aguid);
    const entry = this.table.get(aguidHex);
    const head: Head | null = entry ? { vguid: entry.vguid, root: decodeRootBlock(this.rootOf(entry.vguid)) } : null;
    const outcome = applyUpdate({ crypto: this.crypto, blocks: this.blocks, timestampMs: context.timestampMs }, head, update);
    const digest = updateDigest(this.crypto, update);
    const base = { ringId: this.ringId, aguid: update.aguid, rootFragmentRoot: new Uint8Array(0), updateDigest: digest, timestampMs: context.timestampMs };
    if (outcome.kind === 'commit') {
      const { version } = outcome.head.root;
      this.table.set(aguidHex, { version, vguid: outcome.head.vguid });
      this.store.put(tablePrefix + aguidHex, encode([version, outcome.head.vguid]));
      const statement: CertificateStatement = { ...base, version, vguid: outcome.head.vguid, outcome: 'commit' };
      return { result: encodeObjectResult({ outcome: 'commit', version, vguid: outcome.head.vguid }), statement: encodeCertificateStatement(statement) };
    }
    const statement: CertificateStatement = { ...base, version: entry?.version ?? 0, vguid: entry?.vguid ?? new Uint8Array(0), outcome: 'abort' };
    const reason = outcome.reason === 'predicates-failed' ? 'predicate-failed' : outcome.reason;
    const result = encodeObjectResult({ outcome: 'abort', reason, detail: outcome.detail, currentVersion: outcome.currentVersion ?? 0 });
    return { result, statement: encodeCertificateStatement(statement) };
  }

  /**
   * A head's root block. Missing only when it was found corrupt (and discarded) while this replica
   * ran: the replica stops, and its start fetches the block again (missingStateBlocks).
   */
  private rootOf(vguid: Uint8Array): Uint8Array {
    const bytes = this.blocks.get(vguid, 'root');
    if (!bytes) throw new IntegrityError(`the root block of head ${toHex(vguid)} is missing from the store (found corrupt?)`);
    return bytes;
  }

  /**
   * Uploaded blocks an operation names that this replica does not hold (executing without them
   * would diverge). With `limit`, the first that many, looking only at blocks earlier limited calls
   * did not find (a ring server deletes no block but a corrupt one, after which all are looked at again).
   */
  blocksNeeded(operation: Uint8Array, limit?: number): Uint8Array[] {
    // A request is asked about on arrival and again at each batch it waits for: decode it once.
    let entry = refsOfOperation.get(operation);
    if (entry === undefined) {
      let refs: Uint8Array[];
      try {
        refs = blockRefs(decodeUpdate(operation));
      } catch {
        refs = [];
      }
      entry = { refs, absent: refs.slice(), start: 0, corruptSeen: this.corruptBlocksFound() };
      refsOfOperation.set(operation, entry);
    }
    if (limit === undefined) return entry.refs.filter((b) => !this.blocks.has(b));
    if (entry.corruptSeen !== this.corruptBlocksFound()) {
      // A block found corrupt since is gone again: look at them all once more.
      entry.corruptSeen = this.corruptBlocksFound();
      entry.absent = entry.refs.slice();
      entry.start = 0;
    }
    const { absent } = entry;
    const missing: Uint8Array[] = [];
    let i = entry.start;
    while (i < absent.length && missing.length < limit) {
      const b = absent[i++]!;
      if (!this.blocks.has(b)) missing.push(b);
    }
    // The ones found here are passed over from now on: the missing ones close up before i.
    entry.start = i - missing.length;
    for (let k = 0; k < missing.length; k++) absent[entry.start + k] = missing[k]!;
    return missing;
  }

  corruptBlocksFound(): number {
    return this.blocks.corruptCount ?? 0;
  }

  putBlock(kind: BlockKind, bytes: Uint8Array): Uint8Array {
    return this.blocks.put(kind, bytes);
  }

  getBlock(bguid: Uint8Array): { kind: BlockKind; bytes: Uint8Array } | undefined {
    for (const kind of ['data', 'interior', 'root'] as const) {
      const bytes = this.blocks.get(bguid, kind);
      if (bytes) return { kind, bytes };
    }
    return undefined;
  }

  /** After a state transfer: blocks the heads reach that are not here yet (a bounded first few). */
  missingStateBlocks(): Uint8Array[] {
    const missing: Uint8Array[] = [];
    const seen = new Set<string>();
    const walk = (p: Pointer, height: number): void => {
      if (missing.length >= missingReportMax || seen.has(toHex(p.bguid))) return;
      seen.add(toHex(p.bguid));
      if (height === 0) {
        if (!this.blocks.has(p.bguid)) missing.push(p.bguid);
        return;
      }
      const bytes = this.blocks.get(p.bguid, 'interior');
      if (!bytes) return void missing.push(p.bguid);
      for (const c of decodeInteriorBlock(bytes).children) walk(c, height - 1);
    };
    for (const { vguid } of this.table.values()) {
      const bytes = this.blocks.get(vguid, 'root');
      if (!bytes) {
        missing.push(vguid);
        continue;
      }
      const tree = decodeRootBlock(bytes).tree;
      if (tree) walk(tree, tree.height);
      if (missing.length >= missingReportMax) break;
    }
    return missing;
  }

  /**
   * At most heartbeatObjectsMax objects per heartbeat batch. With more objects, successive
   * heartbeats take successive slices of the table (sorted by AGUID), chosen by the batch's agreed
   * timestamp so every replica picks the same one: each object is re-certified at least every
   * ceil(objects / heartbeatObjectsMax) periods rather than only the first objects ever.
   */
  heartbeatStatements(timestampMs: number, periodMs: number): Uint8Array[] {
    const sliceCount = Math.max(1, Math.ceil(this.table.size / heartbeatObjectsMax));
    const slice = Math.floor(timestampMs / Math.max(1, periodMs)) % sliceCount;
    return [...this.table.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .slice(slice * heartbeatObjectsMax, (slice + 1) * heartbeatObjectsMax)
      .map(([aguidHex, e]) => encodeHeartbeatStatement({ ringId: this.ringId, aguid: fromHex(aguidHex), version: e.version, vguid: e.vguid, timestampMs }));
  }

  snapshot(): Uint8Array {
    const table = [...this.table.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const nonces = [...this.nonces.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return encode([table.map(([k, e]) => [k, e.version, e.vguid]), nonces]);
  }

  restore(snapshot: Uint8Array): boolean {
    let table: [string, { version: number; vguid: Uint8Array }][];
    let nonces: [string, number][];
    try {
      const t = asTuple(decode(snapshot, 1 << 28, 'object snapshot'), 'object snapshot', 2);
      table = asList(t[0], 'table', 1 << 22, (v) => {
        const e = asTuple(v, 'table entry', 3);
        return [asString(e[0], 'aguid', 64), { version: asUint(e[1], 'version'), vguid: asBytesField(e[2], 'vguid', { bytes: hashBytes }) }];
      });
      nonces = asList(t[1], 'nonces', 1 << 22, (v) => {
        const e = asTuple(v, 'nonce entry', 2);
        return [asString(e[0], 'writer', 64), asUint(e[1], 'nonce')];
      });
    } catch {
      return false;
    }
    for (const k of [...this.store.keys(tablePrefix), ...this.store.keys(noncePrefix)]) this.store.delete(k);
    this.table.clear();
    this.nonces.clear();
    for (const [k, e] of table) {
      this.table.set(k, e);
      this.store.put(tablePrefix + k, encode([e.version, e.vguid]));
    }
    for (const [k, n] of nonces) {
      this.nonces.set(k, n);
      this.store.put(noncePrefix + k, encode(n));
    }
    return true;
  }
}

/** Checks a fetched block against the BGUID it was asked for. */
export function blockMatches(crypto: Crypto, bguid: Uint8Array, kind: BlockKind, bytes: Uint8Array): boolean {
  return compareBytes(bguidOf(crypto, kind, bytes), bguid) === 0;
}
