/**
 * Fetches blocks from the archive by BGUID and trusts nothing it is sent: each fragment must
 * decode, name the block, and verify against its Merkle path; fragments are grouped by the
 * fragment root they prove, any group with k distinct indices is decoded, and the block is kept
 * only if it hashes to the BGUID under the expected kind (archive/erasure recoverBlock). A wrong
 * or corrupt fragment can cost a retry, never a wrong block.
 *
 * Servers are asked in the block's placement order (archive/placement.ts), in waves: first the k
 * best-ranked (they hold the data fragments when nothing failed, so decoding is a copy), then the
 * rest of the placement window, then everyone.
 */
import { toHex, bytesEqual } from '../../core/bytes.ts';
import type { Crypto } from '../../core/crypto.ts';
import { bguidOf, type BlockKind } from '../../core/version/block.ts';
import { decode, decodeFragment, NotEnoughFragmentsError, recoverBlock, type FragmentRecord } from '../erasure/index.ts';
import { rankedServersOf, serverRingOf, type ServerRing } from '../placement.ts';
import { archiveLimits, type FetchedBlock } from '../messages.ts';
import type { ArchiveSource } from './archive-source.ts';

export interface BlockFetcherOptions {
  k: number;
  m: number;
  /** Servers past the first n of a block's ranking asked in the second wave (repaired fragments live there). */
  windowExtra: number;
  /** Decoded blocks kept for reuse: versions of one object share most of their blocks. */
  cacheBytesMax: number;
}

export const defaultBlockFetcherOptions: Omit<BlockFetcherOptions, 'k' | 'm'> = { windowExtra: 8, cacheBytesMax: 256 * 2 ** 20 };

export interface BlockRequest {
  bguid: Uint8Array;
  kind: BlockKind;
  trustedFragmentRoot?: Uint8Array;
  /** The most bytes the block can have, when the caller knows it (a data block's verified pointer length). */
  bytesMax?: number;
}

interface FetchState {
  waves: string[][];
  records: FragmentRecord[];
  problems: string[];
}

export interface FetchStats {
  blocks: number;
  blockBytes: number;
  cacheHits: number;
  fragmentsReceived: number;
  /** Fragments refused: malformed, foreign, or failing their path or the group check. */
  fragmentsRejected: number;
  unanswered: number;
  waves: number;
  /** The most decoded block bytes the cache held at once. */
  cachedBytesPeak: number;
}

export class BlockFetcher {
  readonly stats: FetchStats = { blocks: 0, blockBytes: 0, cacheHits: 0, fragmentsReceived: 0, fragmentsRejected: 0, unanswered: 0, waves: 0, cachedBytesPeak: 0 };
  private readonly ring: ServerRing;
  private readonly cache = new Map<string, Uint8Array>();
  private cacheBytes = 0;
  private requestId = 1;
  /** Servers that failed to answer: asked last from then on, so one dead server costs one timeout, not one per block. */
  private readonly unanswering = new Set<string>();
  /** Fragment bytes of the fullest fetch reply seen from any server: what a reply cut at its byte bound looks like. */
  private fullestReplyBytes = 0;

  constructor(
    private readonly crypto: Crypto,
    private readonly source: ArchiveSource,
    private readonly options: BlockFetcherOptions,
  ) {
    this.ring = serverRingOf(source.servers);
  }

  /**
   * Servers already known not to answer (discovery's unreachable ones): asked last from the start,
   * as if each had missed a request here. The fetcher used to learn it again, a timeout per server
   * (4 of 8 down: a 0.35 MiB restore took 15 s; session-20 review, finding 8c). A server that answers
   * a later request is asked in order again.
   */
  markUnanswering(servers: readonly string[]): void {
    for (const server of servers) this.unanswering.add(server);
  }

  /** The block's bytes, verified against `bguid` as a block of `kind`; NotEnoughFragmentsError if the archive cannot produce it. */
  async fetchBlock(bguid: Uint8Array, kind: BlockKind, trustedFragmentRoot?: Uint8Array): Promise<Uint8Array> {
    const [result] = await this.fetchBlocks([{ bguid, kind, trustedFragmentRoot }]);
    if (result instanceof Error) throw result;
    return result!;
  }

