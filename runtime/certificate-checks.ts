/**
 * Pairing checks on a thread of their own. A ring replica run with `certificateChecks: 'host'`
 * (ring/config.ts) hands each combined-signature check to its host as a `certificate-check`
 * output; this checks it in a worker thread and feeds the verdict back as a step of its own
 * (Replica.onCertificateChecked). A pairing on the WebAssembly engine costs ~5 ms, a normal-case
 * step well under one: inline, every round held up the agreement messages behind it (bench/ring.ts
 * measures both). The worker needs only the ring's public key, which key refreshes never change.
 *
 * If the worker fails, or leaves a check unanswered for `stallMs`, it is stopped and the checks it
 * had and every later one run inline: slower, never lost.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import type { Effect } from '../core/machine.ts';
import { PublicKeyVerifier } from '../core/threshold/signing.ts';
import { useMclBls } from './mcl-bls.ts';

interface CheckRequest {
  readonly id: number;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  /** The message hashed to G1 (48 bytes) by this process already, if it was: the worker skips hashing. */
  readonly hashed?: Uint8Array;
}

interface CheckVerdict {
  readonly id: number;
  readonly valid: boolean;
}

/** A `certificate-check` output, as ring/outputs.ts defines it (any core that asks for checks). */
export interface CertificateCheckEvent {
  readonly kind: 'certificate-check';
  readonly token: object;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
}

/** The core that asked, as its host sees it. */
export interface CertificateCheckTarget<M, O> {
  onCertificateChecked(token: object, valid: boolean, nowMs: number): Effect<M, O>[];
}

/** A worker that has not answered the oldest check for this long is taken for hung (a check takes ~5-15 ms). */
const stallMsDefault = 5000;

export class CertificateChecks {
  private worker: Worker | null;
  private readonly waiting = new Map<number, { request: CheckRequest; resolve: (valid: boolean) => void }>();
  private nextId = 1;
  private closed = false;
  private readonly watchdog: NodeJS.Timeout;
  /** Verdicts from the worker thread. */
  threadCount = 0;
  /** Checks run inline after the worker failed. */
  inlineCount = 0;

  constructor(
    private readonly verifier: PublicKeyVerifier,
    stallMs = stallMsDefault,
  ) {
    // tsx is not active in workers by default: register it, then load this module as the worker.
    const url = JSON.stringify(new URL(import.meta.url).href);
    this.worker = new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${url}); })`, {
      eval: true,
      workerData: { certificateChecks: verifier.publicKey },
    });
    this.worker.unref();
    this.worker.on('message', (v: CheckVerdict) => this.settle(v.id, v.valid));
    this.worker.on('error', () => this.fail());
    this.worker.on('exit', () => this.fail());
    // Checks are answered in order: the oldest one waiting says whether the worker still works.
    let oldest = 0;
    this.watchdog = setInterval(() => {
      const first = this.waiting.keys().next();
      if (!first.done && first.value === oldest) this.fail();
      oldest = first.done ? 0 : first.value;
    }, stallMs);
    this.watchdog.unref();
  }

  /**
   * True iff `signature` is valid for `message` under the ring key. `hashed`: the message's G1
   * point as this process hashed it (a replica's HashedCache), trusted as such.
   */
  check(message: Uint8Array, signature: Uint8Array, hashed?: Uint8Array): Promise<boolean> {
    return new Promise((resolve) => {
      const request: CheckRequest = { id: this.nextId++, message, signature, ...(hashed ? { hashed } : {}) };
      if (!this.worker) return resolve(this.closed ? false : this.inline(request));
      this.waiting.set(request.id, { request, resolve });
      this.worker.postMessage(request);
    });
  }

  /**
   * The host side of a core's check: runs it, then hands the verdict back through `execute` (the
   * host's step runner, e.g. MachineHost.execute on the core's channel), under the same
   * durability rule as any step.
   */
  forward<M, O>(event: CertificateCheckEvent, target: () => CertificateCheckTarget<M, O>, execute: (run: (nowMs: number) => Effect<M, O>[]) => void, hashed?: Uint8Array): void {
    void this.check(event.message, event.signature, hashed).then((valid) => {
      if (!this.closed) execute((nowMs) => target().onCertificateChecked(event.token, valid, nowMs));
    });
  }

  /** Stops the worker. Checks still out are not answered, and later ones say false: call it last. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    this.waiting.clear();
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private settle(id: number, valid: boolean): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (this.worker) this.threadCount++;
    w.resolve(valid);
  }

  private fail(): void {
    if (this.closed || (!this.worker && this.waiting.size === 0)) return;
    const worker = this.worker;
    this.worker = null;
    void worker?.terminate();
    for (const [id, w] of [...this.waiting]) this.settle(id, this.inline(w.request));
  }

  private inline(request: CheckRequest): boolean {
    this.inlineCount++;
    return this.verifier.verify(request.message, request.signature);
  }
}

/** Worker-thread entry: one PublicKeyVerifier on the WebAssembly engine, checks in arrival order. */
function checksWorker(publicKey: Uint8Array): void {
  const ready = useMclBls().then((engine) => ({ engine, verifier: new PublicKeyVerifier(publicKey) }));
  parentPort!.on('message', (request: CheckRequest) => {
    void ready.then(({ engine, verifier }) => {
      const valid = request.hashed ? engine.verify(request.signature, request.hashed, publicKey) : verifier.verify(request.message, request.signature);
      parentPort!.postMessage({ id: request.id, valid } satisfies CheckVerdict);
    });
  });
}

if (!isMainThread && (workerData as { certificateChecks?: Uint8Array } | null)?.certificateChecks) {
  checksWorker((workerData as { certificateChecks: Uint8Array }).certificateChecks);
}
