/**
 * archive/shell/restore-tool.ts messages: with every archive server silent, restoring one object
 * says the servers did not answer (it said "the archive holds no certified version", which reads
 * as data loss); with some silent, the not-found message names them.
 */
import { describe, expect, it } from 'vitest';
import { runRestore } from '../../archive/shell/restore-tool.ts';
import type { ArchiveSource } from '../../archive/shell/archive-source.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { Prng } from '../../sim/prng.ts';
import { dealRingKey } from '../../core/threshold/index.ts';

function silentSource(servers: string[]): ArchiveSource {
  return { servers, request: async () => null };
}

describe('restore messages when archive servers do not answer', () => {
  it('all silent: says none answered, not that the archive lacks the object', async () => {
    const run = runRestore(
      { crypto: nodeCrypto, source: silentSource(['archive-0', 'archive-1', 'archive-2']), ringPublicKey: dealRingKey(new Prng(3), 4, 2).publicKey, k: 2, m: 1, target: { aguid: new Uint8Array(32).fill(7) }, sink: () => undefined },
      () => 0,
    );
    await expect(run).rejects.toThrow(/could not look for 0707.*; none of the 3 archive servers answered \(archive-0, archive-1, archive-2\)/);
    await expect(run).rejects.not.toThrow(/holds no certified version/);
  });
});