  /**
   * Many blocks at once, one request per server per wave (a round trip per wave, not per block):
   * each result is the verified block or the NotEnoughFragmentsError saying why it is missing.
   */
  async fetchBlocks(wanted: readonly BlockRequest[]): Promise<(Uint8Array | NotEnoughFragmentsError)[]> {
    const results: (Uint8Array | NotEnoughFragmentsError | undefined)[] = wanted.map((w) => this.cache.get(toHex(w.bguid)));
    for (const r of results) if (r) this.stats.cacheHits++;
    const states = new Map<number, FetchState>();
    // A version may name one block many times (equal leaves share a BGUID): fetch it once.
    const firstOf = new Map<string, number>();
    const duplicates: [number, number][] = [];
    wanted.forEach((w, i) => {
      if (results[i] !== undefined) return;
      const hex = toHex(w.bguid);
      const first = firstOf.get(hex);
      if (first !== undefined) return void duplicates.push([i, first]);
      firstOf.set(hex, i);
      states.set(i, this.stateOf(w));
    });
    for (let wave = 0; wave < 3 && states.size > 0; wave++) {
      this.stats.waves++;
      const byServer = new Map<string, number[]>();
      for (const [i, state] of states) {
        for (const server of state.waves[wave]!) {
          let list = byServer.get(server);
          if (!list) byServer.set(server, (list = []));
          list.push(i);
        }
      }
      await Promise.all([...byServer].map(([server, indexes]) => this.ask(server, indexes, wanted, states)));
      for (const [i, state] of states) {
        const block = this.tryDecode(wanted[i]!, state);
        if (block) {
          results[i] = block;
          states.delete(i);
        }
      }
    }
    for (const [i, state] of states) {
      results[i] = new NotEnoughFragmentsError(`block ${toHex(wanted[i]!.bguid).slice(0, 16)} (${wanted[i]!.kind}) cannot be recovered from the archive`, state.problems);
    }
    for (const [i, first] of duplicates) results[i] = results[first];
    return results as (Uint8Array | NotEnoughFragmentsError)[];
  }

  private stateOf(w: BlockRequest): FetchState {
    const { k, m, windowExtra } = this.options;
    const all = rankedServersOf(this.ring, w.bguid);
    const window = all.slice(0, k + m + windowExtra);
    const live = window.filter((s) => !this.unanswering.has(s));
    const dead = [...window.filter((s) => this.unanswering.has(s)), ...all.slice(k + m + windowExtra)];
    return { waves: [live.slice(0, k), live.slice(k), dead], records: [], problems: [] };
  }

  /**
   * Fetches from `server` the blocks at `indexes`, at most fetchBguidsMax per request, asking again
   * for the blocks a reply left out: a server ends a reply early at its byte bound
   * (archiveLimits.fetchReplyBytesMax), so a batch of big blocks takes several replies. A reply
   * that brings none of the blocks asked for ends it (each request must make progress, so this
   * loop ends); those blocks count as unanswered by this server. A reply that left blocks out
   * while carrying less than half the fragment bytes of the fullest reply seen also ends it, and
   * the server is asked last from then on: a server cuts a reply only at its byte bound (far above
   * one block's fragments), and a faulty one answering one block per reply kept this loop going a
   * round trip per block (second review, finding 2).
   */
  private async ask(server: string, indexes: number[], wanted: readonly BlockRequest[], states: Map<number, FetchState>): Promise<void> {
    let pending = indexes;
    while (pending.length > 0) {
      const chunk = pending.slice(0, archiveLimits.fetchBguidsMax);
      const reply = await this.source.request(server, { type: 'fetch', requestId: this.requestId++, bguids: chunk.map((i) => wanted[i]!.bguid) });
      if (!reply || reply.type !== 'fetchReply') {
        this.stats.unanswered++;
        this.unanswering.add(server);
        for (const i of pending) states.get(i)!.problems.push(`${server}: no answer`);
        return;
      }
      const { answered, bytes } = this.takeReply(server, chunk, reply.blocks, wanted, states);
      this.fullestReplyBytes = Math.max(this.fullestReplyBytes, bytes);
      const left = chunk.filter((i) => !answered.has(i));
      if (left.length === chunk.length) {
        for (const i of pending) states.get(i)!.problems.push(`${server}: answered none of the blocks asked for`);
        return;
      }
      if (left.length > 0 && bytes < this.fullestReplyBytes / 2) {
        this.unanswering.add(server);
        for (const i of left) states.get(i)!.problems.push(`${server}: left blocks out of a reply of ${bytes} fragment bytes`);
        for (const i of pending.slice(chunk.length)) states.get(i)!.problems.push(`${server}: not asked again (its replies left blocks out)`);
        return;
      }
      this.unanswering.delete(server);
      pending = [...left, ...pending.slice(chunk.length)];
    }
  }

