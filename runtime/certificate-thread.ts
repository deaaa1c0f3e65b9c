/**
 * Certificate cryptography on a thread of its own. A ring replica run with `certificateWork:
 * 'host'` (ring/config.ts) hands its threshold BLS work to its host as `certificate-work` outputs:
 * its share of a span header (~2 ms: hash to G1, a multiplication), a combination of f+1 shares
 * and its check (~1 ms and a ~5 ms pairing), a check of another certifier's signature (a pairing).
 * This does each on a worker thread and feeds the result back as a step of its own
 * (Replica.onCertificateWork). Inline, every round held up the agreement messages behind it
 * (bench/ring.ts measures both ways). The worker gets the ring public key at start and the key
 * share with each share it signs (key refreshes change shares, never the ring key).
 *
 * If the worker fails, or answers nothing for `stallMs` while work waits, it is stopped, the work
 * it had is done inline (the output's own `run`) and a new worker takes later work (after four
 * workers, everything runs inline): slower, never lost. What a replica has in flight here is
 * bounded by the protocol (ring/replica.ts certificateWork), so that backlog is small.
 */
import { Worker } from 'node:worker_threads';
import type { Effect } from '../core/machine.ts';
import type { CertificateWork, CertificateWorkResult } from '../ring/outputs.ts';

/**
 * The worker's own bundle when this code runs from the launcher's bundle (runtime/node-bundle.ts
 * puts the path here with an esbuild define); from source, the worker is loaded through tsx.
 */
const bundledWorker: string | undefined = process.env.OCEANSTORE_CHECKS_WORKER_BUNDLE;
const workerSource = new URL('./certificate-thread-worker.ts', import.meta.url).href;

export interface WorkRequest {
  readonly id: number;
  readonly work: CertificateWork;
  /** The message hashed to G1 (48 bytes) by this process already, if it was: the worker skips hashing. */
  readonly hashed?: Uint8Array;
}

export interface WorkDone {
  readonly id: number;
  readonly result: CertificateWorkResult;
}

/** A `certificate-work` output, as ring/outputs.ts defines it (any core that hands out such work). */
export interface CertificateWorkEvent {
  readonly kind: 'certificate-work';
  readonly token: object;
  readonly work: CertificateWork;
  readonly threadable: boolean;
  run(): CertificateWorkResult;
}

/** The core that asked, as its host sees it. */
export interface CertificateWorkTarget<M, O> {
  onCertificateWork(token: object, result: CertificateWorkResult, nowMs: number): Effect<M, O>[];
}

/** What a failed share or combination comes back as: no G1 point, so it fails every check (a combiner then checks shares one by one). */
const invalidSignature: Uint8Array = new Uint8Array(48);
/** A worker that answers nothing for this long while work waits is taken for hung (a piece takes ~2-15 ms). */
const stallMsDefault = 5000;
/** A worker not ready this long after it was started (tsx, mcl and the key's precomputes load first) is taken for failed. */
const readyMsMax = 60_000;
/** Workers started at most this often (the first one and restarts); after that everything runs inline. */
const workerStartsMax = 4;

export class CertificateThread {
  private worker: Worker | null = null;
  private ready = false;
  private startedMs = 0;
  private starts = 0;
  private readonly waiting = new Map<number, { request: WorkRequest; run: () => CertificateWorkResult; resolve: (result: CertificateWorkResult) => void }>();
  private nextId = 1;
  private closed = false;
  private readonly watchdog: NodeJS.Timeout;
  /** Pieces done on the worker thread. */
  threadCount = 0;
  /** Pieces done inline (not threshold BLS, no key share, or their worker failed or stalled, or no worker is left). */
  inlineCount = 0;

