/**
 * A workload for drills and process tests. Writes a chain of versions to one key of the ring's versioned KV service and keeps the VGUID
 * chain it expects: vguid_v = H(root-tag ‖ vguid_{v−1} ‖ [key, v] ‖ value). Every write demands
 * the version after the last acknowledged one, so an acknowledged write that the ring lost (or
 * reordered) makes a later write conflict, and the final VGUID proves the whole acknowledged
 * history is in the ring's state.
 */
import { bytesEqual } from '../core/bytes.ts';
import { asBytesField, asTuple, asUint, decode, encode } from '../core/codec.ts';
import { HashTag, taggedHash } from '../core/crypto.ts';
import { kvKeyFor, kvOperation } from '../ring/kv-service.ts';
import { nodeCrypto } from './node-crypto.ts';
import type { RingSession } from './ring-session.ts';

export class ChainWriter {
  readonly key: string;
  version = 0;
  vguid: Uint8Array = new Uint8Array(32);
  acknowledged = 0;

  constructor(
    private readonly session: RingSession,
    private readonly clientIndex: number,
    name: string,
  ) {
    this.key = kvKeyFor(session.clientKeys[clientIndex]!, name);
  }

  /** One write; throws if the ring's answer is not the next link of the expected chain. */
  async write(value: Uint8Array, timeoutMs: number): Promise<number> {
    const op = kvOperation(this.key, this.version, value);
    const completion = await Promise.race([
      this.session.submit(this.clientIndex, op),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`write ${this.key} v${this.version + 1} timed out`)), timeoutMs).unref()),
    ]);
    const t = asTuple(decode(completion.result, 256, 'kv result'), 'kv result', 1, 3);
    if (t[0] !== 'ok') throw new Error(`write ${this.key} v${this.version + 1}: ring answered ${JSON.stringify(t[0])} ${String(t[1])}`);
    const version = asUint(t[1], 'version');
    const vguid = asBytesField(t[2], 'vguid', { bytes: 32 });
    const expected = taggedHash(nodeCrypto, HashTag.rootBlock, this.vguid, encode([this.key, this.version + 1]), value);
    if (version !== this.version + 1 || !bytesEqual(vguid, expected)) throw new Error(`write ${this.key}: version ${version} breaks the chain`);
    this.version = version;
    this.vguid = vguid;
    this.acknowledged += 1;
    return completion.latencyMs;
  }
}
