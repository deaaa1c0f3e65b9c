/**
 * What a host needs to put the tree on a channel (runtime/machine-host.ts Binding): the codec and
 * the frame bound. Ring servers bind a TreeRootMachine, secondary replicas a SecondaryReplica, on
 * the replica channel.
 */
import { decodeTreeMessage, encodeTreeMessage, treeLimits } from './messages.ts';

export const treeWire = {
  protocol: 'replica',
  decode: decodeTreeMessage,
  encode: encodeTreeMessage,
  frameBytesMax: treeLimits.messageBytesMax,
} as const;
