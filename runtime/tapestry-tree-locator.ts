/**
 * Dissemination-tree members found through Tapestry (Pond: a secondary replica joins an object's
 * tree at a nearby member located through the overlay). Two halves, both for one process:
 *  - publish: when this process's secondary replica attaches to an object's tree it announces the
 *    object (id = objectIdOf(aguid)) on the overlay, and withdraws it when it detaches;
 *  - locate: `candidates(aguid)` (the replica's TreeLocator) asks the overlay for the object at the
 *    next Tapestry tick and offers the member it found, nearest first, before the configured
 *    fallback (other replicas, then the ring servers, the members of last resort).
 * The replica calls `candidates` inside its own step, so a locate's answer serves the next attach
 * (the first attach of a new object uses the fallback). Bounded: the oldest object learned is
 * forgotten first.
 */
import { checkArgument } from '../core/errors.ts';
import { objectIdOf } from '../tapestry/id.ts';
import type { TapestryId } from '../tapestry/id.ts';
import type { TapestryOutput } from '../tapestry/messages.ts';
import type { TapestryService } from '../tapestry/service.ts';
import type { ReplicaEvent } from '../replica/events.ts';
import type { TreeLocator } from '../replica/types.ts';

type LocateResult = Extract<TapestryOutput, { kind: 'locateResult' }>;

const aguidHexPattern = /^[0-9a-f]{40,}$/;

export interface TapestryTreeLocatorOptions {
  /** This process's name: never offered as its own parent. */
  readonly selfName: string;
  readonly objectsMax?: number;
}

export class TapestryTreeLocator implements TreeLocator {
  /** objectId -> members found, nearest first (one per locate; a newer answer goes in front). */
  private readonly learned = new Map<TapestryId, string[]>();
  /**
   * Objects candidates() asked for (objectId -> aguid): answers to this process's other locates are
   * not ours, and the aguid gives the fallback's members for the object when an answer comes.
   */
  private readonly asked = new Map<TapestryId, Uint8Array>();
  private readonly objectsMax: number;
  /** membersRefused: answers naming a member that is not among the fallback's (not learned). */
  readonly counters = { locatesWanted: 0, membersLearned: 0, membersRefused: 0, announced: 0, withdrawn: 0 };

  constructor(
    private readonly service: TapestryService,
    private readonly fallback: TreeLocator,
    private readonly options: TapestryTreeLocatorOptions,
  ) {
    checkArgument(typeof options?.selfName === 'string' && options.selfName.length > 0, 'options.selfName', 'this process\'s name');
    this.objectsMax = options.objectsMax ?? 10_000;
    checkArgument(Number.isSafeInteger(this.objectsMax) && this.objectsMax > 0, 'options.objectsMax', 'a positive integer');
  }

  candidates(aguid: Uint8Array): readonly string[] {
    const objectId = objectIdOf(aguid);
    // Ask again on every call: the nearest holder may have changed since the last answer.
    if (this.service.want(objectId)) this.counters.locatesWanted++;
    if (!this.asked.has(objectId)) {
      if (this.asked.size >= this.objectsMax) this.asked.delete(this.asked.keys().next().value as string);
      this.asked.set(objectId, aguid.slice());
    }
    const near = this.learned.get(objectId) ?? [];
    return [...new Set([...near, ...this.fallback.candidates(aguid)])];
  }

  /** Feed every locateResult of this process's Tapestry node (others' objects are ignored). */
  onLocateResult(event: LocateResult): void {
    const member = event.server?.name;
    if (!event.answered || member === undefined || member === this.options.selfName) return;
    const aguid = this.asked.get(event.objectId);
    if (aguid === undefined) return;
    // Anyone may publish objectIdOf(aguid), so the overlay's answer only reorders the members this
    // process would try anyway (other secondaries, the ring servers): a member of another role
    // that announces the object (or lies nearest) is not put first in our parent list.
    if (!this.fallback.candidates(aguid).includes(member)) return void this.counters.membersRefused++;
    const members = this.learned.get(event.objectId);
    this.learned.delete(event.objectId);
    if (this.learned.size >= this.objectsMax) this.learned.delete(this.learned.keys().next().value as string);
    this.learned.set(event.objectId, [member, ...(members ?? []).filter((m) => m !== member)].slice(0, 4));
    this.counters.membersLearned++;
  }

  /** Feed every event of this process's secondary replica: attach publishes, detach withdraws. */
  onReplicaEvent(event: ReplicaEvent): void {
    if (event.kind !== 'attached' && event.kind !== 'detached') return;
    if (!aguidHexPattern.test(event.aguid)) return;
    const objectId = event.aguid.slice(0, 40);
    if (this.service.announce(objectId, event.kind === 'attached')) {
      if (event.kind === 'attached') this.counters.announced++;
      else this.counters.withdrawn++;
    }
  }

  /** Members learned for `aguid` (for status and tests). */
  learnedFor(aguid: Uint8Array): readonly string[] {
    return this.learned.get(objectIdOf(aguid)) ?? [];
  }

}
