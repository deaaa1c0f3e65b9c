/**
 * A KvStore in front of the replica's durable store that can hold back the writes of one part of
 * a step. The host releases a step's sends only once every write staged before them is durable
 * (core/machine.ts); writes held here are not staged yet, so the sends of the step that made
 * them leave without waiting for their fsync. The replica uses it for execution only: a reply is
 * safe before the executed state is on this disk because the batch is already decided durably
 * elsewhere (2f+1 replicas persisted their prepared proofs before sending the commits that made
 * it committed here), and re-executing it after a crash gives the same result. The replica stages
 * held writes at its next tick, at the next message outside the normal case, and before anything
 * that must follow them (a checkpoint, state transfer, a membership switch), so every such send
 * waits for them as usual; the normal case's own messages leave them held (ring/replica.ts), so
 * the next update's votes do not wait for the previous update's execution to reach the disk.
 */
import { discardNow, hasKey, type KvStore } from '../core/store.ts';

export class DeferredWrites implements KvStore {
  /** Held writes in order of arrival; undefined marks a delete. */
  private readonly held = new Map<string, Uint8Array | undefined>();
  private holding = false;

  constructor(readonly inner: KvStore) {}

  /** Runs `work` with its writes held back until the next stage(). */
  hold<T>(work: () => T): T {
    const was = this.holding;
    this.holding = true;
    try {
      return work();
    } finally {
      this.holding = was;
    }
  }

  /** Stages every held write in the inner store (in order), so the host makes it durable. */
  stage(): void {
    if (this.held.size === 0) return;
    for (const [key, value] of this.held) {
      if (value === undefined) this.inner.delete(key);
      else this.inner.put(key, value);
    }
    this.held.clear();
  }

  get heldCount(): number {
    return this.held.size;
  }

  get(key: string): Uint8Array | undefined {
    return this.held.has(key) ? this.held.get(key) : this.inner.get(key);
  }

  has(key: string): boolean {
    return this.held.has(key) ? this.held.get(key) !== undefined : hasKey(this.inner, key);
  }

  put(key: string, value: Uint8Array): void {
    if (!this.holding) {
      this.held.delete(key);
      return this.inner.put(key, value);
    }
    // Re-inserted so iteration order is write order (a later write wins, as in the inner store).
    this.held.delete(key);
    this.held.set(key, value);
  }

  delete(key: string): void {
    if (!this.holding) {
      this.held.delete(key);
      return this.inner.delete(key);
    }
    this.held.delete(key);
    this.held.set(key, undefined);
  }

  /** Corrupt bytes come from the disk, never from a held write: the inner store removes them. */
  discardNow(keys: readonly string[]): void {
    discardNow(this.inner, keys);
  }

  keys(prefix: string): string[] {
    const out = new Set(this.inner.keys(prefix));
    for (const [key, value] of this.held) {
      if (!key.startsWith(prefix)) continue;
      if (value === undefined) out.delete(key);
      else out.add(key);
    }
    return [...out].sort();
  }
}
