import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HashTag, taggedHash } from '../../core/crypto.ts';
import { toHex } from '../../core/bytes.ts';
import { InvalidArgumentError } from '../../core/errors.ts';
import { nobleCrypto } from '../../core/noble-crypto.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { digitAt, idFromBytes, idToBytes, isTapestryId, objectIdOf, sharedPrefixLength, tapestryIdOf } from '../../tapestry/id.ts';

describe('tapestry ids (JSAC 2004 §3.1: 160-bit ids, base-16 digits)', () => {
  it('a node id is the first 20 bytes of the tagged hash of its public key, the same under both crypto implementations', () => {
    const publicKey = new Uint8Array(32).map((_, i) => i * 7);
    const id = tapestryIdOf(nodeCrypto, publicKey);
    expect(id).toBe(toHex(taggedHash(nobleCrypto, HashTag.tapestryId, publicKey).subarray(0, 20)));
    expect(isTapestryId(id)).toBe(true);
    expect(id).toHaveLength(40);
  });

  it('rejects a public key of the wrong size with a named error', () => {
    expect(() => tapestryIdOf(nodeCrypto, new Uint8Array(31))).toThrow(InvalidArgumentError);
  });

  it('object ids are the first 20 bytes of a GUID; short GUIDs are rejected', () => {
    const guid = new Uint8Array(32).fill(0xab);
    expect(objectIdOf(guid)).toBe('ab'.repeat(20));
    expect(() => objectIdOf(new Uint8Array(19))).toThrow(InvalidArgumentError);
  });

  it('digits, shared prefixes and byte conversion agree with the hex string', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), (a, b) => {
        const ia = idFromBytes(a);
        const ib = idFromBytes(b);
        expect(ia).toBe(toHex(a));
        expect(idToBytes(ia)).toEqual(a);
        for (let i = 0; i < 40; i++) expect(digitAt(ia, i)).toBe(parseInt(ia[i]!, 16));
        const shared = sharedPrefixLength(ia, ib);
        expect(shared).toBe(sharedPrefixLength(ib, ia));
        expect(ia.slice(0, shared)).toBe(ib.slice(0, shared));
        if (shared < 40) expect(ia[shared]).not.toBe(ib[shared]);
      }),
    );
  });

  it('idToBytes refuses anything but 40 lowercase hex digits (the core never holds another form)', () => {
    for (const bad of ['A'.repeat(40), 'g'.repeat(40), 'a'.repeat(39), 'a'.repeat(41), `${'a'.repeat(39)} `]) expect(() => idToBytes(bad)).toThrow();
  });
});
