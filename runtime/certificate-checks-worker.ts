/**
 * The thread behind runtime/certificate-checks.ts: one PublicKeyVerifier for the ring key on the
 * WebAssembly engine, answering checks in arrival order. It says `ready` once the engine and the
 * key's precomputes are loaded. Loaded only as a worker (from source through tsx, or as the
 * launcher's second bundle).
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { PublicKeyVerifier } from '../core/threshold/signing.ts';
import type { CheckRequest, CheckVerdict } from './certificate-checks.ts';
import { useMclBls } from './mcl-bls.ts';

function checksWorker(publicKey: Uint8Array): void {
  const ready = useMclBls().then((engine) => ({ engine, verifier: new PublicKeyVerifier(publicKey) }));
  void ready.then(() => parentPort!.postMessage({ ready: true }));
  parentPort!.on('message', (request: CheckRequest) => {
    void ready.then(({ engine, verifier }) => {
      // A point this process's replica hashed (its HashedCache) needs no hashing here.
      const valid = request.hashed ? engine.verify(request.signature, request.hashed, publicKey) : verifier.verify(request.message, request.signature);
      parentPort!.postMessage({ id: request.id, valid } satisfies CheckVerdict);
    });
  });
}

const data = workerData as { certificateChecks?: Uint8Array } | null;
if (!isMainThread && data?.certificateChecks) checksWorker(data.certificateChecks);
