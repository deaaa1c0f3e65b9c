/**
 * A small in-memory cluster of signed Tapestry nodes (idOf + real ed25519 pointerAuth), as the
 * runtime builds them, with full tables; `inject` delivers a message as if an authenticated member
 * sent it (what a Byzantine member can do). Adapted from the twentieth session review's repro.
 */
import { Prng } from '../../sim/prng.ts';
import { signerOf } from '../../core/crypto.ts';
import { nodeCrypto } from '../../runtime/node-crypto.ts';
import { tapestryIdOf, type NodeRef } from '../../tapestry/id.ts';
import type { TapestryMessage, TapestryOutput } from '../../tapestry/messages.ts';
import { TapestryNode } from '../../tapestry/node.ts';
import { pointerAuthOf, pointerStatement } from '../../tapestry/pointer-auth.ts';
import type { Effect } from '../../core/machine.ts';
import type { TapestryConfig } from '../../tapestry/config.ts';

export type Eff = Effect<TapestryMessage, TapestryOutput>[];

export class SignedCluster {
  readonly names: string[];
  readonly signers = new Map<string, ReturnType<typeof signerOf>>();
  readonly refs = new Map<string, NodeRef>();
  readonly nodes = new Map<string, TapestryNode>();
  readonly outputs: { node: string; event: TapestryOutput }[] = [];
  readonly queue: { from: string; to: string; message: TapestryMessage }[] = [];
  delivered = 0;
  nowMs = 1_000;

  constructor(count: number, config: Partial<TapestryConfig> = {}) {
    this.names = Array.from({ length: count }, (_, i) => `m${i}`);
    const keys = new Map<string, Uint8Array>();
    this.names.forEach((name, i) => {
      const signer = signerOf(nodeCrypto, new Uint8Array(32).fill(i + 1));
      this.signers.set(name, signer);
      keys.set(name, signer.publicKey);
      this.refs.set(name, { id: tapestryIdOf(nodeCrypto, signer.publicKey), name });
    });
    const idOf = (name: string) => (keys.has(name) ? tapestryIdOf(nodeCrypto, keys.get(name)!) : undefined);
    for (const name of this.names) {
      this.nodes.set(name, new TapestryNode({
        self: this.refs.get(name)!, random: new Prng(7).fork(name), nowMs: this.nowMs, config: { beaconIntervalMs: 0, maintenanceIntervalMs: 0, ...config }, idOf,
        pointerAuth: pointerAuthOf(nodeCrypto, this.signers.get(name)!, (n) => keys.get(n)),
      }));
    }
  }

  /** Every node learns every other (pings and pongs): full, consistent tables. */
  connectAll(): void {
    const all = [...this.refs.values()];
    for (const name of this.names) this.apply(name, this.nodes.get(name)!.introduce(all, this.nowMs));
    this.run();
  }

  apply(from: string, effects: Eff): void {
    for (const e of effects) {
      if (e.kind === 'output') this.outputs.push({ node: from, event: e.event });
      else this.queue.push({ from, to: e.to, message: e.message });
    }
  }

  /** Sends `message` to `to` as if `from` (an authenticated member) sent it. */
  inject(from: string, to: string, message: TapestryMessage): void {
    this.queue.push({ from, to, message });
  }

  run(limit = 1_000_000): void {
    for (let i = 0; i < limit && this.queue.length > 0; i++) {
      const m = this.queue.shift()!;
      const node = this.nodes.get(m.to);
      if (!node) continue;
      this.delivered++;
      this.nowMs += 0.01;
      this.apply(m.to, node.onMessage(m.from, m.message, this.nowMs));
    }
  }

  /** `name`'s own signed publish statement for objectId (what a member can make for itself). */
  statementOf(name: string, objectId: string, issuedAtMs: number): Extract<TapestryMessage, { kind: 'publish' }> {
    const ref = this.refs.get(name)!;
    const signature = this.nodes.get(name)!.auth!.sign(pointerStatement(objectId, ref.id, issuedAtMs, false));
    return { kind: 'publish', objectId, server: ref, level: 0, hops: 0, op: 'publish', issuedAtMs, signature, sideCopy: true };
  }
}

/** The last output of `kind` reported by node `name`. */
export function lastOutput<K extends TapestryOutput['kind']>(c: SignedCluster, name: string, kind: K): Extract<TapestryOutput, { kind: K }> | undefined {
  const found = c.outputs.filter((o) => o.node === name && o.event.kind === kind).at(-1);
  return found?.event as Extract<TapestryOutput, { kind: K }> | undefined;
}
