/**
 * Discovery against a faulty server's certificate listing (second archive review, finding 7): each
 * page is verified as it arrives and only verified certificates are kept, a page larger than asked
 * for is refused, and a page with nothing valid ends that server's listing.
 */
import { describe, expect, it } from 'vitest';
import type { ArchiveMessage } from '../../archive/messages.ts';
import { discoverVersions } from '../../archive/shell/restore.ts';
import { fakeCrypto as crypto } from '../../sim/fake-crypto.ts';
import { makeHistory } from './sim-helpers.ts';

const history = makeHistory(1, 3, 2);

/** archive-0 answers honestly (every certificate, `pageSize` per page); archive-1 with `junkPerPage` junk certificates per page, for ever. */
function sourceOf(junkPerPage: number) {
  const served = { honest: 0, junk: 0 };
  const genuine = history.versions.map((v) => v.certificate);
  return {
    served,
    source: {
      servers: ['archive-0', 'archive-1'],
      request: async (server: string, message: ArchiveMessage): Promise<ArchiveMessage | null> => {
        if (message.type !== 'listCertificates') return null;
        if (server === 'archive-0') {
          served.honest++;
          const at = message.after === '' ? 0 : Number(message.after);
          const page = genuine.slice(at, at + message.limit);
          return { type: 'certificates', requestId: message.requestId, certificates: page, next: at + message.limit < genuine.length ? String(at + page.length).padStart(8, '0') : null };
        }
        served.junk++;
        const certificates = Array.from({ length: junkPerPage }, (_, i) => new Uint8Array(64).fill((served.junk + i) & 255));
        return { type: 'certificates', requestId: message.requestId, certificates, next: `c/${String(served.junk).padStart(8, '0')}` };
      },
    },
  };
}

describe('discovery and a faulty listing', () => {
  it('stops listing a server after a page with no certificate that verifies, keeping what others listed', async () => {
    const { source, served } = sourceOf(256);
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey, { pageSize: 2 });
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(served.honest).toBe(3);
    expect(served.junk).toBe(1);
    expect(discovery.rejectedCount).toBe(256);
  });

  it('refuses a page larger than the size asked for', async () => {
    const { source, served } = sourceOf(1024);
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey);
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(served.junk).toBe(1);
    expect(discovery.rejectedCount).toBe(1024);
    expect(discovery.unreachable).toEqual([]);
  });
});
