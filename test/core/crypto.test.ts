// The injected crypto suites agree: node:crypto (used by the runtime) against @noble (pure JS
// reference), with RFC 8032 test vector 1 for ed25519 and a FIPS 180-2 vector for SHA-256.
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.ts';
import { HashTag, aguidOf, signTagged, signerOf, taggedHash, verifyTagged } from '../../core/crypto.ts';
import { nobleCrypto } from '../../core/noble-crypto.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { fakeCrypto } from '../../sim/fake-crypto.ts';

const rfc8032Secret = fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
const rfc8032Public = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const rfc8032Signature =
  'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';

describe.each([nodeCrypto, nobleCrypto])('$name crypto', (crypto) => {
  it('matches the SHA-256 "abc" vector, also when split into chunks', () => {
    const abc = new TextEncoder().encode('abc');
    const expected = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(toHex(crypto.sha256([abc]))).toBe(expected);
    expect(toHex(crypto.sha256([abc.subarray(0, 1), abc.subarray(1)]))).toBe(expected);
  });

  it('matches RFC 8032 test 1 (empty message)', () => {
    expect(toHex(crypto.ed25519PublicKey(rfc8032Secret))).toBe(rfc8032Public);
    expect(toHex(crypto.ed25519Sign(rfc8032Secret, new Uint8Array()))).toBe(rfc8032Signature);
    expect(crypto.ed25519Verify(fromHex(rfc8032Public), new Uint8Array(), fromHex(rfc8032Signature))).toBe(true);
  });

  it('rejects a flipped bit, a wrong key and malformed inputs without throwing', () => {
    const sig = fromHex(rfc8032Signature);
    sig[5]! ^= 1;
    expect(crypto.ed25519Verify(fromHex(rfc8032Public), new Uint8Array(), sig)).toBe(false);
    expect(crypto.ed25519Verify(new Uint8Array(32).fill(7), new Uint8Array(), fromHex(rfc8032Signature))).toBe(false);
    expect(crypto.ed25519Verify(new Uint8Array(5), new Uint8Array(), new Uint8Array(3))).toBe(false);
  });
});

describe('cross-implementation', () => {
  it('signatures made by node verify under noble and vice versa', () => {
    for (let i = 0; i < 5; i++) {
      const secret = nodeCrypto.sha256([Uint8Array.of(i)]);
      const message = nodeCrypto.sha256([Uint8Array.of(i, i)]);
      const pub = nodeCrypto.ed25519PublicKey(secret);
      expect(toHex(nobleCrypto.ed25519PublicKey(secret))).toBe(toHex(pub));
      expect(nobleCrypto.ed25519Verify(pub, message, nodeCrypto.ed25519Sign(secret, message))).toBe(true);
      expect(nodeCrypto.ed25519Verify(pub, message, nobleCrypto.ed25519Sign(secret, message))).toBe(true);
    }
  });
});

describe('domain separation', () => {
  it('a signature of one kind does not verify as another kind', () => {
    const signer = signerOf(nodeCrypto, nodeCrypto.sha256([Uint8Array.of(1)]));
    const message = Uint8Array.of(1, 2, 3);
    const sig = signTagged(nodeCrypto, signer, HashTag.update, message);
    expect(verifyTagged(nodeCrypto, signer.publicKey, HashTag.update, message, sig)).toBe(true);
    expect(verifyTagged(nodeCrypto, signer.publicKey, HashTag.ringMessage, message, sig)).toBe(false);
  });

  it('hashes of different kinds differ for the same bytes, and AGUIDs depend on owner and name', () => {
    const bytes = Uint8Array.of(9);
    expect(toHex(taggedHash(nodeCrypto, HashTag.dataBlock, bytes))).not.toBe(toHex(taggedHash(nodeCrypto, HashTag.rootBlock, bytes)));
    const owner = nodeCrypto.ed25519PublicKey(rfc8032Secret);
    expect(toHex(aguidOf(nodeCrypto, owner, 'a'))).not.toBe(toHex(aguidOf(nodeCrypto, owner, 'b')));
  });
});

describe('the simulator fake', () => {
  it('verifies its own signatures and refuses forgeries and other keys', () => {
    const secret = Uint8Array.of(...new Array(32).fill(3));
    const pub = fakeCrypto.ed25519PublicKey(secret);
    const sig = fakeCrypto.ed25519Sign(secret, Uint8Array.of(1));
    expect(fakeCrypto.ed25519Verify(pub, Uint8Array.of(1), sig)).toBe(true);
    expect(fakeCrypto.ed25519Verify(pub, Uint8Array.of(2), sig)).toBe(false);
    expect(fakeCrypto.ed25519Verify(new Uint8Array(32), Uint8Array.of(1), sig)).toBe(false);
    expect(toHex(fakeCrypto.sha256([Uint8Array.of(1)]))).toBe(toHex(nodeCrypto.sha256([Uint8Array.of(1)])));
  });
});
