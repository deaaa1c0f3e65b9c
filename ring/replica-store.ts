/**
 * A replica's durable records in its KvStore (core/machine.ts durability contract: everything a
 * step writes is durable before that step's sends). Keys:
 *   ring/view                  [view, viewActive]
 *   ring/proposing             view: this replica sent (unpersisted) pre-prepares as its primary
 *   ring/voting                [view, seq]: this backup may have sent prepares up to seq in view
 *   ring/exec                  [lastExecuted, lastTimestampMs]
 *   ring/stable                [seq, checkpoint tuples]
 *   ring/slot/<seq>            [pre-prepares, slot's, prepared proof's and commit proof's (index each)]
 *   ring/client/<clientKeyHex> [nonce, requestDigest, seq, result]
 *   ring/snap/<seq>            snapshot bytes at a checkpoint
 *   ring/snapd/<seq>           the digest this replica computed for it (rot is told from divergence)
 *   ring/leaves/<seq>          [[statement, clientKey | null, nonce, replyTo]...]: an executed batch's
 *                              statements, written with its execution, deleted once certified
 *   ring/sent/<to>             [epoch, root, signature, leafCount, [[leaf..., leafIndex, path]...]]: the
 *                              certificates a certified span's clients were sent, kept (the latest
 *                              ones) to re-send after a restart
 * Records are our own bytes, but a corrupted disk must not crash the node silently into a wrong
 * state: decoders reuse the wire decoders and fail loudly on garbage. The caches of certificate
 * work (ring/leaves/, ring/sent/) are deleted instead: the ring certifies without them. Every
 * other record is a safety record (what this replica voted, prepared, executed or saw stable):
 * one that does not decode stops the replica with a CorruptRecordError naming its key.
 */
import { asBool, asList, asNullable, asString, asTuple, asUint, asBytesField, decode, encode } from '../core/codec.ts';
import type { KvStore } from '../core/store.ts';
import { ed25519PublicKeyBytes } from '../core/crypto.ts';
import { DecodeError } from '../core/errors.ts';
import { decodeRingMessage, replyToLengthMax, ringFrameBytesMax, toTuple } from './codec.ts';
import type { Checkpoint, CommitProof, PrePrepare, PreparedProof } from './messages.ts';
import type { Leaf } from './replica-certificates.ts';

const seqKeyDigits = 16;
export const slotKey = (seq: number): string => `ring/slot/${String(seq).padStart(seqKeyDigits, '0')}`;
export const snapshotKey = (seq: number): string => `ring/snap/${String(seq).padStart(seqKeyDigits, '0')}`;
/** The digest this replica computed for its snapshot at seq (what its vote carried), written with it. */
export const snapshotDigestKey = (seq: number): string => `ring/snapd/${String(seq).padStart(seqKeyDigits, '0')}`;
export const clientKeyOf = (hex: string): string => `ring/client/${hex}`;
export const leavesKey = (seq: number): string => `ring/leaves/${String(seq).padStart(seqKeyDigits, '0')}`;
export const sentKey = (seq: number): string => `ring/sent/${String(seq).padStart(seqKeyDigits, '0')}`;
export const seqOfKey = (key: string): number => Number(key.slice(key.lastIndexOf('/') + 1));
/**
 * [[from, to]...]: batches state transfers skipped above statements this replica executed and
 * keeps (ring/leaves/ records on both sides): written with the transfer, so a restarted replica
 * never reads a hole as batches without statements. A hole below every record kept is harmless
 * (recovery drops it), so the record is only rewritten at transfers.
 */
export const holesKey = 'ring/holes';
/** Holes a replica keeps at most (ring/replica-certificates.ts skippedByTransfer gives up what it holds rather than exceed it). */
export const holesMax = 1 << 12;
export function saveHoles(store: KvStore, holes: readonly { from: number; to: number }[]): void {
  if (holes.length === 0) store.delete(holesKey);
  else store.put(holesKey, encode(holes.map((h) => [h.from, h.to])));
}

/**
 * The holes record. One that does not decode is deleted with every statements record (a cache:
 * without its holes, records on both sides of one would read as batches without statements).
 */