  /** `onProblem`: told when the worker failed or stalled, and whether it was restarted (for the node's log). */
  constructor(
    /** The ring public key (96 bytes, compressed G2), which checks are made under. */
    private readonly ringPublicKey: Uint8Array,
    stallMs = stallMsDefault,
    private readonly onProblem: (text: string) => void = () => undefined,
  ) {
    this.spawn();
    // A worker that answered nothing for a whole period while the oldest piece waited through it is
    // hung (it answers by kind, so the oldest may wait behind newer ones, but never behind nothing).
    // A tick that comes late means this thread stalled (a result may be queued behind it): no judgement then.
    let oldest = 0;
    let answered = this.threadCount;
    let lastTickMs = performance.now();
    this.watchdog = setInterval(() => {
      const nowMs = performance.now();
      const late = nowMs - lastTickMs > 1.5 * stallMs;
      lastTickMs = nowMs;
      const first = this.waiting.keys().next();
      const id = first.done ? 0 : first.value;
      const judged = !late && (this.ready || nowMs - this.startedMs > readyMsMax);
      if (judged && id !== 0 && id === oldest && this.threadCount === answered) this.fail(`left its work unanswered for ${stallMs} ms`);
      oldest = id;
      answered = this.threadCount;
    }, stallMs);
    this.watchdog.unref();
  }

  /**
   * Does `work` on the worker if it is `threadable` (threshold BLS; a share needs its key share),
   * else with `run`. `hashed`: the message's G1 point as this process hashed it (a replica's
   * HashedCache), trusted as such.
   */
  do(work: CertificateWork, threadable: boolean, run: () => CertificateWorkResult, hashed?: Uint8Array): Promise<CertificateWorkResult> {
    return new Promise((resolve) => {
      const request: WorkRequest = { id: this.nextId++, work, ...(hashed ? { hashed } : {}) };
      const onThread = threadable && !(work.op === 'share' && work.keyShare === null);
      if (!this.worker || !onThread) return resolve(this.closed ? { valid: false, signature: null } : this.inline(run));
      this.waiting.set(request.id, { request, run, resolve });
      this.worker.postMessage(request);
    });
  }

  /**
   * The host side of a core's work: does it, then hands the result back through `execute` (the
   * host's step runner, e.g. MachineHost.execute on the core's channel), under the same
   * durability rule as any step.
   */
  forward<M, O>(event: CertificateWorkEvent, target: () => CertificateWorkTarget<M, O>, execute: (run: (nowMs: number) => Effect<M, O>[]) => void, hashed?: Uint8Array): void {
    void this.do(event.work, event.threadable, () => event.run(), hashed).then((result) => {
      if (!this.closed) execute((nowMs) => target().onCertificateWork(event.token, result, nowMs));
    });
  }

  /** Stops the worker. Work still out is never answered, and later work answers invalid undone: call it last. */
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
    const workerData = { certificateThread: this.ringPublicKey };
    // From source tsx is not active in workers by default: register it, then load the worker module.
    const worker = bundledWorker
      ? new Worker(bundledWorker, { workerData })
      : new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(workerSource)}); })`, { eval: true, workerData });
    worker.unref();
    this.worker = worker;
    // Events of a worker already replaced are ignored.
    worker.on('message', (m: WorkDone | { readonly ready: true }) => {
      if (worker !== this.worker) return;
      if ('ready' in m) this.ready = true;
      else this.settle(m.id, m.result);
    });
    worker.on('error', (error: Error) => worker === this.worker && this.fail(`failed: ${error.message}`));
    worker.on('exit', (code) => worker === this.worker && this.fail(`exited (${code})`));
  }

  private settle(id: number, result: CertificateWorkResult): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    if (this.worker) this.threadCount++;
    w.resolve(result);
  }

  /** The work the worker had is done inline (it is late already); later work goes to a new worker, a few times at most. */
  private fail(reason: string): void {
    if (this.closed || !this.worker) return;
    const worker = this.worker;
    this.worker = null;
    void worker.terminate();
    const restart = this.starts < workerStartsMax;
    this.onProblem(`certificate thread ${reason}; ${restart ? 'started again' : 'its work runs inline from now on'}`);
    for (const [id, w] of [...this.waiting]) this.settle(id, this.inline(w.run));
    if (restart) this.spawn();
  }

  /** `run` should not throw (signers and verifiers do not on what replicas hand over); if it does, the result is a failed one. */
  private inline(run: () => CertificateWorkResult): CertificateWorkResult {
    this.inlineCount++;
    try {
      return run();
    } catch (error) {
      this.onProblem(`certificate work failed inline: ${(error as Error).message}`);
      return { valid: false, signature: invalidSignature };
    }
  }
}
