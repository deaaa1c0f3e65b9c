/** The erasure coder and self-verifying fragments: what the archive imports. */
export { encode, decode, reconstruct, encodeParityInto, decodeInto, shardBytesOf, type Shard, type CoderOptions } from './reed-solomon.ts';
export {
  makeFragments,
  verifyFragment,
  checkFragment,
  checkFragmentShape,
  fragmentRootOf,
  recoverBlock,
  fragmentFormatVersion,
  type FragmentRecord,
  type FragmentSet,
  type RecoverOptions,
} from './fragment.ts';
export { encodeFragment, decodeFragment, fragmentRecordBytesMaxDefault } from './fragment-codec.ts';
export { FragmentError, NotEnoughFragmentsError, type FragmentFault } from './errors.ts';
export { referenceKernel, type Kernel } from './kernel.ts';
export { defaultKernel, simdKernel, relaxedSimdKernel, redetectKernels } from './select-kernel.ts';
