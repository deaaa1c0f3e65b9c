import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { signerOf } from '../../core/crypto.ts';
import { DecodeError } from '../../core/errors.ts';
import {
  clientNameOf, decodeChallenge, decodeHello, decodeWelcome, encodeChallenge, encodeHello, frameKeySalt, judgeHello, judgeWelcome, signHello,
  signWelcome,
  type Challenge,
} from '../../runtime/handshake.ts';
import { batchFramesMax, deriveFrameKeys, FrameOpener, FrameSealer, newEphemeral } from '../../runtime/frame-auth.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';

const key = () => new Uint8Array(randomBytes(32));
const a = signerOf(nodeCrypto, key());
const b = signerOf(nodeCrypto, key());
const members = new Map([['a', a.publicKey], ['b', b.publicKey]]);
const challengeOf = (acceptor = b): Challenge => ({
  acceptorKey: acceptor.publicKey, acceptorNonce: new Uint8Array(randomBytes(32)), acceptorEphemeral: newEphemeral().publicKey,
});
const eph = () => newEphemeral().publicKey;

describe('transport handshake (challenge-response, both ends prove their key)', () => {
  it('accepts a member presenting its own key, and the dialer accepts the acceptor it expected', () => {
    const c = challengeOf();
    const hello = decodeHello(encodeHello(signHello(a, c, 'a', new Uint8Array(randomBytes(32)), eph())));
    expect(judgeHello(nodeCrypto, members, c, hello, true)).toEqual({ ok: true, name: 'a', isClient: false });
    const welcome = signWelcome(b, c, hello, 'a');
    expect(judgeWelcome(nodeCrypto, b.publicKey, c, hello, welcome)).toBeNull();
    // A different acceptor (wrong server at that address) is refused by the dialer.
    expect(judgeWelcome(nodeCrypto, a.publicKey, c, hello, welcome)).toBe('acceptor key does not match the config');
  });

  it('refuses impostors, member keys under other names, replays, and clients where not accepted', () => {
    const c = challengeOf();
    const stranger = signerOf(nodeCrypto, key());
    const impostor = signHello(stranger, c, 'a', new Uint8Array(32), eph());
    expect(judgeHello(nodeCrypto, members, c, impostor, true)).toEqual({ ok: false, reason: "impostor: key does not match config member 'a'" });
    const disguised = signHello(a, c, 'laptop', new Uint8Array(32), eph());
    expect(judgeHello(nodeCrypto, members, c, disguised, true)).toMatchObject({ ok: false });
    const replayed = signHello(a, challengeOf(), 'a', new Uint8Array(32), eph()); // signed for another challenge
    expect(judgeHello(nodeCrypto, members, c, replayed, true)).toEqual({ ok: false, reason: 'bad handshake signature' });
    const client = signHello(stranger, c, 'laptop', new Uint8Array(32), eph());
    expect(judgeHello(nodeCrypto, members, c, client, true)).toEqual({ ok: true, name: clientNameOf(nodeCrypto, stranger.publicKey), isClient: true });
    expect(judgeHello(nodeCrypto, members, c, client, false)).toMatchObject({ ok: false });
  });

  it('a forged welcome (signature over another session) is refused by the dialer', () => {
    const c = challengeOf();
    const hello = signHello(a, c, 'a', new Uint8Array(randomBytes(32)), eph());
    const other = signHello(a, c, 'a', new Uint8Array(randomBytes(32)), eph());
    expect(judgeWelcome(nodeCrypto, b.publicKey, c, hello, signWelcome(b, c, other, 'a'))).toBe('bad acceptor signature');
  });

  it('ephemerals are signed: a man in the middle who swaps one in is refused by either end', () => {
    const c = challengeOf();
    const hello = signHello(a, c, 'a', new Uint8Array(randomBytes(32)), eph());
    const swappedHello = { ...hello, dialerEphemeral: eph() };
    expect(judgeHello(nodeCrypto, members, c, swappedHello, true)).toEqual({ ok: false, reason: 'bad handshake signature' });
    const welcome = signWelcome(b, c, hello, 'a');
    const swappedChallenge = { ...c, acceptorEphemeral: eph() };
    expect(judgeWelcome(nodeCrypto, b.publicKey, swappedChallenge, hello, welcome)).toBe('bad acceptor signature');
    const roundTripped = decodeChallenge(encodeChallenge(c));
    expect(roundTripped.acceptorEphemeral).toEqual(c.acceptorEphemeral);
  });

  it('both ends derive the same frame keys, one per direction; a batch with a frame altered, dropped, re-split, replayed or out of order fails its tag', () => {
    const dialerEph = newEphemeral();
    const acceptorEph = newEphemeral();
    const c = { ...challengeOf(), acceptorEphemeral: acceptorEph.publicKey };
    const hello = signHello(a, c, 'a', new Uint8Array(randomBytes(32)), dialerEph.publicKey);
    const salt = frameKeySalt(nodeCrypto, c, hello);
    const atDialer = deriveFrameKeys(dialerEph, acceptorEph.publicKey, salt);
    const atAcceptor = deriveFrameKeys(acceptorEph, dialerEph.publicKey, salt);
    expect(atDialer).toEqual(atAcceptor);
    expect(atDialer.dialerToAcceptor).not.toEqual(atDialer.acceptorToDialer);
    // Two batches: frames 0 and 1 under one tag, frame 2 under the next.
    const sealer = new FrameSealer(atDialer.dialerToAcceptor);
    const frames = [Uint8Array.of(1, 2, 3), new Uint8Array(70_000).fill(7), Uint8Array.of(9)];
    sealer.add(frames[0]!);
    sealer.add(frames[1]!);
    const tag0 = sealer.seal()!;
    sealer.add(frames[2]!);
    const tag1 = sealer.seal()!;
    expect(sealer.seal()).toBeNull(); // nothing written since
    const opener = () => new FrameOpener(atAcceptor.dialerToAcceptor);
    const batch = (o: FrameOpener, fs: Uint8Array[], tag: Uint8Array) => (fs.forEach((f) => o.add(f)), o.open(tag));
    const honest = opener();
    expect(batch(honest, [frames[0]!, frames[1]!], tag0)).toEqual([frames[0], frames[1]]);
    expect(batch(honest, [frames[2]!], tag1)).toEqual([frames[2]]);
    expect(batch(opener(), [Uint8Array.of(1, 2, 4), frames[1]!], tag0)).toBeNull(); // altered
    expect(batch(opener(), [frames[0]!], tag0)).toBeNull(); // one dropped
    expect(batch(opener(), [Buffer.concat([frames[0]!, frames[1]!])], tag0)).toBeNull(); // re-split: lengths are tagged
    const replayed = opener();
    expect(batch(replayed, [frames[0]!, frames[1]!], tag0)).not.toBeNull();
    expect(batch(replayed, [frames[0]!, frames[1]!], tag0)).toBeNull(); // again: its index has passed
    expect(batch(opener(), [frames[2]!], tag1)).toBeNull(); // out of order
    expect(batch(new FrameOpener(atAcceptor.acceptorToDialer), [frames[0]!, frames[1]!], tag0)).toBeNull(); // other direction's key
    expect(opener().open(tag0)).toBeNull(); // a tag with no frames
  });

  it('a batch is bounded: the sender seals at the limit and the receiver refuses a frame past it', () => {
    const key = new Uint8Array(randomBytes(32));
    const sealer = new FrameSealer(key);
    const receiver = new FrameOpener(key);
    let full = false;
    let count = 0;
    for (; count < batchFramesMax && !full; count++) {
      full = sealer.add(Uint8Array.of(count & 0xff));
      expect(receiver.add(Uint8Array.of(count & 0xff))).toBe(true);
    }
    expect(full).toBe(true);
    expect(count).toBe(batchFramesMax);
    expect(receiver.add(Uint8Array.of(0))).toBe(false); // a peer that never tags cannot make us hold more
    expect(receiver.open(sealer.seal()!)).toHaveLength(batchFramesMax);
  });

  it('a low-order ephemeral (no shared secret) is refused', () => {
    const lowOrder = [new Uint8Array(32), Uint8Array.of(1, ...new Uint8Array(31))]; // u = 0 and u = 1
    for (const point of lowOrder) expect(() => deriveFrameKeys(newEphemeral(), point, new Uint8Array(32))).toThrow();
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
