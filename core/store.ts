/**
 * Storage interfaces the cores write through. Writes are synchronous and staged; the host makes
 * them durable at its barrier (see core/machine.ts). Implementations: MemoryKvStore (here, used
 * by tests and the simulator, where "durable" means "survives a simulated crash"), and the lmdb
 * store in runtime/.
 */
import { assert } from './assert.ts';

export interface KvStore {
  get(key: string): Uint8Array | undefined;
  put(key: string, value: Uint8Array): void;
  delete(key: string): void;
  /** Keys that start with `prefix`, in ascending (UTF-16 code unit) order. */
  keys(prefix: string): string[];
  /**
   * Removes `keys` durably at once, all or none, ahead of the staged writes: for values found
   * corrupt on read, whose absence is always safe, and which must stay gone if the step that found
   * them then fails (the process stops, staged writes are lost, and a restart must not read the
   * same bytes again). A store without it is asked to `delete` them instead.
   */
  discardNow?(keys: readonly string[]): void;
  /** Whether `key` has a value, without handing out a copy of it (an lmdb get allocates one). */
  has?(key: string): boolean;
}

/** `store.has(key)` where the store has it, else a get. */
export function hasKey(store: KvStore, key: string): boolean {
  return store.has ? store.has(key) : store.get(key) !== undefined;
}

/** `store.discardNow(keys)` where the store has it, else `store.delete` of each. */
export function discardNow(store: KvStore, keys: readonly string[]): void {
  if (store.discardNow) store.discardNow(keys);
  else for (const key of keys) store.delete(key);
}

export class MemoryKvStore implements KvStore {
  private readonly map = new Map<string, Uint8Array>();

  get(key: string): Uint8Array | undefined {
    return this.map.get(key);
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  put(key: string, value: Uint8Array): void {
    assert(value instanceof Uint8Array, 'KvStore values are bytes');
    this.map.set(key, value);
  }

  delete(key: string): void {
    this.map.delete(key);
  }

  keys(prefix: string): string[] {
    const out: string[] = [];
    for (const k of this.map.keys()) if (k.startsWith(prefix)) out.push(k);
    return out.sort();
  }

  get size(): number {
    return this.map.size;
  }

  /** Total bytes of values: what a benchmark or cache limit counts. */
  valueBytes(): number {
    let n = 0;
    for (const v of this.map.values()) n += v.length;
    return n;
  }
}