export function loadHoles(store: KvStore): { from: number; to: number }[] {
  const bytes = store.get(holesKey);
  if (!bytes) return [];
  try {
    return asList(decode(bytes, 1 << 20, 'holes record'), 'holes', holesMax, (item) => {
      const t = asTuple(item, 'hole', 2);
      return { from: asUint(t[0], 'hole from'), to: asUint(t[1], 'hole to') };
    });
  } catch (error) {
    if (!(error instanceof DecodeError)) throw error;
    for (const key of store.keys('ring/leaves/')) store.delete(key);
    store.delete(holesKey);
    return [];
  }
}

const messageBytes = (m: Parameters<typeof toTuple>[0]): Uint8Array => encode(toTuple(m));

function asMessage<K extends string>(v: unknown, kind: K): unknown {
  const bytes = asBytesField(v, `stored ${kind}`, { bytesMax: ringFrameBytesMax });
  const m = decodeRingMessage(bytes);
  if (m.kind !== kind) throw new DecodeError(`stored record: expected ${kind}, found ${m.kind}`);
  return m;
}

/**
 * A safety record on this replica's disk does not decode. The replica does not start: guessing
 * would let it vote twice in a view or forget a prepared or executed batch, which its peers count
 * on it not to. Wiping the ring/ prefix is no safe way out either: the node would forget the same
 * things, and so count against f. docs/runtime.md says what to do.
 */
export class CorruptRecordError extends DecodeError {
  override name = 'CorruptRecordError';

  constructor(
    readonly key: string,
    cause: DecodeError,
  ) {
    super(`ring record '${key}' on this replica's disk does not decode (${cause.message}): it is a safety record, so the replica will not start (see docs/runtime.md, "Records that do not decode")`);
  }
}

/** `decodeRecord` applied to the record at `key` (undefined if absent); a DecodeError becomes a CorruptRecordError naming the key. */
export function loadRecord<T>(store: KvStore, key: string, decodeRecord: (bytes: Uint8Array) => T): T | undefined {
  const bytes = store.get(key);
  if (!bytes) return undefined;
  try {
    return decodeRecord(bytes);
  } catch (error) {
    if (error instanceof DecodeError) throw new CorruptRecordError(key, error);
    throw error;
  }
}

export interface SlotRecord {
  prePrepare: PrePrepare | null;
  prepared: PreparedProof | null;
  committed: CommitProof | null;
}

/** A slot's pre-prepare bytes, encoded once per object however many records and proofs name it. */
const encodedPrePrepares = new WeakMap<PrePrepare, Uint8Array>();

function prePrepareBytes(pp: PrePrepare): Uint8Array {
  let bytes = encodedPrePrepares.get(pp);
  if (!bytes) encodedPrePrepares.set(pp, (bytes = messageBytes(pp)));
  return bytes;
}

/**
 * [pre-prepares, index of the slot's pre-prepare | null, [index, prepares] | null, [index, commits]
 * | null]. The slot, its prepared proof and its commit proof usually name the same pre-prepare,
 * which carries the whole batch: it is stored once (and encoded once) instead of up to three
 * times on each of the three writes a slot gets.
 */
export function saveSlot(store: KvStore, seq: number, r: SlotRecord): void {
  const prePrepares: PrePrepare[] = [];
  const indexOf = (pp: PrePrepare): number => {
    let i = prePrepares.indexOf(pp);
    if (i < 0) i = prePrepares.push(pp) - 1;
    return i;
  };
  const record = [
    r.prePrepare ? indexOf(r.prePrepare) : null,
    r.prepared ? [indexOf(r.prepared.prePrepare), r.prepared.prepares.map(messageBytes)] : null,
    r.committed ? [indexOf(r.committed.prePrepare), r.committed.commits.map(messageBytes)] : null,
  ];
  store.put(slotKey(seq), encode([prePrepares.map(prePrepareBytes), ...record]));
}

export function loadSlot(bytes: Uint8Array): SlotRecord {
  const value = decode(bytes, ringFrameBytesMax * 4, 'slot record');
  // Three fields: the earlier layout, each proof carrying its own copy of the pre-prepare.
  if (Array.isArray(value) && value.length === 3) return loadSlotWithCopies(value);
  const t = asTuple(value, 'slot record', 4);
  const prePrepares = asList(t[0], 'pre-prepares', 3, (v) => asMessage(v, 'pre-prepare') as PrePrepare);
  const at = (v: unknown): PrePrepare => {
    const pp = prePrepares[asUint(v, 'pre-prepare index')];
    if (!pp) throw new Error('stored record: pre-prepare index out of range');
    return pp;
  };
  return {
    prePrepare: asNullable(t[1], at),
    prepared: asNullable(t[2], (v) => {
      const p = asTuple(v, 'prepared', 2);
      return { prePrepare: at(p[0]), prepares: asList(p[1], 'prepares', 256, (x) => asMessage(x, 'prepare')) as PreparedProof['prepares'] };
    }),
    committed: asNullable(t[3], (v) => {
      const c = asTuple(v, 'committed', 2);
      return { kind: 'commit-proof', prePrepare: at(c[0]), commits: asList(c[1], 'commits', 256, (x) => asMessage(x, 'commit')) as CommitProof['commits'] };
    }),
  };
}

