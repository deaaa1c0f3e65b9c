/** Updates: the record, its codec and signature, predicates, actions and applyUpdate. */
export * from './update.ts';
export * from './update-codec.ts';
export * from './update-signature.ts';
export * from './nonce.ts';
export * from './predicates.ts';
export { type AbortReason, type ActionFailure } from './actions.ts';
export * from './apply.ts';
