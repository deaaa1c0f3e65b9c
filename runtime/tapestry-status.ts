/**
 * The Tapestry part of a node's admin /status: enough to see from outside that the overlay formed
 * (joined, table filled per level, who the neighbours are and how far), what this node publishes
 * and how many pointers it keeps for others, plus the core's counters.
 */
import { sharedPrefixLength } from '../tapestry/id.ts';
import type { TapestryService } from '../tapestry/service.ts';

/** Neighbours listed by name; a big table is summarised by the per-level counts. */
const neighboursListedMax = 64;

export function tapestryStatusOf(service: TapestryService, joined: boolean): Record<string, unknown> {
  const node = service.node;
  const neighbours = [...node.table.neighbours()]
    .map((n) => ({ name: n.name, level: sharedPrefixLength(n.id, node.self.id), rttMs: Math.round(n.rttMs * 1000) / 1000 }))
    .sort((a, b) => a.level - b.level || a.rttMs - b.rttMs);
  const perLevel: Record<string, number> = {};
  for (const n of neighbours) perLevel[n.level] = (perLevel[n.level] ?? 0) + 1;
  const published = node.publishedObjects();
  return {
    id: node.self.id,
    joined,
    member: node.isMember,
    tableSize: node.table.size,
    neighboursPerLevel: perLevel,
    neighbours: neighbours.slice(0, neighboursListedMax),
    backpointers: node.table.allBackpointers().length,
    publishedObjects: published.length,
    published: published.slice(0, 16),
    pointersHeld: node.pointers.size,
    clientLookupsPending: service.clientLookupsPending,
    stats: { ...node.stats },
    service: { ...service.stats },
  };
}
