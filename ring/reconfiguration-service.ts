/**
 * A ReplicatedService wrapper that executes reconfiguration records (ring/reconfiguration-state.ts)
 * beside the wrapped service (the Pond object service in production). Records are recognised by
 * their magic prefix; everything else goes to the inner service untouched. The reconfiguration
 * state is durable under `rcf/state` and travels inside the snapshot, so state transfer carries
 * the epoch schedule and the transcript too.
 */
import { assert } from '../core/assert.ts';
import { bytesEqual } from '../core/bytes.ts';
import { asBytesField, asTuple, decode, encode } from '../core/codec.ts';
import type { KvStore } from '../core/store.ts';
import type { BlockKind } from '../core/version/block.ts';
import { isReconfigurationOperation } from './reconfiguration-codec.ts';
import { ReconfigurationState, type ReconfigurationOptions } from './reconfiguration-state.ts';
import type { ExecutionContext, ExecutionResult, ReplicatedService } from './service.ts';

const stateKey = 'rcf/state';
const snapshotTag = 'os.reconfigurable-snapshot';

export class ReconfigurationService implements ReplicatedService {
  readonly state: ReconfigurationState;
  // Present only when the wrapped service stores blocks (the replica checks for them).
  readonly putBlock?: (kind: BlockKind, bytes: Uint8Array) => Uint8Array;
  readonly getBlock?: (bguid: Uint8Array) => { kind: BlockKind; bytes: Uint8Array } | undefined;

  constructor(
    readonly inner: ReplicatedService,
    private readonly store: KvStore,
    options: ReconfigurationOptions,
  ) {
    this.state = new ReconfigurationState(options);
    const saved = store.get(stateKey);
    assert(!saved || this.state.restore(saved), `${stateKey} in the store does not decode: the store is corrupt`);
    if (inner.putBlock) this.putBlock = inner.putBlock.bind(inner);
    if (inner.getBlock) this.getBlock = inner.getBlock.bind(inner);
  }

  execute(clientKey: Uint8Array, operation: Uint8Array, context: ExecutionContext): ExecutionResult {
    if (!isReconfigurationOperation(operation)) {
      // Deadlines run on agreed time: any executed request may close a phase.
      if (this.state.advance(context.seq, context.timestampMs)) this.save();
      return this.inner.execute(clientKey, operation, context);
    }
    const outcome = this.state.execute(clientKey, operation, context.seq, context.timestampMs);
    this.save();
    return { result: new TextEncoder().encode(outcome), statement: null };
  }

  heartbeatStatements(timestampMs: number, periodMs: number): Uint8Array[] {
    return this.inner.heartbeatStatements(timestampMs, periodMs);
  }

  snapshot(): Uint8Array {
    return encode([snapshotTag, this.inner.snapshot(), this.state.encode()]);
  }

  restore(snapshot: Uint8Array): boolean {
    let inner: Uint8Array;
    let state: Uint8Array;
    try {
      const t = asTuple(decode(snapshot, 1 << 28, 'reconfigurable snapshot'), 'reconfigurable snapshot', 3);
      if (t[0] !== snapshotTag) return false;
      inner = asBytesField(t[1], 'inner snapshot', {});
      state = asBytesField(t[2], 'reconfiguration state', {});
    } catch {
      return false;
    }
    const probe = new ReconfigurationState(this.state.options);
    if (!probe.restore(state) || !this.inner.restore(inner)) return false;
    this.state.restore(state);
    this.save();
    return true;
  }

  /**
   * Records from the admin key or a ring member (of the epoch in force or of the round in
   * progress): anyone can send bytes with the records' prefix, and timing those strictly handed any
   * client a strict timer on the primary (third review).
   */
  mustNotWait(clientKey: Uint8Array, operation: Uint8Array): boolean {
    if (!isReconfigurationOperation(operation)) return false;
    const s = this.state;
    const member = (m: { publicKey: Uint8Array }): boolean => bytesEqual(m.publicKey, clientKey);
    return bytesEqual(s.options.adminPublicKey, clientKey) || s.current.members.some(member) || (s.round?.newMembers.some(member) ?? false);
  }

  corruptBlocksFound(): number {
    return this.inner.corruptBlocksFound?.() ?? 0;
  }

  blocksNeeded(operation: Uint8Array, limit?: number): Uint8Array[] {
    return isReconfigurationOperation(operation) ? [] : (this.inner.blocksNeeded?.(operation, limit) ?? []);
  }

  missingStateBlocks(): Uint8Array[] {
    return this.inner.missingStateBlocks?.() ?? [];
  }


  private save(): void {
    this.store.put(stateKey, this.state.encode());
  }
}
