/** Shared fixtures for update tests: deterministic writers, signed updates, an apply loop. */
import { aguidOf, signerOf, type Signer } from '../../../core/crypto.ts';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { MemoryBlockStore } from '../../../core/version/block-store.ts';
import type { Head } from '../../../core/version/root-block.ts';
import { applyUpdate, type Outcome } from '../../../core/update/apply.ts';
import { signUpdate } from '../../../core/update/update-signature.ts';
import type { Action, Clause, Predicate, Update } from '../../../core/update/update.ts';

export const crypto = nodeCrypto;

export function writer(seedByte: number): Signer {
  return signerOf(crypto, new Uint8Array(32).fill(seedByte));
}

export const owner = writer(1);
export const alice = writer(2);
export const mallory = writer(3);
export const objectName = 'photos/cat.jpg';
export const aguid = aguidOf(crypto, owner.publicKey, objectName);

export function bytesOf(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (Math.imul(seed + 1, 0x9e3779b1) ^ 0x7f4a7c15) >>> 0;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

export function createAction(blockBytes = 16, fanoutMax = 4, writers: Uint8Array[] = []): Action {
  return { kind: 'create', name: objectName, blockBytes, fanoutMax, writerPublicKeys: writers };
}

let nonce = 0;
export function update(signer: Signer, clauses: Clause[], target = aguid): Update {
  return signUpdate(crypto, signer, { aguid: target, writerPublicKey: signer.publicKey, nonce: ++nonce, clauses });
}

export function clause(actions: Action[], predicates: Predicate[] = [{ kind: 'always' }]): Clause {
  return { predicates, actions };
}

/** A store plus the current head; `run` applies and advances the head on commit. */
export class ObjectUnderTest {
  readonly blocks: MemoryBlockStore;
  head: Head | null = null;
  timestampMs = 1_000;

  /** verifyOnGet off only where a test re-reads whole versions thousands of times (hashes are checked at put). */
  constructor(options: { verifyOnGet?: boolean } = {}) {
    this.blocks = new MemoryBlockStore(crypto, options);
  }

  run(u: Update): Outcome {
    const outcome = applyUpdate({ crypto, blocks: this.blocks, timestampMs: this.timestampMs++ }, this.head, u);
    if (outcome.kind === 'commit') this.head = outcome.head;
    return outcome;
  }

  commit(u: Update): Head {
    const outcome = this.run(u);
    if (outcome.kind !== 'commit') throw new Error(`expected a commit, got ${outcome.reason}: ${outcome.detail}`);
    return outcome.head;
  }
}