function loadSlotWithCopies(t: unknown[]): SlotRecord {
  return {
    prePrepare: asNullable(t[0], (v) => asMessage(v, 'pre-prepare') as PrePrepare),
    prepared: asNullable(t[1], (v) => {
      const p = asTuple(v, 'prepared', 2);
      return {
        prePrepare: asMessage(p[0], 'pre-prepare') as PrePrepare,
        prepares: asList(p[1], 'prepares', 256, (x) => asMessage(x, 'prepare')) as PreparedProof['prepares'],
      };
    }),
    committed: asNullable(t[2], (v) => asMessage(v, 'commit-proof') as CommitProof),
  };
}

export function saveView(store: KvStore, view: number, viewActive: boolean): void {
  store.put('ring/view', encode([view, viewActive]));
}

export function loadView(store: KvStore): { view: number; viewActive: boolean } {
  const loaded = loadRecord(store, 'ring/view', (bytes) => {
    const t = asTuple(decode(bytes, 64, 'view record'), 'view record', 2);
    return { view: asUint(t[0], 'view'), viewActive: asBool(t[1], 'viewActive') };
  });
  return loaded ?? { view: 0, viewActive: true };
}

/**
 * A primary does not persist its own pre-prepares before sending them (a backup's durable
 * acceptance is what counts); instead it records, once per view, that it proposed in that view.
 * Restarted with this mark on its current view, it cannot know which sequence numbers it used, so
 * it must not propose in that view again (it hands the view on, ring/replica-view-change.ts).
 */
export function saveProposing(store: KvStore, view: number): void {
  store.put('ring/proposing', encode(view));
}

export function clearProposing(store: KvStore): void {
  store.delete('ring/proposing');
}

export function loadProposing(store: KvStore): number | null {
  return loadRecord(store, 'ring/proposing', (bytes) => asUint(decode(bytes, 16, 'proposing record'), 'proposing view')) ?? null;
}

/**
 * A backup does not persist the pre-prepares it accepts before sending its prepares (its prepared
 * proof is persisted, before its commit leaves); instead it records that it may have prepared, in
 * `view`, any sequence number up to `seq` (the high watermark when written, so one write covers a
 * window's worth of slots). Restarted with this mark on its current view, it cannot know which
 * digest it prepared for those slots, so it sends no prepare for them: a pre-prepare for one of
 * them from a faulty primary must not get a second, conflicting prepare from a correct replica.
 */
export function saveVoting(store: KvStore, mark: { view: number; seq: number }): void {
  store.put('ring/voting', encode([mark.view, mark.seq]));
}

export function clearVoting(store: KvStore): void {
  store.delete('ring/voting');
}

export function loadVoting(store: KvStore): { view: number; seq: number } | null {
  const loaded = loadRecord(store, 'ring/voting', (bytes) => {
    const t = asTuple(decode(bytes, 32, 'voting record'), 'voting record', 2);
    return { view: asUint(t[0], 'voting view'), seq: asUint(t[1], 'voting seq') };
  });
  return loaded ?? null;
}

/**
 * An executed batch's statements, kept until they are certified: written with the batch's execution
 * (the same held writes, so one is durable exactly when the other is), they let a replica that
 * restarted, or was rebuilt at a membership switch, certify what it executed before.
 */
export function saveLeaves(store: KvStore, seq: number, leaves: readonly Leaf[]): void {
  store.put(leavesKey(seq), encode(leaves.map(leafTuple)));
}

const leafTuple = (l: Leaf): unknown[] => [l.statement, l.clientKey, l.nonce, l.replyTo];

