/** Blocks, block stores and the copy-on-write version tree. */
export * from './block.ts';
export * from './block-store.ts';
export * from './staging-block-store.ts';
export * from './interior-block.ts';
export * from './root-block.ts';
export * from './tree-read.ts';
export * from './tree-splice.ts';
export * from './tree-edit.ts';
export * from './tree-check.ts';
export * from './gc.ts';
export * from './node-cache.ts';
export * from './version-read.ts';
