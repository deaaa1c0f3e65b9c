/**
 * Small builders for Pond update clauses, so SDK users write
 * `obj.update([when(versionIs(3)).then(writeBytes(0, data))])` instead of raw records.
 * Every predicate and action of core/update is here.
 */
import type { Action, BlockSource, Clause, Predicate } from '../core/update/update.ts';

export type { Action, BlockSource, Clause, Predicate };

export const always = (): Predicate => ({ kind: 'always' });
export const versionIs = (version: number): Predicate => ({ kind: 'version-is', version });
export const sizeIs = (sizeBytes: number): Predicate => ({ kind: 'size-is', sizeBytes });
export const blockHashIs = (index: number, bguid: Uint8Array): Predicate => ({ kind: 'block-hash-is', index, bguid });
export const bytesEqual = (offset: number, bytes: Uint8Array): Predicate => ({ kind: 'bytes-equal', offset, bytes });
export const bytesHashIs = (offset: number, length: number, sha256: Uint8Array): Predicate => ({
  kind: 'bytes-hash-is',
  offset,
  length,
  sha256,
});

export const writeBytes = (offset: number, bytes: Uint8Array): Action => ({ kind: 'write-bytes', offset, bytes });
export const append = (bytes: Uint8Array): Action => ({ kind: 'append', bytes });
export const appendBlocks = (blocks: readonly BlockSource[]): Action => ({ kind: 'append-blocks', blocks });
export const replaceBlock = (index: number, block: BlockSource): Action => ({ kind: 'replace-block', index, block });
export const insertBlock = (index: number, block: BlockSource): Action => ({ kind: 'insert-block', index, block });
export const deleteBlock = (index: number): Action => ({ kind: 'delete-block', index });
export const truncate = (sizeBytes: number): Action => ({ kind: 'truncate', sizeBytes });
export const setAcl = (writerPublicKeys: readonly Uint8Array[]): Action => ({ kind: 'set-acl', writerPublicKeys });
export const inline = (bytes: Uint8Array): BlockSource => ({ kind: 'inline', bytes });
export const ref = (bguid: Uint8Array, length: number): BlockSource => ({ kind: 'ref', bguid, length });

/** `when(p1, p2).then(a1, a2)`: a clause; `otherwise(...)` is `when(always())`. */
export function when(...predicates: Predicate[]): { then(...actions: Action[]): Clause } {
  return { then: (...actions) => ({ predicates, actions }) };
}

export function otherwise(...actions: Action[]): Clause {
  return { predicates: [always()], actions };
}