  /**
   * Is `record` worth holding until its batch decodes? Every record kept lives that long, so a
   * faulty server answering each ask with tens of MiB of well-formed junk for one block made a
   * restore of a 256 KiB version hold ~494 MiB (session-21 second review of the streaming
   * restore). Kept: this block's, and no longer than the block can be. Not capped in count: a
   * server's reply may rightly carry many writers' encodings of one block before the genuine one
   * (test/archive/fetch-fairness.test.ts); one reply per block and server bounds them.
   */
  private keeps(record: FragmentRecord, w: BlockRequest): boolean {
    if (!bytesEqual(record.bguid, w.bguid)) return false;
    return w.bytesMax === undefined || record.blockBytes <= w.bytesMax;
  }

  /** Records the fragments of one reply; returns which of `chunk` it answered and the fragment bytes it carried for them. */
  private takeReply(
    server: string,
    chunk: readonly number[],
    blocks: readonly FetchedBlock[],
    wanted: readonly BlockRequest[],
    states: Map<number, FetchState>,
  ): { answered: Set<number>; bytes: number } {
    const byHex = new Map(chunk.map((i) => [toHex(wanted[i]!.bguid), i]));
    const answered = new Set<number>();
    let fragmentBytes = 0;
    for (const block of blocks) {
      const i = byHex.get(toHex(block.bguid));
      if (i === undefined || answered.has(i)) continue; // not asked for, or twice: ignore
      answered.add(i);
      const state = states.get(i)!;
      for (const bytes of block.fragments) {
        this.stats.fragmentsReceived++;
        fragmentBytes += bytes.length;
        try {
          const record = decodeFragment(bytes);
          if (this.keeps(record, wanted[i]!)) state.records.push(record);
          else this.stats.fragmentsRejected++;
        } catch (error) {
          this.stats.fragmentsRejected++;
          state.problems.push(`${server}: ${(error as Error).message}`);
        }
      }
    }
    return { answered, bytes: fragmentBytes };
  }

  private tryDecode(w: BlockRequest, state: FetchState): Uint8Array | undefined {
    if (state.records.length < this.options.k) return undefined;
    const check = (block: Uint8Array): boolean => bytesEqual(bguidOf(this.crypto, w.kind, block), w.bguid);
    const block =
      this.optimisticDecode(state.records, check) ??
      (() => {
        try {
          const options = w.trustedFragmentRoot && w.trustedFragmentRoot.length > 0 ? { fragmentRoot: w.trustedFragmentRoot } : {};
          return recoverBlock(this.crypto, w.bguid, state.records, check, options);
        } catch (error) {
          if (!(error instanceof NotEnoughFragmentsError)) throw error;
          state.problems.push(error.message);
          return undefined;
        }
      })();
    if (block) this.remember(toHex(w.bguid), block);
    return block;
  }

  /**
   * The common case, one hash pass cheaper: decode the lowest k distinct indices that agree on the
   * coding parameters and accept the block only if it hashes to its BGUID. The BGUID check is what
   * makes the result trustworthy (a bad fragment makes it fail), so no fragment is trusted here;
   * on failure recoverBlock sorts the fragments out one by one against their Merkle paths.
   */
  private optimisticDecode(records: readonly FragmentRecord[], check: (block: Uint8Array) => boolean): Uint8Array | undefined {
    const first = records[0]!;
    const byIndex = new Map<number, FragmentRecord>();
    for (const r of records) {
      if (r.k === first.k && r.m === first.m && r.blockBytes === first.blockBytes && !byIndex.has(r.index)) byIndex.set(r.index, r);
    }
    if (byIndex.size < first.k) return undefined;
    const shards = [...byIndex.values()].sort((a, b) => a.index - b.index).slice(0, first.k).map((r) => ({ index: r.index, bytes: r.payload }));
    try {
      const block = decode(first.k, first.m, shards, first.blockBytes);
      return check(block) ? block : undefined;
    } catch {
      return undefined; // parameters a Byzantine server made up; the verified path below decides
    }
  }

  private remember(hex: string, block: Uint8Array): void {
    this.stats.blocks++;
    this.stats.blockBytes += block.length;
    // Two batches in flight may both miss on one block (a zero-filled file): count it once.
    if (block.length > this.options.cacheBytesMax || this.cache.has(hex)) return;
    this.cache.set(hex, block);
    this.cacheBytes += block.length;
    for (const [key, value] of this.cache) {
      if (this.cacheBytes <= this.options.cacheBytesMax) break;
      this.cache.delete(key);
      this.cacheBytes -= value.length;
    }
    this.stats.cachedBytesPeak = Math.max(this.stats.cachedBytesPeak, this.cacheBytes);
  }
}