function leavesOf(v: unknown): Leaf[] {
  return asList(v, 'leaves', 1 << 20, (item) => {
    const t = asTuple(item, 'leaf', 4);
    return {
      statement: asBytesField(t[0], 'leaf statement', { bytesMax: ringFrameBytesMax }),
      clientKey: asNullable(t[1], (k) => asBytesField(k, 'leaf client key', { bytes: ed25519PublicKeyBytes })),
      nonce: asUint(t[2], 'leaf nonce'),
      replyTo: asString(t[3], 'leaf replyTo', replyToLengthMax),
    };
  });
}

/**
 * The certificates a replica sent (or would send) the clients of one certified span, as sent: a
 * record to re-send them after a restart. Only the clients' leaves, each with its Merkle path (a
 * span's heartbeat statements made a record of the whole span up to 256 times larger).
 */
export interface SentSpan {
  readonly to: number;
  readonly epoch: number;
  readonly root: Uint8Array;
  readonly signature: Uint8Array;
  readonly leafCount: number;
  readonly sent: readonly { readonly leaf: Leaf; readonly leafIndex: number; readonly path: readonly Uint8Array[] }[];
}

export function saveSent(store: KvStore, span: SentSpan): void {
  store.put(sentKey(span.to), encode([span.epoch, span.root, span.signature, span.leafCount, span.sent.map((c) => [...leafTuple(c.leaf), c.leafIndex, c.path])]));
}

/**
 * The kept spans, ascending by their end. A record that does not decode is deleted and skipped:
 * it is a cache of certificates clients may ask for again, and must not stop the replica starting.
 */
export function loadSent(store: KvStore): SentSpan[] {
  const out: SentSpan[] = [];
  for (const key of store.keys('ring/sent/')) {
    try {
      const t = asTuple(decode(store.get(key)!, ringFrameBytesMax * 4, 'sent record'), 'sent record', 5);
      out.push({
        to: seqOfKey(key),
        epoch: asUint(t[0], 'sent epoch'),
        root: asBytesField(t[1], 'sent root', { bytes: 32 }),
        signature: asBytesField(t[2], 'sent signature', { bytesMax: 1024 }),
        leafCount: asUint(t[3], 'sent leaf count'),
        sent: asList(t[4], 'sent certificates', 1 << 20, (item) => {
          const c = asTuple(item, 'sent certificate', 6);
          return {
            leaf: leavesOf([c.slice(0, 4)])[0]!,
            leafIndex: asUint(c[4], 'sent leaf index'),
            path: asList(c[5], 'sent path', 64, (h) => asBytesField(h, 'sent path hash', { bytes: 32 })),
          };
        }),
      });
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      store.delete(key);
    }
  }
  return out;
}

/**
 * Every batch's kept statements at or below `lastExecuted`, ascending by seq (records above it are
 * deleted: they cannot be). A record that does not decode is deleted with every record below it,
 * rather than stop the replica starting: kept statements are a cache, and a replica holding none
 * through some seq signs no span reaching below it, as after a state transfer (it refuses,
 * share-refused, and certifiers start their spans where others can sign). Below the lowest
 * record kept, recovery holds nothing (ring/replica-certificates.ts recoverStatements); a gap
 * above it would read as a batch without statements, and every span over it would get a root the
 * other replicas refuse.
 */
export function loadLeaves(store: KvStore, lastExecuted: number): { seq: number; leaves: Leaf[] }[] {
  let out: { seq: number; leaves: Leaf[] }[] = [];
  for (const key of store.keys('ring/leaves/')) {
    const seq = seqOfKey(key);
    if (seq > lastExecuted) {
      store.delete(key);
      continue;
    }
    const leaves = decodeLeaves(store.get(key)!);
    if (leaves) {
      out.push({ seq, leaves });
      continue;
    }
    for (const below of out) store.delete(leavesKey(below.seq));
    store.delete(key);
    out = [];
  }
  return out;
}

/** A leaves record's statements, or null if it does not decode. */
function decodeLeaves(bytes: Uint8Array): Leaf[] | null {
  try {
    return leavesOf(decode(bytes, ringFrameBytesMax * 4, 'leaves record'));
  } catch (error) {
    if (error instanceof DecodeError) return null;
    throw error;
  }
}

export function saveExecution(store: KvStore, lastExecuted: number, lastTimestampMs: number): void {
  store.put('ring/exec', encode([lastExecuted, lastTimestampMs]));
}

