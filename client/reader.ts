/**
 * Where an object handle's reads go and how they wait. Tree members differ in what they hold:
 * secondaries cache only objects they were pushed, and a ring server learns a new certificate a
 * little after the client that wrote it. So:
 *
 * - metadata probes (length 0: "which version is latest, what is its root block") go to every
 *   member at once; they are a few hundred bytes. A pinned probe, or one with maxAgeMs (a fresh
 *   ring heartbeat proves "latest"), takes the first verified answer; a plain "latest" probe
 *   settles only once f+1 ring servers have answered, on the newest verified version among the
 *   answers (see askAll);
 * - data chunks go to one member at a time, members that already proved the version first, and
 *   a stream keeps a few chunks in flight (spread over those members) so transfer, server work and
 *   verification overlap;
 * - when no member has caught up with a version this handle wrote, the read waits for that
 *   write's own certificate (an event) instead of polling blindly, then asks again.
 *
 * Nothing a member says is trusted: every reply goes through verifyRead (certificate under the
 * ring key, blocks re-hashed up to the VGUID); a "latest" answer older than what this handle has
 * seen is treated as stale, and one no older is taken only with f+1 ring servers' answers (or a
 * fresh heartbeat) behind it, which defeats a replayed old certificate. What it does not defeat:
 * a correct server's answer is its newest version it can prove, which lags a little when it has
 * not executed or learned the newest yet (up to 16 versions, replica/ring-server-member.ts
 * provableBelow), so f replayed answers plus one lagging correct one can settle a latest read
 * that far back if the servers that are up to date miss the grace below. A version this handle
 * wrote or saw is never gone below (knownVersion).
 */
import { toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { IntegrityError, NotFoundError, SessionClosedError, UnavailableError } from '../core/errors.ts';
import type { ReplicaTrust } from '../replica/types.ts';
import type { CallOptions, ReadReply, ReadRequest, Session } from './session.ts';
import { verifyRead, type VerifiedVersion } from './verify.ts';

export interface FetchOptions extends CallOptions {
  /** Demand a heartbeat no older than this from the answering member (latest reads only). */
  readonly maxAgeMs?: number;
}

/**
 * How long one member may take to answer before it counts as down for this attempt. Doubles with
 * each attempt: a server whose event loop is busy (archiving a large write) answers late, not never.
 */
export const memberReadTimeoutMs = 3_000;
const memberReadTimeoutMsMax = 24_000;
const fetchTimeoutMsDefault = 15_000;
/** Verified heads a handle remembers (each a root block, a certificate and a few small fields). */
const headsMax = 64;
/** Chunks a stream keeps in flight. */
export const readAheadChunks = 4;

/** status 'behind': a verified "latest" older than this handle's knownVersion. */
type Ask = { ok: true; value: VerifiedVersion } | { ok: false; reason: string; status: ReadReply['status'] | 'behind' | 'error' };
type Request = Omit<ReadRequest, 'type' | 'requestId'>;

export class VersionReader {
  /** Newest version this handle has seen committed or verified; "latest" never goes below it. */
  knownVersion = -1;
  /** The certificate of the newest version this handle wrote, while it is still on its way. */
  private pendingCertificate: { version: number; certified: Promise<void> } | null = null;
  /** Members that recently proved a version of this object, most recent first. */
  private holders: string[] = [];
  /**
   * Verified heads (root block and certificate checked) by version number. A certified version
   * never changes, so a pinned metadata read of one already seen needs no new round of probes
   * (a CLI `get` stats the latest version, then streams that version: one round, not two).
   */
  private readonly heads = new Map<number, VerifiedVersion>();
  /** Reads of this handle each member has not answered yet. */
  private readonly outstanding = new Map<string, number>();
  /** Recent time each member took per data read (moving average; unknown: 0, so it gets tried). */
  private readonly dataReadMs = new Map<string, number>();

  constructor(
    private readonly aguid: Uint8Array,
    private readonly session: Session,
    private readonly crypto: Crypto,
    private readonly trust: ReplicaTrust,
  ) {}

  /** Called after a commit: reads now wait for this version (and its certificate). */
  noteWrite(version: number, certified: Promise<void>): void {
    if (version < this.knownVersion) return;
    this.knownVersion = version;
    this.pendingCertificate = { version, certified };
    void certified.then(
      () => undefined,
      () => undefined,
    );
  }

  /**
   * A verified read of `length` bytes at `offset` of `version` (null: latest). Retries while no
   * member can serve it yet, until the deadline; integrity failures are never returned as data.
   */
  async fetch(version: number | null, offset: number, length: number, options: FetchOptions): Promise<VerifiedVersion> {
    const seen = version !== null && length === 0 ? this.heads.get(version) : undefined;
    if (seen) return seen;
    const deadlineMs = Date.now() + (options.timeoutMs ?? fetchTimeoutMsDefault);
    let forged: IntegrityError | null = null;
    let full: Error | null = null;
    for (let attempt = 0; ; attempt++) {
      const request: Request = { aguid: this.aguid, version, offset, length, maxAgeMs: version === null ? (options.maxAgeMs ?? 0) : 0 };
      const memberTimeoutMs = memberTimeoutOf(attempt, deadlineMs);
      const outcome = length === 0 ? await this.askAll(request, options, memberTimeoutMs) : await this.askInTurn(request, options, memberTimeoutMs);
      if (!(outcome instanceof Error)) return outcome;
      if (outcome instanceof IntegrityError) forged = outcome;
      if (memberTimeoutMs >= memberReadTimeoutMs) full = outcome;
      // A forged reply must not fail a read fast while honest members are still catching up.
      const retriable = outcome instanceof UnavailableError || outcome instanceof IntegrityError || (version !== null && outcome instanceof NotFoundError && !(outcome instanceof NoSuchVersionError));
      if (!retriable || options.signal?.aborted || Date.now() >= deadlineMs) throw finalError(outcome, forged, full);
      await this.waitForProgress(attempt, deadlineMs, options.signal);
    }
  }

  /** Members in the order a data read asks them: proven holders, then secondaries, then the ring. */
  candidates(): string[] {
    const view = this.session.view;
    const rest = [...view.secondaries, ...rotate(view.ring.map((m) => m.id))].filter((m) => !this.holders.includes(m));
    return [...this.holders, ...rest];
  }

  /**
   * Every member at once. A pinned probe, or one with maxAgeMs (the heartbeat proves "latest"),
   * takes the first verified answer. A plain "latest" probe waits until f+1 ring servers have
   * answered (one of them is correct; "behind" and "no such object" count as answers) and takes
   * the newest verified version among all answers, so one fast member replaying the certificate
   * of the version this handle last saw cannot pin it there; without enough ring answers it fails
   * (Unavailable, retried until the deadline) rather than guess. A ring server whose 'ok' failed
   * verification is provably faulty: each such one leaves one fewer faulty server among the rest,
   * so one fewer answer is needed (at least one). Ring servers learn a certificate a hop apart
   * (its f+1 combiners first, then their peers), so once the quorum is there the remaining ring
   * servers get a short grace (as long again as the quorum took, 10-250 ms) to name a newer
   * version; with every ring server up that ends with the slowest one's answer.
   */
  private askAll(request: Request, options: FetchOptions, memberTimeoutMs: number): Promise<VerifiedVersion | Error> {
    const members = this.candidates();
    const view = this.session.view;
    const ring = new Set(view.ring.map((m) => m.id));
    const quorum = request.version === null && request.maxAgeMs === 0;
    const startedMs = Date.now();
    const failures: { member: string; ask: Ask & { ok: false } }[] = [];
    return new Promise((resolve) => {
      let settled = false;
      let pending = members.length;
      let ringPending = members.filter((m) => ring.has(m)).length;
      let ringAnswers = 0;
      let ringForged = 0;
      let best: VerifiedVersion | null = null;
      let grace: NodeJS.Timeout | undefined;
      const controller = new AbortController();
      const onAbort = (): void => controller.abort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      /** Members that answered with a verified version, and which. */
      const answered: { member: string; version: number }[] = [];
      const finish = (value: VerifiedVersion | Error): void => {
        if (settled) return;
        settled = true;
        // Holders are the members that answered the version settled on: one that lags and answered
        // an older one (a ring server names its newest provable version) would be asked first for
        // the next data read of this one, and answer not-cached.
        if (!(value instanceof Error)) for (const a of answered.reverse()) if (a.version === value.version) this.noteHolder(a.member); // the first to answer leads
        clearTimeout(grace);
        options.signal?.removeEventListener('abort', onAbort);
        controller.abort(); // the other members' answers are no longer needed
        resolve(value);
      };
      const ringAnswersNeeded = (): number => Math.max(1, view.f + 1 - ringForged);
      const onAnswer = (member: string, ask: Ask): void => {
        pending--;
        if (ring.has(member)) {
          ringPending--;
          if (ask.ok || ask.status === 'behind' || ask.status === 'unknown-object') ringAnswers++;
          else if (ask.status === 'ok') ringForged++;
        }
        if (ask.ok) answered.push({ member, version: ask.value.version });
        if (ask.ok && (best === null || ask.value.version > best.version)) best = ask.value;
        if (!ask.ok) failures.push({ member, ask });
        if (best !== null && !quorum) return finish(best);
        if (best !== null && ringAnswers >= ringAnswersNeeded()) {
          if (ringPending === 0) return finish(best);
          const chosen = best;
          grace ??= setTimeout(() => finish(best ?? chosen), Math.min(250, Math.max(10, Date.now() - startedMs)));
        }
        if (pending > 0) return;
        if (best === null || options.signal?.aborted) return finish(this.failureOf(request, failures, options.signal));
        if (ringAnswers >= ringAnswersNeeded()) return finish(best);
        const summary = failures.map((f) => `${f.member}: ${f.ask.reason}`).join('; ');
        finish(new UnavailableError(`a latest read needs ${ringAnswersNeeded()} ring servers to answer, ${ringAnswers} did: ${summary}`));
      };
      for (const member of members) {
        // Only a closed session throws here (askOnce): the read ends with it.
        void this.askMember(member, request, { signal: controller.signal, timeoutMs: memberTimeoutMs }).then(
          (ask) => onAnswer(member, ask),
          (error: Error) => finish(error),
        );
      }
    });
  }

  /** One member after another (data chunks are large: never ask two for the same bytes at once). */
  private async askInTurn(request: Request, options: FetchOptions, memberTimeoutMs: number, members = this.candidates()): Promise<VerifiedVersion | Error> {
    const failures: { member: string; ask: Ask & { ok: false } }[] = [];
    for (const member of members) {
      const ask = await this.askMember(member, request, { signal: options.signal, timeoutMs: memberTimeoutMs });
      if (ask.ok) return ask.value;
      failures.push({ member, ask });
      if (options.signal?.aborted) break;
    }
    return this.failureOf(request, failures, options.signal);
  }

  /**
   * A stream's chunk goes first to the holder expected to finish it soonest: (reads of this handle
   * it has outstanding + 1) × its recent time per data read (ties: the `index`-th holder onwards).
   * Chunks spread over the holders, and one that is busy (archiving, serving a secondary) gets
   * fewer of them than one that answers fast; round-robin made every 4th chunk wait for it.
   */
  fetchChunk(index: number, version: number, offset: number, length: number, options: FetchOptions): Promise<VerifiedVersion> {
    const members = this.candidates();
    const holderCount = Math.max(1, Math.min(this.holders.length, members.length));
    const first = index % holderCount;
    const rotated = [...members.slice(first, holderCount), ...members.slice(0, first)];
    // A stable sort keeps the rotation among equally loaded holders.
    const expected = (m: string): number => ((this.outstanding.get(m) ?? 0) + 1) * (this.dataReadMs.get(m) ?? 0);
    const byLoad = rotated.map((m, at) => ({ m, at, load: expected(m) })).sort((a, b) => a.load - b.load || a.at - b.at);
    const ordered = [...byLoad.map((x) => x.m), ...members.slice(holderCount)];
    return this.fetchWith(version, offset, length, options, ordered);
  }

  private async fetchWith(version: number, offset: number, length: number, options: FetchOptions, members: string[]): Promise<VerifiedVersion> {
    const deadlineMs = Date.now() + (options.timeoutMs ?? fetchTimeoutMsDefault);
    let forged: IntegrityError | null = null;
    let full: Error | null = null;
    for (let attempt = 0; ; attempt++) {
      const request: Request = { aguid: this.aguid, version, offset, length, maxAgeMs: 0 };
      const memberTimeoutMs = memberTimeoutOf(attempt, deadlineMs);
      const outcome = await this.askInTurn(request, options, memberTimeoutMs, attempt === 0 ? members : this.candidates());
      if (!(outcome instanceof Error)) return outcome;
      if (outcome instanceof IntegrityError) forged = outcome;
      if (memberTimeoutMs >= memberReadTimeoutMs) full = outcome;
      const retriable = outcome instanceof UnavailableError || outcome instanceof IntegrityError || (outcome instanceof NotFoundError && !(outcome instanceof NoSuchVersionError));
      if (!retriable || options.signal?.aborted || Date.now() >= deadlineMs) throw finalError(outcome, forged, full);
      await this.waitForProgress(attempt, deadlineMs, options.signal);
    }
  }

  private async askMember(member: string, request: Request, options: CallOptions): Promise<Ask> {
    this.outstanding.set(member, (this.outstanding.get(member) ?? 0) + 1);
    const startedMs = Date.now();
    let ask: Ask;
    try {
      ask = await this.askOnce(member, request, options);
    } finally {
      const left = (this.outstanding.get(member) ?? 1) - 1;
      if (left > 0) this.outstanding.set(member, left);
      else this.outstanding.delete(member);
    }
    if (request.length > 0) {
      // A data read that failed (timeout, refusal, a reply that does not verify) counts as slow,
      // so a member that answers fast with nothing useful does not attract the next chunks.
      const tookMs = ask.ok ? Math.max(1, Date.now() - startedMs) : Math.max(memberReadTimeoutMs, Date.now() - startedMs);
      const was = this.dataReadMs.get(member);
      this.dataReadMs.set(member, was === undefined ? tookMs : 0.7 * was + 0.3 * tookMs);
    }
    return ask;
  }

  private async askOnce(member: string, request: Request, options: CallOptions): Promise<Ask> {
    let reply: ReadReply;
    try {
      reply = await this.session.read(member, request, { signal: options.signal, timeoutMs: options.timeoutMs ?? memberReadTimeoutMs });
    } catch (error) {
      // Closed: no member will answer; the read ends now rather than at its deadline.
      if (error instanceof SessionClosedError) throw error;
      return { ok: false, reason: (error as Error).message, status: 'error' };
    }
    const checked = verifyRead(this.crypto, this.trust, { type: 'read', ...request, requestId: reply.requestId }, reply, Date.now());
    // A reply too old only by this reader's clock is stale, not forged (failureOf: IntegrityError).
    if (!checked.ok) return { ok: false, reason: checked.reason, status: checked.stale ? 'too-stale' : reply.status };
    if (request.version === null && checked.value.version < this.knownVersion) {
      return { ok: false, reason: `behind (version ${checked.value.version} < ${this.knownVersion})`, status: 'behind' };
    }
    this.knownVersion = Math.max(this.knownVersion, checked.value.version);
    if (request.length === 0) {
      if (this.heads.size >= headsMax) this.heads.delete(this.heads.keys().next().value as number);
      this.heads.set(checked.value.version, checked.value);
    }
    // A latest probe's holders are set once it settles on a version (askAll).
    if (!(request.version === null && request.length === 0)) this.noteHolder(member);
    return { ok: true, value: checked.value };
  }

  /** `member` proved the version read: it goes first among the holders. */
  private noteHolder(member: string): void {
    this.holders = [member, ...this.holders.filter((m) => m !== member)].slice(0, 4);
  }

  private failureOf(request: Request, failures: { member: string; ask: Ask & { ok: false } }[], signal?: AbortSignal): Error {
    if (signal?.aborted) return signal.reason instanceof Error ? signal.reason : new UnavailableError('read aborted');
    const ring = new Set(this.session.view.ring.map((m) => m.id));
    const unknown = failures.filter((f) => f.ask.status === 'unknown-object' && ring.has(f.member)).length;
    const noVersion = failures.filter((f) => f.ask.status === 'no-such-version' && ring.has(f.member)).length;
    // Likewise for a version: 2f+1 ring servers that neither executed nor hold a certificate of it
    // include f+1 correct ones. Not for a version this handle wrote or saw (its certificate may
    // still be on its way to them).
    if (request.version !== null && noVersion >= 2 * this.session.view.f + 1 && request.version > this.knownVersion) {
      const latest = this.knownVersion >= 0 ? ` (the latest this handle has seen is ${this.knownVersion})` : '';
      return new NoSuchVersionError(`object ${toHex(this.aguid).slice(0, 16)}… version ${request.version} does not exist${latest}`);
    }
    // 2f+1 ring servers saying "no such object" include f+1 correct ones, so at least one besides
    // a member that joined the ring lately (one replacement at a time) and may not know it yet.
    if (unknown >= 2 * this.session.view.f + 1 && this.knownVersion < 0) {
      const what = request.version === null ? '' : `version ${request.version} `;
      return new NotFoundError(`object ${toHex(this.aguid).slice(0, 16)}… ${what}does not exist`);
    }
    const summary = failures.map((f) => `${f.member}: ${f.ask.reason}`).join('; ');
    // A reply that claimed success and failed verification is evidence of tampering: say so.
    if (failures.some((f) => f.ask.status === 'ok')) return new IntegrityError(`no member proved the read: ${summary}`);
    return new UnavailableError(`no member could serve the read: ${summary}`);
  }

  /**
   * Between attempts: if this handle's own newest write is still waiting for its certificate,
   * wait for that (members learn it about when the writer does); otherwise back off briefly.
   */
  private async waitForProgress(attempt: number, deadlineMs: number, signal?: AbortSignal): Promise<void> {
    const pending = this.pendingCertificate;
    const backoffMs = Math.min(500, 20 * 2 ** attempt);
    const waitMs = Math.max(0, Math.min(deadlineMs - Date.now(), pending && attempt === 0 ? deadlineMs - Date.now() : backoffMs));
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const waits: Promise<unknown>[] = [new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))];
    if (pending && attempt === 0) waits.push(pending.certified.then(() => (this.pendingCertificate = null), () => undefined));
    if (signal) waits.push(new Promise((resolve) => signal.addEventListener('abort', (onAbort = () => resolve(undefined)), { once: true })));
    await Promise.race(waits);
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

/** A version 2f+1 ring servers have neither executed nor certified: final, not retried. */
class NoSuchVersionError extends NotFoundError {}

/**
 * The error a failed read ends with: if any attempt met a reply that claimed success and failed
 * verification, that is the news (IntegrityError), even when the last attempt only timed out.
 * Otherwise the last attempt's, and when that one had only the deadline's remainder (members "no
 * answer within 1 ms"), also what the last attempt that gave members their full time was told.
 */
function finalError(last: Error, forged: IntegrityError | null, full: Error | null): Error {
  if (forged && last instanceof UnavailableError) return forged;
  if (full && full.message !== last.message && last instanceof UnavailableError) return new UnavailableError(`${last.message}; before that, with time to answer: ${full.message}`);
  return last;
}

function memberTimeoutOf(attempt: number, deadlineMs: number): number {
  return Math.max(1, Math.min(memberReadTimeoutMs * 2 ** attempt, memberReadTimeoutMsMax, deadlineMs - Date.now()));
}

function rotate<T>(items: T[]): T[] {
  const at = Math.floor(Math.random() * items.length);
  return [...items.slice(at), ...items.slice(0, at)];
}
