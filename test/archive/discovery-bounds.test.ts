/**
 * Discovery against a faulty server's certificate listing (second archive review, finding 7): each
 * page is verified as it arrives and only verified certificates are kept, a page larger than asked
 * for is refused, and a page with nothing valid ends that server's listing. Session-20 review,
 * finding 5: a listing is in key order (c/<VGUID>), so replays of genuine certificates (copies, or
 * non-canonical re-encodings that are new bytes and verify) end it instead of going on for hours.
 */
import { describe, expect, it } from 'vitest';
import type { ArchiveMessage } from '../../archive/messages.ts';
import { discoverVersions } from '../../archive/shell/restore.ts';
import { toHex } from '../../core/bytes.ts';
import { decode } from '../../core/codec.ts';
import { decodeCertificate } from '../../core/threshold/index.ts';
import { fakeCrypto as crypto } from '../../sim/fake-crypto.ts';
import { makeHistory } from './sim-helpers.ts';

const history = makeHistory(1, 3, 2);
/** The genuine certificates as an archive server lists them: by key c/<VGUID hex>. */
const listed = history.versions.map((v) => ({ key: `c/${toHex(decodeCertificate(v.certificate).statement.vguid)}`, certificate: v.certificate })).sort((a, b) => (a.key < b.key ? -1 : 1));

/** archive-0's answer as an honest server gives it: `limit` certificates after `after` in key order, `next` at the last. */
function honestPage(message: Extract<ArchiveMessage, { type: 'listCertificates' }>): ArchiveMessage {
  const rest = listed.filter((e) => e.key > message.after);
  const page = rest.slice(0, message.limit);
  return { type: 'certificates', requestId: message.requestId, certificates: page.map((e) => e.certificate), next: rest.length > page.length ? page[page.length - 1]!.key : null };
}

/** archive-0 answers honestly; archive-1 with the page `faultyPage` makes for its n-th request (1, 2, ...). */
function sourceWith(faultyPage: (message: Extract<ArchiveMessage, { type: 'listCertificates' }>, n: number) => ArchiveMessage) {
  const served = { honest: 0, faulty: 0 };
  return {
    served,
    source: {
      servers: ['archive-0', 'archive-1'],
      request: async (server: string, message: ArchiveMessage): Promise<ArchiveMessage | null> => {
        if (message.type !== 'listCertificates') return null;
        if (server === 'archive-0') {
          served.honest++;
          return honestPage(message);
        }
        return faultyPage(message, ++served.faulty);
      },
    },
  };
}

/** archive-1 answers with `junkPerPage` junk certificates per page, for ever. */
function sourceOf(junkPerPage: number) {
  return sourceWith((message, n) => {
    const certificates = Array.from({ length: junkPerPage }, (_, i) => new Uint8Array(64).fill((n + i) & 255));
    return { type: 'certificates', requestId: message.requestId, certificates, next: `c/${String(n).padStart(8, '0')}` };
  });
}

describe('discovery and a faulty listing', () => {
  it('stops listing a server after a page with no certificate that verifies, keeping what others listed', async () => {
    const { source, served } = sourceOf(256);
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey, { pageSize: 2 });
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(served.honest).toBe(3);
    expect(served.faulty).toBe(1);
    expect(discovery.rejectedCount).toBe(256);
  });

  it('refuses a page larger than the size asked for', async () => {
    const { source, served } = sourceOf(1024);
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey);
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(served.faulty).toBe(1);
    expect(discovery.rejectedCount).toBe(1024);
    expect(discovery.unreachable).toEqual([]);
  });

  it('takes every certificate that verifies, even listed out of key order (a server without the check lists one beside another block)', async () => {
    const source = {
      servers: ['archive-0'],
      request: async (_server: string, message: ArchiveMessage): Promise<ArchiveMessage | null> =>
        message.type === 'listCertificates' ? { type: 'certificates', requestId: message.requestId, certificates: listed.map((e) => e.certificate).reverse(), next: null } : null,
    };
    const discovery = await discoverVersions(crypto, source, history.ringPublicKey);
    expect(discovery.versions).toHaveLength(history.versions.length);
    expect(discovery.rejectedCount).toBe(0);
  });

  for (const mode of ['copies', 're-encodings'] as const) {
    it(`ends a listing that answers every page with ${mode} of a genuine certificate and a growing next`, async () => {
      // archive-1 stops by itself after 500 pages so the test ends if discovery does not; a faulty server would not.
      const { source, served } = sourceWith((message, n) => {
        const certificates = Array.from({ length: message.limit }, (_, i) => (mode === 'copies' ? listed[0]!.certificate : reencoded(listed[0]!.certificate, n * message.limit + i)));
        return { type: 'certificates', requestId: message.requestId, certificates, next: n >= 500 ? null : `c/${'f'.repeat(64)}${String(n).padStart(8, '0')}` };
      });
      const discovery = await discoverVersions(crypto, source, history.ringPublicKey, { pageSize: 16 });
      expect(discovery.versions).toHaveLength(history.versions.length);
      expect(served.faulty).toBeLessThanOrEqual(2);
    });
  }
});

/** `bytes` (msgpack) written again with the width of its `variant`-th top-level tuple length or bin header changed: new bytes, same value. */
function reencoded(bytes: Uint8Array, variant: number): Uint8Array {
  const value = decode(bytes, 1 << 20, 'certificate') as unknown[];
  const out: number[] = [];
  const be = (n: number, width: number) => Array.from({ length: width }, (_, i) => Math.floor(n / 2 ** (8 * (width - 1 - i))) & 255);
  let choice = variant;
  const pick = (count: number): number => {
    const c = choice % count;
    choice = Math.floor(choice / count);
    return c;
  };
  const walk = (x: unknown): void => {
    if (x === null) out.push(0xc0);
    else if (typeof x === 'boolean') out.push(x ? 0xc3 : 0xc2);
    else if (typeof x === 'number') {
      if (x < 128) out.push(...[[x], [0xcc, x], [0xcd, ...be(x, 2)], [0xce, ...be(x, 4)]][pick(4)]!);
      else if (x < 2 ** 32) out.push(0xce, ...be(x, 4));
      else {
        const f = new DataView(new ArrayBuffer(8));
        f.setFloat64(0, x);
        out.push(0xcb, ...new Uint8Array(f.buffer));
      }
    } else if (x instanceof Uint8Array) out.push(...(x.length < 256 ? [[0xc4, x.length], [0xc5, ...be(x.length, 2)], [0xc6, ...be(x.length, 4)]][pick(3)]! : [0xc6, ...be(x.length, 4)]), ...x);
    else if (typeof x === 'string') {
      const b = new TextEncoder().encode(x);
      out.push(0xdb, ...be(b.length, 4), ...b);
    } else if (Array.isArray(x)) {
      out.push(...(x.length < 16 ? [[0x90 | x.length], [0xdc, ...be(x.length, 2)], [0xdd, ...be(x.length, 4)]][pick(3)]! : [0xdd, ...be(x.length, 4)]));
      for (const item of x) walk(item);
    } else throw new Error(`unexpected ${typeof x}`);
  };
  walk(value);
  return Uint8Array.from(out);
}