export function loadExecution(store: KvStore): { lastExecuted: number; lastTimestampMs: number } {
  const loaded = loadRecord(store, 'ring/exec', (bytes) => {
    const t = asTuple(decode(bytes, 64, 'exec record'), 'exec record', 2);
    return { lastExecuted: asUint(t[0], 'lastExecuted'), lastTimestampMs: asUint(t[1], 'lastTimestampMs') };
  });
  return loaded ?? { lastExecuted: 0, lastTimestampMs: 0 };
}

export function saveStable(store: KvStore, seq: number, proof: readonly Checkpoint[]): void {
  store.put('ring/stable', encode([seq, proof.map(messageBytes)]));
}

export function loadStable(store: KvStore): { seq: number; proof: Checkpoint[] } {
  const loaded = loadRecord(store, 'ring/stable', (bytes) => {
    const t = asTuple(decode(bytes, 1 << 20, 'stable record'), 'stable record', 2);
    return { seq: asUint(t[0], 'stable seq'), proof: asList(t[1], 'proof', 256, (v) => asMessage(v, 'checkpoint') as Checkpoint) };
  });
  return loaded ?? { seq: 0, proof: [] };
}

/**
 * Last executed request of one client: the dedupe state and what the reply said. Replica-neutral
 * (no signature), so it can be part of the checkpointed state; replies are signed when sent.
 */
export interface ClientRecord {
  nonce: number;
  requestDigest: Uint8Array;
  seq: number;
  result: Uint8Array;
  /**
   * What this replica knows of the client's history, the same on every correct replica (a
   * client's requests execute in increasing nonce order): of the nonces above `knownFrom` and
   * below `nonce`, exactly those in `executedBelow` (descending, at most executedBelowMax)
   * executed. What lets a replica say a request never executed (nonce-passed, answerPassed). One
   * step of history (session 19) was not enough: a request of one store passed by two requests of
   * another store with the same identity was never answered, and its write timed out (session-21
   * review). Records saved earlier read as: knownFrom = their previous nonce (session 19) or
   * their nonce (before), nothing listed.
   */
  knownFrom: number;
  executedBelow: readonly number[];
}

/** Executed nonces a client record lists below its last (nonce-passed can answer for a request passed by this many). */
export const executedBelowMax = 32;

/** The record after `previous` when the client's request `nonce` executes. */
export function nextClientRecord(previous: ClientRecord | undefined, nonce: number, requestDigest: Uint8Array, seq: number, result: Uint8Array): ClientRecord {
  if (!previous) return { nonce, requestDigest, seq, result, knownFrom: 0, executedBelow: [] };
  const listed = [previous.nonce, ...previous.executedBelow];
  const kept = listed.slice(0, executedBelowMax);
  const knownFrom = listed.length > executedBelowMax ? listed[executedBelowMax]! : previous.knownFrom;
  return { nonce, requestDigest, seq, result, knownFrom, executedBelow: kept };
}

/** Did the client's request `nonce` (below the record's) provably never execute? */
export function neverExecutedBelow(record: ClientRecord, nonce: number): boolean {
  return nonce > record.knownFrom && nonce < record.nonce && !record.executedBelow.includes(nonce);
}

export function clientRecordTuple(r: ClientRecord): unknown[] {
  return [r.nonce, r.requestDigest, r.seq, r.result, r.knownFrom, r.executedBelow];
}

export function clientRecordFromTuple(v: unknown): ClientRecord {
  const t = asTuple(v, 'client record', 4, 6);
  const nonce = asUint(t[0], 'nonce');
  const knownFrom = t.length > 4 ? asUint(t[4], 'knownFrom') : nonce;
  const executedBelow = t.length > 5 ? asList(t[5], 'executedBelow', executedBelowMax, (n) => asUint(n, 'executedBelow')) : [];
  if (knownFrom > nonce || executedBelow.some((n, i) => n >= (i === 0 ? nonce : executedBelow[i - 1]!) || n < knownFrom)) {
    throw new DecodeError('client record: executedBelow must descend strictly between knownFrom and nonce');
  }
  return {
    nonce,
    requestDigest: asBytesField(t[1], 'requestDigest', { bytes: 32 }),
    seq: asUint(t[2], 'seq'),
    result: asBytesField(t[3], 'result', { bytesMax: 1 << 20 }),
    knownFrom,
    executedBelow,
  };
}

export function encodeClientRecord(r: ClientRecord): Uint8Array {
  return encode(clientRecordTuple(r));
}

export function decodeClientRecord(bytes: Uint8Array): ClientRecord {
  return clientRecordFromTuple(decode(bytes, 1 << 21, 'client record'));
}
