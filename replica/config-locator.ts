/**
 * Tree members from the cluster configuration: the first attach's list, and the fallback behind
 * the runtime's Tapestry locator (runtime/tapestry-tree-locator.ts).
 * `near` are members this node should try first (same machine or rack), `roots` the ring
 * servers, tried last so the ring stays a member of last resort.
 */
import { checkArgument } from '../core/errors.ts';
import type { TreeLocator } from './types.ts';

export class ConfigLocator implements TreeLocator {
  private list: readonly string[];

  constructor(
    roots: readonly string[],
    private readonly near: readonly string[] = [],
  ) {
    checkArgument(Array.isArray(roots) && roots.length > 0, 'roots', 'at least one ring server id');
    this.list = [...new Set([...near, ...roots])];
  }

  /** The ring's members changed (a re-signed descriptor): the new ones are the roots from now on. */
  setRoots(roots: readonly string[]): void {
    checkArgument(Array.isArray(roots) && roots.length > 0, 'roots', 'at least one ring server id');
    this.list = [...new Set([...this.near, ...roots])];
  }

  candidates(): readonly string[] {
    return this.list;
  }
}
