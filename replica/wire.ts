/**
 * What a host needs to put the tree on a channel (runtime/machine-host.ts Binding): the codec and
 * the frame bound. Ring servers bind a TreeRootMachine, secondary replicas a SecondaryReplica, on
 * the replica channel. `encodeFrame` is the same encoding with free bytes in front for the
 * channel byte, so a host can send a frame of blocks without copying it again.
 */
import { decodeTreeMessage, encodeTreeFrame, encodeTreeMessage, treeLimits } from './messages.ts';

export const treeWire = {
  protocol: 'replica',
  decode: decodeTreeMessage,
  encode: encodeTreeMessage,
  encodeFrame: encodeTreeFrame,
  frameBytesMax: treeLimits.messageBytesMax,
} as const;
