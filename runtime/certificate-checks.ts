/**
 * Pairing checks on a thread of their own. A ring replica run with `certificateChecks: 'host'`
 * (ring/config.ts) hands each combined-signature check to its host as a `certificate-check`
 * output; this checks it in a worker thread and feeds the verdict back as a step of its own
 * (Replica.onCertificateChecked). A pairing on the WebAssembly engine costs ~5 ms, a normal-case
 * step well under one: inline, every round held up the agreement messages behind it (bench/ring.ts
 * measures both). The worker needs only the ring's public key, which key refreshes never change.
 *
 * If the worker fails, or leaves a check unanswered for `stallMs`, it is stopped, the checks it had
 * run inline and a new worker takes the later ones (after four workers, every check runs inline):
 * slower, never lost.
 */
import { Worker } from 'node:worker_threads';
import type { Effect } from '../core/machine.ts';
import type { PublicKeyVerifier } from '../core/threshold/signing.ts';

/**
 * The worker's own bundle when this code runs from the launcher's bundle (runtime/node-bundle.ts
 * puts the path here with an esbuild define); from source, the worker is loaded through tsx.
 */
const bundledWorker: string | undefined = process.env.OCEANSTORE_CHECKS_WORKER_BUNDLE;
const workerSource = new URL('./certificate-checks-worker.ts', import.meta.url).href;

export interface CheckRequest {
  readonly id: number;
  readonly message: Uint8Array;
  readonly signature: Uint8Array;
  /** The message hashed to G1 (48 bytes) by this process already, if it was: the worker skips hashing. */
  readonly hashed?: Uint8Array;
}

export interface CheckVerdict {
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
/** A worker not ready this long after it was started (tsx, mcl and the key's precomputes load first) is taken for failed. */
const readyMsMax = 60_000;
/** Workers started at most this often (the first one and restarts); after that every check runs inline. */
const workerStartsMax = 4;

export class CertificateChecks {
  private worker: Worker | null = null;
  private ready = false;
  private startedMs = 0;
  private starts = 0;
  private readonly waiting = new Map<number, { request: CheckRequest; resolve: (valid: boolean) => void }>();
  private nextId = 1;
  private closed = false;
  private readonly watchdog: NodeJS.Timeout;
  /** Verdicts from the worker thread. */
  threadCount = 0;
  /** Checks run inline (their worker failed or stalled, or no worker is left). */
  inlineCount = 0;

  /** `onProblem`: told when the worker failed or stalled, and whether it was restarted (for the node's log). */
  constructor(
    private readonly verifier: PublicKeyVerifier,
    stallMs = stallMsDefault,
    private readonly onProblem: (text: string) => void = () => undefined,
  ) {
    this.spawn();
    // Checks are answered in order: the oldest one waiting says whether the worker still works. A
    // tick that comes late means this thread stalled (a verdict may be queued behind it): no judgement then.
    let oldest = 0;
    let lastTickMs = performance.now();
    this.watchdog = setInterval(() => {
      const nowMs = performance.now();
      const late = nowMs - lastTickMs > 1.5 * stallMs;
      lastTickMs = nowMs;
      const first = this.waiting.keys().next();
      const id = first.done ? 0 : first.value;
      const judged = !late && (this.ready || nowMs - this.startedMs > readyMsMax);
      if (judged && id !== 0 && id === oldest) this.fail(`left a check unanswered for ${stallMs} ms`);
      oldest = id;
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

  /** Stops the worker. Checks still out are never answered, and later ones answer false unchecked: call it last. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    this.waiting.clear();
    const worker = this.worker;
    this.worker = null;
    if (worker) await worker.terminate();
  }

  private spawn(): void {
    this.starts++;
    this.ready = false;
    this.startedMs = performance.now();
    const workerData = { certificateChecks: this.verifier.publicKey };
    // From source tsx is not active in workers by default: register it, then load the worker module.
    const worker = bundledWorker
      ? new Worker(bundledWorker, { workerData })
      : new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerSource)}); })`, { eval: true, workerData });
    worker.unref();
    this.worker = worker;
    // Events of a worker already replaced are ignored.
    worker.on('message', (m: CheckVerdict | { readonly ready: true }) => {
      if (worker !== this.worker) return;
      if ('ready' in m) this.ready = true;
      else this.settle(m.id, m.valid);
    });
    worker.on('error', (error: Error) => worker === this.worker && this.fail(`failed: ${error.message}`));
    worker.on('exit', (code) => worker === this.worker && this.fail(`exited (${code})`));
  }

  private settle(id: number, valid: boolean): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (this.worker) this.threadCount++;
    w.resolve(valid);
  }

  /** The checks the worker had run inline (they are late already); later ones go to a new worker, a few times at most. */
  private fail(reason: string): void {
    if (this.closed || !this.worker) return;
    const worker = this.worker;
    this.worker = null;
    void worker.terminate();
    const restart = this.starts < workerStartsMax;
    this.onProblem(`certificate check thread ${reason}; ${restart ? 'started again' : 'checks run inline from now on'}`);
    for (const [id, w] of [...this.waiting]) this.settle(id, this.inline(w.request));
    if (restart) this.spawn();
  }

  private inline(request: CheckRequest): boolean {
    this.inlineCount++;
    return this.verifier.verify(request.message, request.signature);
  }
}
