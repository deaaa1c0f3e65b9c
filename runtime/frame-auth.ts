/**
 * Frame authentication for a transport connection (the channel half of an authenticated channel;
 * the handshake in handshake.ts is the identity half).
 *
 * Each end of the handshake contributes an ephemeral X25519 key, signed into its transcript, so the
 * shared secret is known only to the two key holders that signed. From it, HKDF-SHA256 derives one
 * key per direction. Frames go in *batches*: the sender tags every frame it writes in one turn of
 * its event loop (at most `batchFramesMax` frames or `batchBytesMax` bytes) with one tag, sent as a
 * record of its own after them: AES-256-GCM over no plaintext with each frame's length and bytes as
 * associated data (GMAC), under a 96-bit nonce that is the batch's index in its direction. The
 * receiver holds a batch's frames until its tag checks, then delivers them. Both ends count
 * batches (ws runs over one TCP stream, in order), so a frame that was altered, injected, replayed,
 * reordered or dropped in flight fails its batch's tag and the connection is cut.
 *
 * Why batches: a tag costs ~4.6 µs of fixed work (a cipher object, its final block) and ~0.3 µs per
 * further frame (measured on this machine, docs/runtime.md), and a loaded ring server writes many
 * frames to one peer per turn (a group commit's replies). Why GMAC rather than HMAC-SHA256: 0.14 ms
 * per MiB against 0.65 ms, and block transfers are where the bytes are.
 */
import { createCipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, timingSafeEqual, type CipherGCM as Cipher, type KeyObject } from 'node:crypto';
import { assert } from '../core/assert.ts';
import { ephemeralKeyBytes } from './handshake.ts';

export const tagBytes = 16;
const x25519SpkiPrefix = Buffer.from('302a300506032b656e032100', 'hex');
const keyInfo = 'oceanstore/transport-frame-key/v1';

export interface Ephemeral {
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

export function newEphemeral(): Ephemeral {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const raw = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(x25519SpkiPrefix.length));
  assert(raw.length === ephemeralKeyBytes, 'an X25519 public key is 32 bytes');
  return { publicKey: raw, privateKey };
}

export interface FrameKeys {
  readonly dialerToAcceptor: Uint8Array;
  readonly acceptorToDialer: Uint8Array;
}

/**
 * The two direction keys of a connection. `transcriptHash` binds them to this handshake (both
 * identities, both nonces, both ephemerals), so the same ephemeral pair in another session would
 * still give other keys. Throws on a peer ephemeral that is not a valid X25519 key.
 */
export function deriveFrameKeys(own: Ephemeral, peerPublicKey: Uint8Array, transcriptHash: Uint8Array): FrameKeys {
  const peer = createPublicKey({ key: Buffer.concat([x25519SpkiPrefix, peerPublicKey]), format: 'der', type: 'spki' });
  // OpenSSL refuses a low-order peer point itself (an all-zero secret fails the derivation).
  const shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer });
  const okm = new Uint8Array(hkdfSync('sha256', shared, transcriptHash, keyInfo, 64));
  return { dialerToAcceptor: okm.slice(0, 32), acceptorToDialer: okm.slice(32, 64) };
}

/** Most frames, and most bytes before the last frame, under one tag: bounds what a receiver holds unchecked. */
export const batchFramesMax = 256;
export const batchBytesMax = 4 * 2 ** 20;

function batchMac(key: Uint8Array, batchIndex: number): Cipher {
  const iv = Buffer.alloc(12);
  iv.writeUIntBE(batchIndex, 6, 6);
  return createCipheriv('aes-256-gcm', key, iv);
}

/** Scratch for a frame's length: setAAD absorbs its input at once, so one buffer serves every call. */
const lengthScratch = Buffer.alloc(4);

function addFrame(mac: Cipher, frame: Uint8Array): void {
  lengthScratch.writeUInt32BE(frame.length);
  mac.setAAD(lengthScratch); // lengths are authenticated too: frames cannot be re-split
  mac.setAAD(frame);
}

function tagOf(mac: Cipher): Uint8Array {
  mac.final();
  return mac.getAuthTag();
}

/** The sending side of one direction. */
export class FrameSealer {
  private batchIndex = 0;
  private mac: Cipher | null = null;
  private frames = 0;
  private bytes = 0;
  constructor(private readonly key: Uint8Array) {}

  /** Adds a written frame to the open batch; true if the batch is full and must be sealed now. */
  add(frame: Uint8Array): boolean {
    this.mac ??= batchMac(this.key, this.batchIndex);
    addFrame(this.mac, frame);
    this.frames += 1;
    this.bytes += frame.length;
    return this.frames >= batchFramesMax || this.bytes >= batchBytesMax;
  }

  /** The open batch's tag (to send after its frames), or null if no frame was added since the last. */
  seal(): Uint8Array | null {
    if (!this.mac) return null;
    const tag = tagOf(this.mac);
    this.mac = null;
    this.frames = 0;
    this.bytes = 0;
    this.batchIndex += 1;
    return tag;
  }
}

/** The receiving side of one direction. */
export class FrameOpener {
  private batchIndex = 0;
  private mac: Cipher | null = null;
  private pending: Uint8Array[] = [];
  private bytes = 0;
  /** When the oldest frame still waiting for its tag arrived (performance.now()), or null if none waits. */
  heldSinceMs: number | null = null;
  constructor(private readonly key: Uint8Array) {}

  /** Holds a frame until its batch's tag; false if the batch is already as large as a sender may make it (cut the connection). */
  add(frame: Uint8Array): boolean {
    if (this.pending.length >= batchFramesMax || this.bytes >= batchBytesMax) return false;
    this.heldSinceMs ??= performance.now();
    this.mac ??= batchMac(this.key, this.batchIndex);
    addFrame(this.mac, frame);
    this.pending.push(frame);
    this.bytes += frame.length;
    return true;
  }

  /** The batch's frames if `tag` is theirs, else null (the connection's integrity is lost: cut it). */
  open(tag: Uint8Array): Uint8Array[] | null {
    if (!this.mac || tag.length !== tagBytes) return null;
    const expected = tagOf(this.mac);
    const frames = this.pending;
    this.mac = null;
    this.pending = [];
    this.bytes = 0;
    this.heldSinceMs = null;
    this.batchIndex += 1;
    return timingSafeEqual(expected, tag) ? frames : null;
  }
}
