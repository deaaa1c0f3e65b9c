/**
 * The transport handshake: both ends prove their ed25519 identity by signing the other's fresh
 * nonce (a challenge-response, so a recorded handshake cannot be replayed), and each signature
 * covers both public keys and both nonces, so a signature from one session is useless in another.
 *
 *   acceptor  -> dialer    Challenge [1, version, acceptorKey, acceptorNonce, acceptorEphemeral]
 *   dialer    -> acceptor  Hello     [2, claimedName, dialerKey, dialerNonce, dialerEphemeral, dialerSig]
 *   acceptor  -> dialer    Welcome   [3, assignedName, acceptorSig]
 *
 * The ephemerals are X25519 public keys, signed into both transcripts: the frame keys derived from
 * them (runtime/frame-auth.ts) are known only to the two ends that signed, so every later frame is
 * authenticated too, not just the opening (version 1 had no ephemerals and left frames bare).
 *
 * The acceptor checks the claimed name against the cluster config: a member name must come with
 * exactly that member's key (anything else is an impostor and is refused); an unknown key is
 * accepted only as a client, under a name derived from its key. The dialer checks that the key it
 * reached is the key the config gives for the member it meant to dial.
 */
import { asBytesField, asLiteral, asString, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { toHex } from '../core/bytes.ts';
import { identityOf, type Crypto, type Signer } from '../core/crypto.ts';

export const handshakeVersion = 2;
export const nonceBytes = 32;
/** An X25519 public key. */
export const ephemeralKeyBytes = 32;
/** Largest handshake message: the transport holds a socket that has not proved its key to this size (runtime/transport.ts). */
export const handshakeBytesMax = 1024;
const nameLengthMax = 64;
const signDomain = 'oceanstore/transport-handshake/v1';

export interface Challenge {
  readonly acceptorKey: Uint8Array;
  readonly acceptorNonce: Uint8Array;
  readonly acceptorEphemeral: Uint8Array;
}
export interface Hello {
  readonly claimedName: string;
  readonly dialerKey: Uint8Array;
  readonly dialerNonce: Uint8Array;
  readonly dialerEphemeral: Uint8Array;
  readonly dialerSig: Uint8Array;
}
export interface Welcome {
  readonly assignedName: string;
  readonly acceptorSig: Uint8Array;
}

export function encodeChallenge(c: Challenge): Uint8Array {
  return encode([1, handshakeVersion, c.acceptorKey, c.acceptorNonce, c.acceptorEphemeral]);
}
export function decodeChallenge(bytes: Uint8Array): Challenge {
  const t = asTuple(decode(bytes, handshakeBytesMax, 'challenge'), 'challenge', 5);
  asLiteral(t[0], 'challenge.tag', 1);
  asLiteral(asUint(t[1], 'challenge.version'), 'challenge.version', handshakeVersion);
  return {
    acceptorKey: asBytesField(t[2], 'challenge.acceptorKey', { bytes: 32 }),
    acceptorNonce: asBytesField(t[3], 'challenge.acceptorNonce', { bytes: nonceBytes }),
    acceptorEphemeral: asBytesField(t[4], 'challenge.acceptorEphemeral', { bytes: ephemeralKeyBytes }),
  };
}

export function encodeHello(h: Hello): Uint8Array {
  return encode([2, h.claimedName, h.dialerKey, h.dialerNonce, h.dialerEphemeral, h.dialerSig]);
}
export function decodeHello(bytes: Uint8Array): Hello {
  const t = asTuple(decode(bytes, handshakeBytesMax, 'hello'), 'hello', 6);
  asLiteral(t[0], 'hello.tag', 2);
  return {
    claimedName: asString(t[1], 'hello.claimedName', nameLengthMax),
    dialerKey: asBytesField(t[2], 'hello.dialerKey', { bytes: 32 }),
    dialerNonce: asBytesField(t[3], 'hello.dialerNonce', { bytes: nonceBytes }),
    dialerEphemeral: asBytesField(t[4], 'hello.dialerEphemeral', { bytes: ephemeralKeyBytes }),
    dialerSig: asBytesField(t[5], 'hello.dialerSig', { bytes: 64 }),
  };
}

export function encodeWelcome(w: Welcome): Uint8Array {
  return encode([3, w.assignedName, w.acceptorSig]);
}
export function decodeWelcome(bytes: Uint8Array): Welcome {
  const t = asTuple(decode(bytes, handshakeBytesMax, 'welcome'), 'welcome', 3);
  asLiteral(t[0], 'welcome.tag', 3);
  return {
    assignedName: asString(t[1], 'welcome.assignedName', nameLengthMax),
    acceptorSig: asBytesField(t[2], 'welcome.acceptorSig', { bytes: 64 }),
  };
}

/** What the dialer signs: it answers the acceptor's nonce and binds its own, and both ephemerals. */
export function dialerTranscript(
  c: Challenge, claimedName: string, dialerKey: Uint8Array, dialerNonce: Uint8Array, dialerEphemeral: Uint8Array,
): Uint8Array {
  return encode([signDomain, 'dialer', c.acceptorKey, c.acceptorNonce, c.acceptorEphemeral, claimedName, dialerKey, dialerNonce, dialerEphemeral]);
}

/** What the acceptor signs: the dialer's nonce, so the dialer knows the key holder is live, and both ephemerals. */
export function acceptorTranscript(c: Challenge, h: Hello, assignedName: string): Uint8Array {
  return encode([
    signDomain, 'acceptor', c.acceptorKey, c.acceptorNonce, c.acceptorEphemeral, h.dialerKey, h.dialerNonce, h.dialerEphemeral, assignedName,
  ]);
}

/** The salt of the frame keys: a hash of everything both ends signed, so the keys belong to this session alone. */
export function frameKeySalt(crypto: Crypto, c: Challenge, h: Hello): Uint8Array {
  return crypto.sha256([encode([signDomain, 'frame-keys', c.acceptorKey, c.acceptorNonce, c.acceptorEphemeral, h.dialerKey, h.dialerNonce, h.dialerEphemeral])]);
}

/** The name a non-member gets: derived from its key, so it cannot choose to look like anyone else. */
export function clientNameOf(crypto: Crypto, publicKey: Uint8Array): string {
  return `client-${toHex(identityOf(crypto, publicKey)).slice(0, 24)}`;
}

export type HelloVerdict =
  | { ok: true; name: string; isClient: boolean }
  | { ok: false; reason: string };

/**
 * The acceptor's decision on a Hello. `members` maps every config member name to its key.
 * Pure apart from the injected crypto, so the policy is unit-testable without sockets.
 */
export function judgeHello(
  crypto: Crypto,
  members: ReadonlyMap<string, Uint8Array>,
  challenge: Challenge,
  hello: Hello,
  acceptClients: boolean,
): HelloVerdict {
  const transcript = dialerTranscript(challenge, hello.claimedName, hello.dialerKey, hello.dialerNonce, hello.dialerEphemeral);
  if (!crypto.ed25519Verify(hello.dialerKey, transcript, hello.dialerSig)) {
    return { ok: false, reason: 'bad handshake signature' };
  }
  const memberKey = members.get(hello.claimedName);
  if (memberKey) {
    if (toHex(memberKey) !== toHex(hello.dialerKey)) {
      return { ok: false, reason: `impostor: key does not match config member '${hello.claimedName}'` };
    }
    return { ok: true, name: hello.claimedName, isClient: false };
  }
  for (const [name, key] of members) {
    if (toHex(key) === toHex(hello.dialerKey)) {
      return { ok: false, reason: `member key of '${name}' presented under another name '${hello.claimedName}'` };
    }
  }
  if (!acceptClients) return { ok: false, reason: `unknown peer '${hello.claimedName}' (clients not accepted here)` };
  return { ok: true, name: clientNameOf(crypto, hello.dialerKey), isClient: true };
}

/** The dialer's check of the acceptor's answer. */
export function judgeWelcome(
  crypto: Crypto,
  expectedAcceptorKey: Uint8Array | null,
  challenge: Challenge,
  hello: Hello,
  welcome: Welcome,
): string | null {
  if (expectedAcceptorKey && toHex(expectedAcceptorKey) !== toHex(challenge.acceptorKey)) {
    return 'acceptor key does not match the config';
  }
  const transcript = acceptorTranscript(challenge, hello, welcome.assignedName);
  if (!crypto.ed25519Verify(challenge.acceptorKey, transcript, welcome.acceptorSig)) return 'bad acceptor signature';
  return null;
}

export function signHello(signer: Signer, challenge: Challenge, claimedName: string, dialerNonce: Uint8Array, dialerEphemeral: Uint8Array): Hello {
  const dialerSig = signer.sign(dialerTranscript(challenge, claimedName, signer.publicKey, dialerNonce, dialerEphemeral));
  return { claimedName, dialerKey: signer.publicKey, dialerNonce, dialerEphemeral, dialerSig };
}

export function signWelcome(signer: Signer, challenge: Challenge, hello: Hello, assignedName: string): Welcome {
  return { assignedName, acceptorSig: signer.sign(acceptorTranscript(challenge, hello, assignedName)) };
}
