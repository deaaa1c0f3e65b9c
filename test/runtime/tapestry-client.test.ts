/**
 * The overlay client (runtime/tapestry-client.ts) over real ws sockets on loopback, against one
 * member that answers lookups as a Byzantine node might: a holder counts only with its own signed
 * publish statement.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { IntegrityError } from '../../core/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { channels } from '../../runtime/roles.ts';
import { TapestryClient } from '../../runtime/tapestry-client.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { decodeTapestryMessage, encodeTapestryMessage } from '../../tapestry/codec.ts';
import { tapestryIdOf } from '../../tapestry/id.ts';
import type { TapestryMessage } from '../../tapestry/messages.ts';
import { pointerAuthOf, pointerStatement } from '../../tapestry/pointer-auth.ts';
import { freePort } from '../free-port.ts';


const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

describe('tapestry client: a lookup answer names a holder only on the holder\'s signature', () => {
  it('takes a holder with its own unexpired statement; refuses a forged, foreign, mismatched or expired one with IntegrityError', async () => {
    const secrets = { m0: new Uint8Array(randomBytes(32)), m1: new Uint8Array(randomBytes(32)) };
    const keys = new Map(Object.entries(secrets).map(([name, secret]) => [name, nodeCrypto.ed25519PublicKey(secret)]));
    const port = await freePort();
    const members = new Map<string, PeerAddress>([
      ['m0', { publicKey: keys.get('m0')!, url: `ws://127.0.0.1:${port}` }],
      ['m1', { publicKey: keys.get('m1')! }],
    ]);
    const m1 = { id: tapestryIdOf(nodeCrypto, keys.get('m1')!), name: 'm1' };
    const signedBy = (name: 'm0' | 'm1', objectId: string, issuedAtMs: number): Uint8Array =>
      pointerAuthOf(nodeCrypto, signerOf(nodeCrypto, secrets[name]), (n) => keys.get(n)).sign(pointerStatement(objectId, m1.id, issuedAtMs, false));

    // m0 answers each lookup with the next scripted holder claim, whatever the overlay would say.
    const claims: { server: typeof m1 | null; issuedAtMs: number; signature: Uint8Array }[] = [];
    const member = new Transport({ name: 'm0', secretKey: secrets.m0, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port }, frameBytesMax: 1 << 16, log: silentLogger() });
    member.onFrame((from, frame) => {
      const m = decodeTapestryMessage(frame.subarray(1));
      if (m.kind !== 'lookup') return;
      const reply: TapestryMessage = { kind: 'lookupReply', requestId: m.requestId, objectId: m.objectId, hops: 1, answered: true, ...claims.shift()! };
      const body = encodeTapestryMessage(reply);
      const out = new Uint8Array(body.length + 1);
      out[0] = channels.tapestry;
      out.set(body, 1);
      member.send(from, out);
    });
    await member.start();
    stops.push(() => member.stop());
    const client = await TapestryClient.open({ secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members });
    stops.unshift(() => client.stop());

    const objectId = 'ab'.repeat(20);
    const now = Date.now();
    claims.push(
      { server: m1, issuedAtMs: now, signature: signedBy('m1', objectId, now) },
      { server: m1, issuedAtMs: now, signature: new Uint8Array(0) },
      { server: m1, issuedAtMs: now, signature: signedBy('m0', objectId, now) },
      { server: m1, issuedAtMs: now, signature: signedBy('m1', 'cd'.repeat(20), now) },
      { server: m1, issuedAtMs: now - 91_000, signature: signedBy('m1', objectId, now - 91_000) },
      { server: { id: m1.id, name: 'm0' }, issuedAtMs: now, signature: signedBy('m0', objectId, now) }, // m0 signing under m1's id
      { server: m1, issuedAtMs: now + 60_000, signature: signedBy('m1', objectId, now + 60_000) }, // stamped in the future
      { server: null, issuedAtMs: 0, signature: new Uint8Array(0) },
    );
    const good = await client.lookup('m0', objectId, 5_000);
    expect(good).toMatchObject({ objectId, server: m1, answered: true });
    for (let i = 0; i < 6; i++) await expect(client.lookup('m0', objectId, 5_000)).rejects.toThrow(IntegrityError);
    expect(await client.lookup('m0', objectId, 5_000)).toMatchObject({ server: null, answered: true });
  }, 20_000);
});
