import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { DecodeError } from '../../core/errors.ts';
import {
  clientNameOf, decodeChallenge, decodeHello, decodeWelcome, encodeHello, judgeHello, judgeWelcome, signHello, signWelcome,
  type Challenge,
} from '../../runtime/handshake.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

const key = () => new Uint8Array(randomBytes(32));
const a = signerOf(nodeCrypto, key());
const b = signerOf(nodeCrypto, key());
const members = new Map([['a', a.publicKey], ['b', b.publicKey]]);
const challengeOf = (acceptor = b): Challenge => ({ acceptorKey: acceptor.publicKey, acceptorNonce: new Uint8Array(randomBytes(32)) });

describe('transport handshake (challenge-response, both ends prove their key)', () => {
  it('accepts a member presenting its own key, and the dialer accepts the acceptor it expected', () => {
    const c = challengeOf();
    const hello = decodeHello(encodeHello(signHello(a, c, 'a', new Uint8Array(randomBytes(32)))));
    expect(judgeHello(nodeCrypto, members, c, hello, true)).toEqual({ ok: true, name: 'a', isClient: false });
    const welcome = signWelcome(b, c, hello, 'a');
    expect(judgeWelcome(nodeCrypto, b.publicKey, c, hello, welcome)).toBeNull();
    // A different acceptor (wrong server at that address) is refused by the dialer.
    expect(judgeWelcome(nodeCrypto, a.publicKey, c, hello, welcome)).toBe('acceptor key does not match the config');
  });

  it('refuses impostors, member keys under other names, replays, and clients where not accepted', () => {
    const c = challengeOf();
    const stranger = signerOf(nodeCrypto, key());
    const impostor = signHello(stranger, c, 'a', new Uint8Array(32));
    expect(judgeHello(nodeCrypto, members, c, impostor, true)).toEqual({ ok: false, reason: "impostor: key does not match config member 'a'" });
    const disguised = signHello(a, c, 'laptop', new Uint8Array(32));
    expect(judgeHello(nodeCrypto, members, c, disguised, true)).toMatchObject({ ok: false });
    const replayed = signHello(a, challengeOf(), 'a', new Uint8Array(32)); // signed for another challenge
    expect(judgeHello(nodeCrypto, members, c, replayed, true)).toEqual({ ok: false, reason: 'bad handshake signature' });
    const client = signHello(stranger, c, 'laptop', new Uint8Array(32));
    expect(judgeHello(nodeCrypto, members, c, client, true)).toEqual({ ok: true, name: clientNameOf(nodeCrypto, stranger.publicKey), isClient: true });
    expect(judgeHello(nodeCrypto, members, c, client, false)).toMatchObject({ ok: false });
  });

  it('a forged welcome (signature over another session) is refused by the dialer', () => {
    const c = challengeOf();
    const hello = signHello(a, c, 'a', new Uint8Array(randomBytes(32)));
    const other = signHello(a, c, 'a', new Uint8Array(randomBytes(32)));
    expect(judgeWelcome(nodeCrypto, b.publicKey, c, hello, signWelcome(b, c, other, 'a'))).toBe('bad acceptor signature');
  });

  it('decoders throw only DecodeError on arbitrary bytes (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        for (const decodeOne of [decodeChallenge, decodeHello, decodeWelcome]) {
          try {
            decodeOne(bytes);
          } catch (error) {
            if (!(error instanceof DecodeError)) throw error;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
