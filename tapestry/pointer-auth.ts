/**
 * Signed pointers. A server's publish and unpublish are statements it signs — "I hold (or no
 * longer hold) object O, as of time T" — and every copy of a pointer carries that statement and its
 * signature, so a hop stores, forwards and answers with only what the server itself said. A
 * Byzantine member can then neither plant a pointer naming another server nor withdraw another
 * server's pointer, and a locate answer names a holder only with the holder's own word for it.
 * What it still can do is what any hop on a path can: drop what it should forward (and, as the hop
 * that handed a pointer on, retract it early: object-location.ts takes a retraction only from the
 * hop a pointer came from). T is the server's clock, so members' clocks are assumed to agree within
 * `clockSkewMaxMs` (config.ts), as NTP gives; ages and expiry follow from it.
 */
import { HashTag, signTagged, verifyTagged, type Crypto, type Signer } from '../core/crypto.ts';
import type { TapestryConfig } from './config.ts';
import { idBytes, idToBytes, type NodeRef, type TapestryId } from './id.ts';

/** Signs this node's statements and checks other members' (by their config name). */
export interface PointerAuth {
  sign(statement: Uint8Array): Uint8Array;
  verify(serverName: string, statement: Uint8Array, signature: Uint8Array): boolean;
}

/** The signature field where nodes run unsigned (the simulator), and of an answer without a holder. */
export const noSignature: Uint8Array = new Uint8Array(0);

/** objectId (20) ‖ server id (20) ‖ issuedAtMs (float64, big-endian) ‖ 1 for unpublish, 0 for publish. */
export function pointerStatement(objectId: TapestryId, serverId: TapestryId, issuedAtMs: number, unpublish: boolean): Uint8Array {
  const out = new Uint8Array(2 * idBytes + 9);
  out.set(idToBytes(objectId), 0);
  out.set(idToBytes(serverId), idBytes);
  new DataView(out.buffer).setFloat64(2 * idBytes, issuedAtMs);
  out[2 * idBytes + 8] = unpublish ? 1 : 0;
  return out;
}

/**
 * ed25519 under HashTag.tapestryPointer: this node signs with `signer`; a member's statement is
 * checked under the key `keyOf(name)` gives (the runtime: the ring descriptor), none for a stranger.
 */
export function pointerAuthOf(crypto: Crypto, signer: Signer, keyOf: (name: string) => Uint8Array | undefined): PointerAuth {
  return {
    sign: (statement) => signTagged(crypto, signer, HashTag.tapestryPointer, statement),
    verify(serverName, statement, signature) {
      const key = keyOf(serverName);
      return key !== undefined && verifyTagged(crypto, key, HashTag.tapestryPointer, statement, signature);
    },
  };
}

/** Issued less than a pointer lifetime ago and not further ahead than the clock skew allowed. */
export function statementCurrent(config: Pick<TapestryConfig, 'pointerTtlMs' | 'clockSkewMaxMs'>, issuedAtMs: number, nowMs: number): boolean {
  return nowMs - issuedAtMs < config.pointerTtlMs && issuedAtMs <= nowMs + config.clockSkewMaxMs;
}

/**
 * A holder someone else names for `objectId` (a locate or lookup answer): only with the holder's
 * own current publish statement (any current one where nodes run unsigned, `auth` undefined).
 */
export function holderProven(
  auth: PointerAuth | undefined, config: Pick<TapestryConfig, 'pointerTtlMs' | 'clockSkewMaxMs'>,
  objectId: TapestryId, server: NodeRef, issuedAtMs: number, signature: Uint8Array, nowMs: number,
): boolean {
  if (!statementCurrent(config, issuedAtMs, nowMs)) return false;
  return !auth || auth.verify(server.name, pointerStatement(objectId, server.id, issuedAtMs, false), signature);
}
