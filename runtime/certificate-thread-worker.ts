/**
 * The thread behind runtime/certificate-thread.ts: threshold BLS on the WebAssembly engine for one
 * ring key, answering work by kind (`priority`), each kind in arrival order. The span headers it hashes are cached (a certifier's
 * own share and its round's combination check hash the same header). It says `ready` once the
 * engine is loaded. Loaded only as a worker (from source through tsx,
 * or as the launcher's second bundle).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { BlsEngine } from '../core/threshold/accelerator.ts';
import { combineShares, signShare } from '../core/threshold/signing.ts';
import { HashedCache } from '../ring/bls-certificate-signer.ts';
import type { CertificateWorkResult } from '../ring/outputs.ts';
import type { WorkDone, WorkRequest } from './certificate-thread.ts';
import { useMclBls } from './mcl-bls.ts';

const invalidSignature: Uint8Array = new Uint8Array(48);

function perform(engine: BlsEngine, publicKey: Uint8Array, hashedCache: HashedCache, request: WorkRequest): CertificateWorkResult {
  const work = request.work;
  if (work.op === 'share') return { valid: true, signature: signShare(work.keyShare!, hashedCache.get(work.message)).signature };
  // A point this process's replica hashed (its HashedCache) needs no hashing here.
  const hashed = request.hashed ?? hashedCache.get(work.message).bytes!;
  if (work.op === 'check') return { valid: engine.verify(work.signature, hashed, publicKey), signature: null };
  let signature: Uint8Array = invalidSignature;
  try {
    signature = combineShares(work.shares.length, work.shares.map((s) => ({ index: s.replica + 1, signature: s.share })));
  } catch {
    // Undecodable shares: the replica then checks them one by one, as after any failed check.
  }
  return { valid: engine.verify(signature, hashed, publicKey), signature };
}

/**
 * Shares first, then combinations, then checks: a round's shares and its combination are on the
 * way to the clients' certificates, a check of another certifier's span-certified is not (its
 * clients have theirs already).
 */
const priority = { share: 0, combine: 1, check: 2 } as const;

function certificateThread(publicKey: Uint8Array): void {
  const hashedCache = new HashedCache();
  const queue: WorkRequest[] = [];
  let engine: BlsEngine | null = null;
  let scheduled = false;
  // One piece per turn of the event loop, so requests that came meanwhile are queued before the next is picked.
  const next = (): void => {
    scheduled = false;
    if (!engine || queue.length === 0) return;
    let best = 0;
    for (let k = 1; k < queue.length; k++) if (priority[queue[k]!.work.op] < priority[queue[best]!.work.op]) best = k;
    const request = queue.splice(best, 1)[0]!;
    parentPort!.postMessage({ id: request.id, result: perform(engine, publicKey, hashedCache, request) } satisfies WorkDone);
    schedule();
  };
  const schedule = (): void => {
    if (scheduled || queue.length === 0) return;
    scheduled = true;
    setImmediate(next);
  };
  void useMclBls().then((loaded) => {
    engine = loaded;
    parentPort!.postMessage({ ready: true });
    schedule();
  });
  parentPort!.on('message', (request: WorkRequest) => {
    queue.push(request);
    schedule();
  });
}

const data = workerData as { certificateThread?: Uint8Array } | null;
if (!isMainThread && data?.certificateThread) certificateThread(data.certificateThread);
