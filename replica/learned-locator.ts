/**
 * A TreeLocator fed by an asynchronous directory (Tapestry locate): the host calls `learn` with
 * the members a locate found for an object, nearest first; `candidates` offers them before the
 * fallback (the configured ring servers), so joiners attach near themselves and the ring stays
 * the member of last resort. Bounded: the oldest learned objects are forgotten first.
 */
import { toHex } from '../core/bytes.ts';
import { checkArgument } from '../core/errors.ts';
import type { TreeLocator } from './types.ts';

export class LearnedLocator implements TreeLocator {
  private readonly learned = new Map<string, readonly string[]>();

  constructor(
    private readonly fallback: TreeLocator,
    private readonly objectsMax = 10_000,
    private readonly membersPerObjectMax = 8,
  ) {
    checkArgument(Number.isSafeInteger(objectsMax) && objectsMax > 0, 'objectsMax', 'a positive integer');
  }

  /** Members found for `aguid`, nearest first; replaces what was known. */
  learn(aguid: Uint8Array, members: readonly string[]): void {
    const key = toHex(aguid);
    this.learned.delete(key);
    if (this.learned.size >= this.objectsMax) this.learned.delete(this.learned.keys().next().value as string);
    this.learned.set(key, [...new Set(members)].slice(0, this.membersPerObjectMax));
  }

  candidates(aguid: Uint8Array): readonly string[] {
    const near = this.learned.get(toHex(aguid)) ?? [];
    return [...new Set([...near, ...this.fallback.candidates(aguid)])];
  }
}
