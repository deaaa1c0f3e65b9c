/**
 * A view of a KvStore under a key prefix, so the cores sharing one process (a role's core and its
 * Tapestry node) share one lmdb environment and one group commit without seeing each other's keys.
 */
import { assert } from '../core/assert.ts';
import { discardNow, hasKey } from '../core/store.ts';
import type { DurableKvStore } from './machine-host.ts';

export class PrefixedKvStore implements DurableKvStore {
  constructor(
    private readonly inner: DurableKvStore,
    private readonly prefix: string,
  ) {
    assert(prefix.length > 0 && prefix.endsWith('/'), 'a store prefix ends with "/"');
  }

  get(key: string): Uint8Array | undefined {
    return this.inner.get(this.prefix + key);
  }
  has(key: string): boolean {
    return hasKey(this.inner, this.prefix + key);
  }
  put(key: string, value: Uint8Array): void {
    this.inner.put(this.prefix + key, value);
  }
  delete(key: string): void {
    this.inner.delete(this.prefix + key);
  }
  discardNow(keys: readonly string[]): void {
    discardNow(this.inner, keys.map((key) => this.prefix + key));
  }
  keys(prefix: string): string[] {
    return this.inner.keys(this.prefix + prefix).map((k) => k.slice(this.prefix.length));
  }
  get dirty(): boolean {
    return this.inner.dirty;
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
}
