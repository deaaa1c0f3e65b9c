/**
 * A tiny Machine for host and process tests: `['add', n]` adds n to a durable total and answers
 * `['total', total]` to the sender; `['note', n]` durably records n and reveals nothing; a tick
 * counts ticks (volatile). Its decoder is bounded and
 * shape-checked like the real protocols', so malformed frames exercise the same drop path.
 */
import { asTuple, asUint, asLiteral, decode, encode } from '../../core/codec.ts';
import type { Effect, Machine } from '../../core/machine.ts';
import type { KvStore } from '../../core/store.ts';

export type CounterMessage = readonly ['add', number] | readonly ['total', number] | readonly ['note', number];
export const counterFrameBytesMax = 64;

export function encodeCounter(m: CounterMessage): Uint8Array {
  return encode(m);
}

export function decodeCounter(bytes: Uint8Array): CounterMessage {
  const t = asTuple(decode(bytes, counterFrameBytesMax, 'counter'), 'counter', 2);
  const n = asUint(t[1], 'counter.n', 1_000_000);
  if (t[0] === 'add') return ['add', n];
  if (t[0] === 'note') return ['note', n];
  return ['total', asLiteral(t[0], 'counter.kind', 'total') === 'total' ? n : n];
}

export class CounterMachine implements Machine<CounterMessage, number> {
  ticks = 0;
  constructor(private readonly store: KvStore) {}

  get total(): number {
    const b = this.store.get('total');
    return b ? Number(new TextDecoder().decode(b)) : 0;
  }

  onMessage(from: string, m: CounterMessage): Effect<CounterMessage, number>[] {
    if (m[0] === 'note') this.store.put('note', new TextEncoder().encode(String(m[1])));
    if (m[0] !== 'add') return [];
    const total = this.total + m[1];
    this.store.put('total', new TextEncoder().encode(String(total)));
    return [
      { kind: 'send', to: from, message: ['total', total] },
      { kind: 'output', event: total },
    ];
  }

  onTick(): Effect<CounterMessage, number>[] {
    this.ticks += 1;
    return [];
  }
}
