/**
 * Where the restore logic gets fragments and certificates: one request, one reply, per archive
 * server. Implementations: in-process cores in the simulator (archive/sim/sim-archive.ts) and
 * a network client over the runtime's transport. Replies are untrusted: everything in them is
 * verified by the caller (fragments against their Merkle path and the block's BGUID, certificates
 * against the ring public key).
 */
import type { ArchiveMessage } from '../messages.ts';

export interface ArchiveSource {
  /** Every archive server in the cluster configuration (the placement universe). */
  readonly servers: readonly string[];
  /** Sends `message` to `server` and resolves with its reply; null when unreachable or silent. */
  request(server: string, message: ArchiveMessage): Promise<ArchiveMessage | null>;
}

/** Runs `task` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
