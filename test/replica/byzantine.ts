/**
 * Byzantine behaviours of a secondary replica, as simulator interceptors on what it sends. They
 * are our own code, so they never see the ring's signing secret: all they can do is what a real
 * faulty member can — alter, reorder, drop or replay the bytes it forwards.
 */
import type { TreeMessage, LogEntry } from '../../replica/messages.ts';
import type { Interceptor } from '../../sim/simulation.ts';
import type { Prng } from '../../sim/prng.ts';
import { toyUpdate } from './toy-executor.ts';

function flipByte(bytes: Uint8Array, random: Prng): Uint8Array {
  const out = bytes.slice();
  if (out.length > 0) out[random.int(out.length)]! ^= 1 + random.int(255);
  return out;
}

/** Every way a forwarder can change one entry without the ring's key. */
export function forgeEntry(entry: LogEntry, others: readonly LogEntry[], random: Prng, aguid: Uint8Array): LogEntry {
  switch (random.int(6)) {
    case 0: // a different update under the real certificate
      return { ...entry, update: toyUpdate(aguid, random.bytes(100)) };
    case 1: // a corrupted certificate (signature, path or statement)
      return { ...entry, certificate: flipByte(entry.certificate, random) };
    case 2: // a corrupted update (digest no longer matches)
      return { ...entry, update: flipByte(entry.update, random) };
    case 3: // referenced blocks withheld or replaced
      return { ...entry, blocks: entry.blocks.length > 0 ? [random.bytes(entry.blocks[0]!.length)] : [random.bytes(4096)] };
    case 4: {
      // another version's certificate on this update
      const other = others.find((o) => o.certificate !== entry.certificate);
      return other ? { ...entry, certificate: other.certificate } : { ...entry, certificate: flipByte(entry.certificate, random) };
    }
    default: // a truncated (malformed) certificate
      return { ...entry, certificate: entry.certificate.subarray(0, random.int(entry.certificate.length)) };
  }
}

/** Forwards every push with its entries forged; heartbeats pass (so it looks alive). */
export function forger(aguid: Uint8Array): Interceptor<TreeMessage> {
  return (message, _to, random) => {
    if (message.type !== 'push') return [message];
    return [{ ...message, entries: message.entries.map((e) => forgeEntry(e, message.entries, random, aguid)) }];
  };
}

/** Forwards heartbeats (so it looks alive) but never a certified update. */
export function withholder(): Interceptor<TreeMessage> {
  return (message) => (message.type === 'push' ? [] : [message]);
}

/** Delivers pushes out of order: holds each one back and sends it after the next, entries reversed. */
export function reorderer(): Interceptor<TreeMessage> {
  const held = new Map<string, TreeMessage>();
  return (message, to) => {
    if (message.type !== 'push') return [message];
    const reversed: TreeMessage = { ...message, entries: [...message.entries].reverse() };
    const previous = held.get(to);
    held.set(to, reversed);
    return previous ? [reversed, previous] : [];
  };
}

/** Forwards updates faithfully but corrupts every heartbeat. */
export function heartbeatForger(): Interceptor<TreeMessage> {
  return (message, _to, random) => {
    if (message.type !== 'heartbeat') return [message];
    return [{ ...message, heartbeat: flipByte(message.heartbeat, random) }];
  };
}

/** Withholds updates and, when asked, claims to lack them itself (so its children cannot call it a withholder at once). */
export function behindClaimer(): Interceptor<TreeMessage> {
  return (message) => {
    if (message.type === 'push') return [];
    if (message.type === 'attach-ok') return [{ ...message, nextVersion: 0 }];
    return [message];
  };
}

/**
 * Forwards updates and heartbeats, but answers every block fetch with garbage (wrong bytes) or
 * claims not to hold the blocks, alternately: its children can never complete an update that
 * came as block references.
 */
export function blockForger(): Interceptor<TreeMessage> {
  let turn = 0;
  return (message, _to, random) => {
    if (message.type !== 'blocks') return [message];
    const lie = turn++ % 2 === 0;
    return [lie ? { ...message, blocks: message.blocks.map((b) => flipByte(b, random)) } : { ...message, blocks: [], absent: [] }];
  };
}
