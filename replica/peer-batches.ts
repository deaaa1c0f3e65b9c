/**
 * When a ring server may trust a batch signature another ring server shared with it
 * (`batch-certificate`; replica/ring-server-member.ts). A combined threshold BLS signature is the
 * same bytes whichever f+1 shares made it (NOTES.md, Boldyreva), and every one of a batch's f+1
 * combiners shares what it combined. So identical (signature, root) copies from f+1 distinct ring
 * servers include one from a correct server, and need no pairing check (~20 ms); a batch that
 * gets fewer copies (a combiner crashed, is slow, or lies) is verified under the ring key after
 * `waitMs`. Statements must hash to the root before a copy counts.
 */
import { toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { batchLeafHash, BatchMerkleTree } from '../core/threshold/batch-merkle.ts';
import { batchSigningMessage, type BatchHeader } from '../core/threshold/statements.ts';
import { bytesEqual } from '../core/bytes.ts';
import { OceanStoreError } from '../core/errors.ts';
import type { TreeMessage } from './messages.ts';
import type { BatchSignatureCheck } from './ring-trust.ts';

export type SharedBatch = Extract<TreeMessage, { type: 'batch-certificate' }>;

export interface PeerBatchesOptions {
  readonly crypto: Crypto;
  readonly ringId: Uint8Array;
  /** The other ring servers (only their copies count). */
  readonly peers: readonly string[];
  /** Identical copies from this many distinct peers are trusted without a pairing check (f + 1). */
  readonly vouchersNeeded: number;
  /** Verifies a batch signature under the ring key; without it, only vouched batches are trusted. */
  readonly check?: BatchSignatureCheck;
  /** How long a batch waits for more copies before it is verified instead. */
  readonly waitMs: number;
}

interface Pending {
  readonly firstMs: number;
  /** (signature, root) hex → the copy and who sent it. */
  readonly copies: Map<string, { batch: SharedBatch; from: Set<string> }>;
  /**
   * Sender → the key of its copy. One copy per sender (a later one replaces it): a peer could
   * otherwise file any number of distinct copies, each one more signature check in `due`.
   */
  readonly copyOf: Map<string, string>;
}

const pendingBatchesMax = 1024;

export class PeerBatches {
  readonly counters = { vouched: 0, verified: 0, refused: 0 };
  private readonly pending = new Map<number, Pending>();

  /** The other ring servers: options.peers until setPeers names newer ones. */
  peers: readonly string[];

  constructor(private readonly options: PeerBatchesOptions) {
    this.peers = options.peers;
  }

  /** The other ring servers now (after a membership change): only their copies count from here on. */
  setPeers(peers: readonly string[]): void {
    this.peers = [...peers];
  }

  /** A copy from `from`: the batch, if it is now trusted (f+1 identical copies); else null (wait, or refused). */
  offer(from: string, batch: SharedBatch, nowMs: number): SharedBatch | null {
    if (!this.peers.includes(from) || batch.statements.length === 0 || !this.rootMatches(batch)) {
      this.counters.refused++;
      return null;
    }
    let pending = this.pending.get(batch.sequence);
    if (!pending) {
      if (this.pending.size >= pendingBatchesMax) this.pending.delete(this.pending.keys().next().value as number);
      this.pending.set(batch.sequence, (pending = { firstMs: nowMs, copies: new Map(), copyOf: new Map() }));
    }
    const key = `${batch.epoch}:${toHex(batch.signature)}:${toHex(batch.root)}`;
    const previous = pending.copyOf.get(from);
    if (previous !== undefined && previous !== key) {
      const old = pending.copies.get(previous)!;
      old.from.delete(from);
      if (old.from.size === 0) pending.copies.delete(previous);
    }
    pending.copyOf.set(from, key);
    let copy = pending.copies.get(key);
    if (!copy) pending.copies.set(key, (copy = { batch, from: new Set() }));
    copy.from.add(from);
    if (copy.from.size < this.options.vouchersNeeded) return null;
    this.pending.delete(batch.sequence);
    this.counters.vouched++;
    return copy.batch;
  }

  /**
   * Batches that waited `waitMs` without enough copies: a copy that verifies under the ring key,
   * each; copies sent by more peers are checked first (at most one check per peer and batch).
   */
  due(nowMs: number): SharedBatch[] {
    const out: SharedBatch[] = [];
    for (const [sequence, pending] of this.pending) {
      if (nowMs - pending.firstMs < this.options.waitMs) continue;
      this.pending.delete(sequence);
      const byVouchers = [...pending.copies.values()].sort((a, b) => b.from.size - a.from.size);
      const good = byVouchers.find((c) => this.verifies(c.batch));
      if (good) {
        this.counters.verified++;
        out.push(good.batch);
      } else this.counters.refused += pending.copies.size;
    }
    return out;
  }

  /** Forget a batch certified some other way (our own combine). */
  forget(sequence: number): void {
    this.pending.delete(sequence);
  }

  private rootMatches(batch: SharedBatch): boolean {
    const { crypto } = this.options;
    try {
      const tree = new BatchMerkleTree(crypto, batch.statements.map((s) => batchLeafHash(crypto, s)));
      return bytesEqual(tree.root, batch.root);
    } catch (error) {
      if (error instanceof OceanStoreError) return false; // more leaves than a batch may have
      throw error;
    }
  }

  private verifies(batch: SharedBatch): boolean {
    const check = this.options.check;
    if (!check) return false;
    const header: BatchHeader = { ringId: this.options.ringId, epoch: batch.epoch, sequence: batch.sequence, leafCount: batch.statements.length, root: batch.root };
    try {
      return check.verify(batchSigningMessage(header), batch.signature);
    } catch (error) {
      if (error instanceof OceanStoreError) return false;
      throw error;
    }
  }
}
