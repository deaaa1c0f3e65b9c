/**
 * Named objects (tapestry/named-objects.ts) can be published by anyone under its own signature, so
 * `oceanstore locate --node NAME / --role ROLE` also checks who the holder is (twentieth session
 * review, finding 4: m7 publishing m1's name object, or the archive role, was reported as "m1" or
 * as an archive server). Real ws sockets on loopback, one scripted member answering lookups.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { IntegrityError } from '../../core/errors.ts';
import { silentLogger } from '../../runtime/log.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { holderRuleOf, parseLocateArgs } from '../../runtime/tapestry-cli.ts';
import { TapestryClient, nodeHolderRule, tapestryFrame } from '../../runtime/tapestry-client.ts';
import { Transport, type PeerAddress } from '../../runtime/transport.ts';
import { decodeTapestryMessage } from '../../tapestry/codec.ts';
import { tapestryIdOf, type NodeRef } from '../../tapestry/id.ts';
import { nodeObjectIdOf, roleObjectIdOf } from '../../tapestry/named-objects.ts';
import { pointerAuthOf, pointerStatement } from '../../tapestry/pointer-auth.ts';
import { freePort } from '../free-port.ts';

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

const descriptorNodes = [
  { name: 'm0', role: 'ring' },
  { name: 'm1', role: 'archive' },
  { name: 'm7', role: 'replica' },
];

describe('locate --node / --role: the holder must be that node / of that role', () => {
  it('parseLocateArgs names the claim; holderRuleOf checks it against the descriptor\'s names and roles', () => {
    expect(parseLocateArgs(['--node', 'm1']).claim).toEqual({ node: 'm1' });
    expect(parseLocateArgs(['--role', 'archive']).claim).toEqual({ role: 'archive' });
    expect(parseLocateArgs(['--aguid', 'ab'.repeat(32)]).claim).toBeUndefined();
    const ref = (name: string): NodeRef => ({ id: 'e'.repeat(40), name });
    const node = holderRuleOf({ node: 'm1' }, descriptorNodes)!;
    expect([node.fits(ref('m1')), node.fits(ref('m7'))]).toEqual([true, false]);
    const role = holderRuleOf({ role: 'archive' }, descriptorNodes)!;
    expect([role.fits(ref('m1')), role.fits(ref('m7')), role.fits(ref('stranger'))]).toEqual([true, false, false]);
    expect(holderRuleOf(undefined, descriptorNodes)).toBeUndefined();
  });

  it('a lookup answered with another member\'s signed claim to m1\'s name object or the archive role fails with IntegrityError; the real holder passes', async () => {
    const secrets = new Map(descriptorNodes.map((n) => [n.name, new Uint8Array(randomBytes(32))]));
    const keys = new Map([...secrets].map(([name, secret]) => [name, nodeCrypto.ed25519PublicKey(secret)]));
    const refOf = (name: string): NodeRef => ({ id: tapestryIdOf(nodeCrypto, keys.get(name)!), name });
    const port = await freePort();
    const members = new Map<string, PeerAddress>(descriptorNodes.map((n) => [n.name, { publicKey: keys.get(n.name)!, ...(n.name === 'm0' ? { url: `ws://127.0.0.1:${port}` } : {}) }]));
    // Each holder's own, valid statement: what any member can make for any object id.
    const statementOf = (name: string, objectId: string, issuedAtMs: number) => ({
      server: refOf(name), issuedAtMs,
      signature: pointerAuthOf(nodeCrypto, signerOf(nodeCrypto, secrets.get(name)!), (n) => keys.get(n)).sign(pointerStatement(objectId, refOf(name).id, issuedAtMs, false)),
    });
    const holders: string[] = [];
    const member = new Transport({ name: 'm0', secretKey: secrets.get('m0')!, crypto: nodeCrypto, members, listen: { host: '127.0.0.1', port }, frameBytesMax: 1 << 16, log: silentLogger() });
    member.onFrame((from, frame) => {
      const m = decodeTapestryMessage(frame.subarray(1));
      if (m.kind !== 'lookup') return;
      member.send(from, tapestryFrame({ kind: 'lookupReply', requestId: m.requestId, objectId: m.objectId, hops: 1, answered: true, ...statementOf(holders.shift()!, m.objectId, Date.now()) }));
    });
    await member.start();
    stops.push(() => member.stop());
    const client = await TapestryClient.open({ secretKey: new Uint8Array(randomBytes(32)), crypto: nodeCrypto, members });
    stops.unshift(() => client.stop());

    const nameObject = nodeObjectIdOf(nodeCrypto, 'm1');
    const roleObject = roleObjectIdOf(nodeCrypto, 'archive');
    const asNode = holderRuleOf({ node: 'm1' }, descriptorNodes);
    const asRole = holderRuleOf({ role: 'archive' }, descriptorNodes);
    holders.push('m7', 'm1', 'm7', 'm1', 'm7');
    await expect(client.lookup('m0', nameObject, 5_000, asNode)).rejects.toThrow(IntegrityError);
    expect(await client.lookup('m0', nameObject, 5_000, asNode)).toMatchObject({ server: { name: 'm1' } });
    await expect(client.lookup('m0', roleObject, 5_000, asRole)).rejects.toThrow(/only a server of role archive may/);
    expect(await client.lookup('m0', roleObject, 5_000, asRole)).toMatchObject({ server: { name: 'm1' } });
    // Without a rule (an aguid) the signed statement is all that is asked.
    expect(await client.lookup('m0', nameObject, 5_000)).toMatchObject({ server: { name: 'm7' } });
    expect(nodeHolderRule('m1').what).toBe('node m1');
  }, 20_000);
});
