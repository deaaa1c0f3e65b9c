/**
 * Tapestry's public surface for hosts (runtime/, sim/, other roles):
 *
 *   const node = createTapestryNode(context, { crypto, publicKey });
 *   host.perform(node.join('ring-0', nowMs));              // or nothing, for the first node
 *   const { requestId, effects } = node.locate(objectIdOf(aguid), nowMs);
 *   // ... later an output event { kind: 'locateResult', requestId, server } arrives
 *
 * Frames on the wire: encodeTapestryMessage / decodeTapestryMessage (DecodeError on bad bytes).
 */
import type { Crypto } from '../core/crypto.ts';
import type { MachineContext } from '../core/machine.ts';
import type { TapestryConfig } from './config.ts';
import { tapestryIdOf } from './id.ts';
import { TapestryNode } from './node.ts';

export { TapestryNode } from './node.ts';
export type { TapestryNodeOptions } from './node.ts';
export { encodeTapestryMessage, decodeTapestryMessage, hopsMax } from './codec.ts';
export { tapestryIdOf, objectIdOf, isTapestryId, sharedPrefixLength } from './id.ts';
export type { NodeRef, TapestryId } from './id.ts';
export type { TapestryMessage, TapestryOutput, TapestryStats } from './messages.ts';
export { defaultTapestryConfig, tapestryConfig } from './config.ts';
export type { TapestryConfig } from './config.ts';

/**
 * Builds a node for a host: its name is the context's nodeId (what peers send to), its id is the
 * first 20 bytes of H(tapestry-id tag ‖ public key). Tapestry state is soft: nothing is written to
 * the store, and a restarted node simply joins again.
 */
export function createTapestryNode(
  context: MachineContext,
  options: { crypto: Crypto; publicKey: Uint8Array; config?: Partial<TapestryConfig>; gateway?: string | readonly string[] },
): TapestryNode {
  return new TapestryNode({
    self: { id: tapestryIdOf(options.crypto, options.publicKey), name: context.nodeId },
    random: context.random,
    nowMs: context.nowMs,
    config: options.config,
    ...(options.gateway === undefined ? {} : { gateway: options.gateway }),
  });
}

export { TapestryService } from './service.ts';
export type { TapestryServiceOptions, TapestryServiceStats } from './service.ts';
export { nodeObjectIdOf, roleObjectIdOf } from './named-objects.ts';
export { pointerAuthOf, pointerStatement } from './pointer-auth.ts';
export type { PointerAuth } from './pointer-auth.ts';
