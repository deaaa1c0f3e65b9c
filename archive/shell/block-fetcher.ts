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

export interface FetchStats {
  blocks: number;
  blockBytes: number;
  cacheHits: number;
  fragmentsReceived: number;
  /** Fragments refused: malformed, foreign, or failing their path or the group check. */
  fragmentsRejected: number;
  unanswered: number;
  waves: number;
}

export class BlockFetcher {
  readonly stats: FetchStats = { blocks: 0, blockBytes: 0, cacheHits: 0, fragmentsReceived: 0, fragmentsRejected: 0, unanswered: 0, waves: 0 };
  private readonly ring: ServerRing;
  private readonly cache = new Map<string, Uint8Array>();
  private cacheBytes = 0;
  private requestId = 1;
  /** Servers that failed to answer: asked last from then on, so one dead server costs one timeout, not one per block. */
  private readonly unanswering = new Set<string>();

  constructor(
    private readonly crypto: Crypto,
    private readonly source: ArchiveSource,
    private readonly options: BlockFetcherOptions,
  ) {
    this.ring = serverRingOf(source.servers);
  }

  /** The block's bytes, verified against `bguid` as a block of `kind`; NotEnoughFragmentsError if the archive cannot produce it. */
  async fetchBlock(bguid: Uint8Array, kind: BlockKind, trustedFragmentRoot?: Uint8Array): Promise<Uint8Array> {
    const hex = toHex(bguid);
    const cached = this.cache.get(hex);
    if (cached) {
      this.stats.cacheHits++;
      return cached;
    }
    const { k, m, windowExtra } = this.options;
    const ranked = rankedServersOf(this.ring, bguid).slice(0, k + m + windowExtra);
    const rest = rankedServersOf(this.ring, bguid).slice(k + m + windowExtra);
    const live = ranked.filter((s) => !this.unanswering.has(s));
    const dead = [...ranked.filter((s) => this.unanswering.has(s)), ...rest];
    const waves = [live.slice(0, k), live.slice(k), dead];
    const records: FragmentRecord[] = [];
    const problems: string[] = [];
    const check = (block: Uint8Array): boolean => bytesEqual(bguidOf(this.crypto, kind, block), bguid);
    const recoverOptions = trustedFragmentRoot && trustedFragmentRoot.length > 0 ? { fragmentRoot: trustedFragmentRoot } : {};
    for (const wave of waves) {
      if (wave.length === 0) continue;
      this.stats.waves++;
      const replies = await Promise.all(wave.map((server) => this.source.request(server, { type: 'fetch', requestId: this.requestId++, bguid })));
      replies.forEach((reply, i) => {
        if (!reply || reply.type !== 'fetchReply') {
          this.stats.unanswered++;
          this.unanswering.add(wave[i]!);
          problems.push(`${wave[i]}: no answer`);
          return;
        }
        this.unanswering.delete(wave[i]!);
        for (const bytes of reply.fragments) {
          this.stats.fragmentsReceived++;
          try {
            const record = decodeFragment(bytes);
            if (bytesEqual(record.bguid, bguid)) records.push(record);
            else this.stats.fragmentsRejected++;
          } catch (error) {
            this.stats.fragmentsRejected++;
            problems.push(`${wave[i]}: ${(error as Error).message}`);
          }
        }
      });
      if (records.length < k) continue;
      const optimistic = this.optimisticDecode(records, check);
      if (optimistic) {
        this.remember(hex, optimistic);
        return optimistic;
      }
      try {
        const block = recoverBlock(this.crypto, bguid, records, check, recoverOptions);
        this.remember(hex, block);
        return block;
      } catch (error) {
        if (!(error instanceof NotEnoughFragmentsError)) throw error;
        problems.push(error.message);
      }
    }
    throw new NotEnoughFragmentsError(`block ${hex.slice(0, 16)} (${kind}) cannot be recovered from the archive`, problems);
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
    if (block.length > this.options.cacheBytesMax) return;
    this.cache.set(hex, block);
    this.cacheBytes += block.length;
    for (const [key, value] of this.cache) {
      if (this.cacheBytes <= this.options.cacheBytesMax) break;
      this.cache.delete(key);
      this.cacheBytes -= value.length;
    }
  }
}
