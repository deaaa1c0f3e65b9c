/**
 * The client side of the ring protocol as a Machine (Castro & Liskov OSDI'99 §4.1): it signs a
 * request with a fresh nonce, sends it to the replica it believes is primary, and completes on
 * f+1 matching replies from distinct replicas (one of them is correct), each signed or, over a
 * host with channel integrity (ClientConfig.channelIntegrity), received from the replica it
 * names. Without enough replies in time it resends to every replica, which relay to the primary
 * and start suspecting it.
 * The threshold certificate (signature on the batch root + Merkle path) follows; the client checks
 * it when it arrives. One request is outstanding at a time, so nonces execute in order; one whose
 * caller gave up is abandoned (abandon()) rather than holding every later one behind it.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import { asUint, decode, encode } from '../core/codec.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import { checkArgument } from '../core/errors.ts';
import { batchLeafHash, verifyBatchPath } from '../core/threshold/batch-merkle.ts';
import { batchMessage } from './certificate-format.ts';
import { checkRingShape, primaryOf, type ClientConfig } from './config.ts';
import type { CertificateMessage, ClientRequest, NoncePassed, Reply, RingMessage } from './messages.ts';
import type { RingOutput } from './outputs.ts';
import { requestDigest, signMessage, verifyMessage } from './signing.ts';

/** How many of an operation's earlier nonces a client still takes nonce-passed answers for. */
const signedAsMax = 16;

interface Outstanding {
  /** Signed again (a higher nonce, the same operation) when f+1 members say its nonce was passed. */
  request: ClientRequest;
  digest: Uint8Array;
  readonly startMs: number;
  sentMs: number;
  /** Retransmissions so far: each waits twice as long as the last (at most 16x retransmitMs). */
  retransmissions: number;
  readonly replies: Map<number, Reply>;
  completedSeq: number | null;
  /** The certificate may beat the f+1th reply. */
  certified: boolean;
  /** The key a certificate's statement must carry (ClientConfig.certificateBinding), or null without a binding. */
  readonly certificateKey: Uint8Array | null;
  /** Members whose certificate for this request failed a check: their later ones are dropped unchecked. */
  readonly refusedFrom: Set<string>;
  /**
   * Per member: the highest nonce it said it executed for this key, in answer to any of the nonces
   * this operation was signed under (NoncePassed). Answers for an earlier one stay valid lower
   * bounds (a record only grows): dropping them let one faulty member, answering first with its
   * own nonce, make the client sign again one nonce at a time (session-19 fifth review).
   */
  readonly passed: Map<number, number>;
  /** Members that said so of the current nonce: f+1 of them, and it is signed again. */
  readonly passedNow: Set<number>;
  /** Nonce -> digest of each request this operation was signed as (answers name one of them). */
  readonly signedAs: Map<number, Uint8Array>;
}

/** What a completed request still needs to accept its certificate. */
interface AwaitedCertificate {
  readonly seq: number;
  readonly startMs: number;
  readonly key: Uint8Array | null;
  readonly refusedFrom: Set<string>;
  /** When to ask the members again (certificate-request), and how often it has been asked. */
  askAtMs: number;
  asks: number;
}

/**
 * Asks for one certificate, each after twice the wait of the last: at 1, 3 and 7 x the first wait
 * after completion, inside the time a certifier keeps what it sent (ring/replica-certificates.ts).
 */
const certificateAsksMax = 3;

const nonceKey = 'client/nonce';
/** Requests whose certificate is still awaited after completion (when not awaiting it inline). */
const awaitingCertificateMax = 1024;

export class RingClient implements Machine<RingMessage, RingOutput> {
  private readonly config: ClientConfig;
  /** The ring's members in index order: config.members until setMembers() names newer ones. */
  private members: ClientConfig['members'];
  private readonly ctx: MachineContext;
  private readonly clientKeyHex: string;
  private lastNonce: number;
  private view = 0;
  private outstanding: Outstanding | null = null;
  private readonly queue: Uint8Array[] = [];
  private readonly awaitingCertificate = new Map<number, AwaitedCertificate>();
  /** The earliest askAtMs among them (ticks do not scan the map before). */
  private nextCertificateAskMs = Infinity;
  private out: Effect<RingMessage, RingOutput>[] = [];
  readonly counters = { completed: 0, certified: 0, retransmissions: 0, badReplies: 0, badCertificates: 0, abandoned: 0, resigned: 0 };

  /** The seqs of completed requests whose certificate has not come yet (for diagnostics). */
  awaitedCertificateSeqs(): number[] {
    return [...this.awaitingCertificate.values()].map((w) => w.seq);
  }

  constructor(ctx: MachineContext, config: ClientConfig) {
    checkRingShape(config.members, config.f);
    checkArgument(config.retransmitMs > 0, 'retransmitMs', 'a positive number of milliseconds');
    this.config = config;
    this.members = config.members;
    this.ctx = ctx;
    this.clientKeyHex = toHex(config.signer.publicKey);
    const stored = ctx.store.get(nonceKey);
    this.lastNonce = stored ? asUint(decode(stored, 16, 'client nonce'), 'client nonce') : 0;
  }

  /** The nonce the next submit() will carry (with a nonceFloor, a lower bound). */
  get nextNonce(): number {
    return this.lastNonce + this.queue.length + 1;
  }

  /** Requests waiting behind the outstanding one. */
  get backlog(): number {
    return this.queue.length + (this.outstanding ? 1 : 0);
  }

  /** Completed requests whose certificate has not arrived yet. */
  get certificatesAwaited(): number {
    return this.awaitingCertificate.size;
  }

  /** Queues an operation; it is sent when the previous one completes. */
  submit(operation: Uint8Array, nowMs: number): Effect<RingMessage, RingOutput>[] {
    this.queue.push(operation);
    this.sendNext(nowMs);
    return this.flush();
  }

  /**
   * Gives `operation` (the bytes passed to submit(), by identity) up: its caller stopped waiting.
   * Queued, it never leaves; in flight and not yet completed, it is forgotten and the next one goes
   * out. Replicas execute a client's nonces in increasing order and never one at or below the last
   * executed (ring/replica-execution.ts), so a request given up either executes before the next
   * one or never. Returns null when `operation` is not held (completed already, or unknown).
   */
  abandon(operation: Uint8Array, nowMs: number): Effect<RingMessage, RingOutput>[] | null {
    const queued = this.queue.indexOf(operation);
    if (queued >= 0) {
      this.queue.splice(queued, 1);
    } else {
      const o = this.outstanding;
      if (!o || o.completedSeq !== null || o.request.operation !== operation) return null;
      this.finishOutstanding(nowMs);
    }
    this.counters.abandoned++;
    return this.flush();
  }

  onMessage(from: string, message: RingMessage, nowMs: number): Effect<RingMessage, RingOutput>[] {
    if (message.kind === 'reply') this.onReply(from, message, nowMs);
    else if (message.kind === 'certificate') this.onCertificate(from, message, nowMs);
    else if (message.kind === 'nonce-passed') this.onNoncePassed(from, message, nowMs);
    return this.flush();
  }

  onTick(nowMs: number): Effect<RingMessage, RingOutput>[] {
    const o = this.outstanding;
    // Backing off matters under overload: a client re-sending to every replica at a fixed period
    // multiplies the load that made the ring slow in the first place.
    if (o && nowMs - o.sentMs >= this.config.retransmitMs * 2 ** Math.min(o.retransmissions, 4)) {
      o.sentMs = nowMs;
      o.retransmissions++;
      this.counters.retransmissions++;
      for (const m of this.members) this.out.push({ kind: 'send', to: m.id, message: o.request });
    }
    if (nowMs >= this.nextCertificateAskMs) this.askForCertificates(nowMs);
    return this.flush();
  }

  /**
   * Certificates go out once; one lost on the way (a partition, a lossy link, a restarted
   * client connection) is asked for again, from every member, at growing intervals: the
   * certifiers that sent it keep it (ring/replica-certificates.ts). Asking costs them no crypto.
   */
  private askForCertificates(nowMs: number): void {
    let next = Infinity;
    for (const [nonce, waiting] of this.awaitingCertificate) {
      if (nowMs >= waiting.askAtMs) {
        waiting.asks++;
        // After the last ask the certificate is still taken if it comes, but not asked for again.
        waiting.askAtMs = waiting.asks < certificateAsksMax ? nowMs + this.certificateRetryMs * 2 ** waiting.asks : Infinity;
        const request = { kind: 'certificate-request' as const, clientKey: this.config.signer.publicKey, nonce };
        for (const m of this.members) this.out.push({ kind: 'send', to: m.id, message: request });
      }
      next = Math.min(next, waiting.askAtMs);
    }
    this.nextCertificateAskMs = next;
  }

  private get certificateRetryMs(): number {
    return this.config.certificateRetryMs ?? 4 * this.config.retransmitMs;
  }

  /**
   * The ring's membership changed (a member replaced, as an admin-signed ring descriptor says; the
   * caller checks that): replies now count from the new member at its index. The request in
   * flight goes to every member at once, since the primary it was sent to may be the one gone.
   */
  setMembers(members: ClientConfig['members']): Effect<RingMessage, RingOutput>[] {
    checkRingShape(members, this.config.f);
    this.members = members;
    const o = this.outstanding;
    if (o && o.completedSeq === null) {
      // Replies counted so far came from the members of then; those that are still members
      // will answer again.
      o.replies.clear();
      for (const m of members) this.out.push({ kind: 'send', to: m.id, message: o.request });
    }
    return this.flush();
  }

  private sendNext(nowMs: number): void {
    if (this.outstanding) return;
    const operation = this.queue.shift();
    if (!operation) return;
    const request = this.signedRequest(operation);
    const digest = requestDigest(this.config.crypto, request);
    const certificateKey = this.config.certificateBinding?.operationKey(operation) ?? null;
    this.outstanding = {
      request, digest, startMs: nowMs, sentMs: nowMs, retransmissions: 0, replies: new Map(), completedSeq: null, certified: false, certificateKey, refusedFrom: new Set(),
      passed: new Map(), passedNow: new Set(), signedAs: new Map([[request.nonce, digest]]),
    };
    const primary = this.members[primaryOf(this.view, this.members.length)]!;
    this.out.push({ kind: 'send', to: primary.id, message: request });
  }

  /** `operation` under the next nonce, made durable before the request leaves (a restarted client never reuses one). */
  private signedRequest(operation: Uint8Array): ClientRequest {
    const nonce = (this.lastNonce = Math.max(this.lastNonce + 1, this.config.nonceFloor?.() ?? 0));
    this.ctx.store.put(nonceKey, encode(nonce));
    return signMessage<ClientRequest>(this.config.crypto, this.config.signer, {
      kind: 'request',
      clientKey: this.config.signer.publicKey,
      nonce,
      replyTo: this.ctx.nodeId,
      operation,
    });
  }

  /**
   * f+1 members say the outstanding request's nonce was passed and never executed (another client
   * with this key went first; replicas answer only for a nonce that provably never ran), so at
   * least one correct member says so, and no correct one will ever run it: the operation is
   * signed again above the (f+1)-th highest nonce the members reported for any of its nonces (one
   * a correct member reached; a faulty one's huge number is never taken) and sent to all.
   */
  private onNoncePassed(from: string, m: NoncePassed, nowMs: number): void {
    const o = this.outstanding;
    const digest = o?.signedAs.get(m.nonce);
    if (!o || o.completedSeq !== null || !digest || m.executedNonce < m.nonce) return;
    if (!this.answersFor(from, m, o.request.clientKey, digest)) return;
    o.passed.set(m.replica, Math.max(o.passed.get(m.replica) ?? 0, m.executedNonce));
    if (m.nonce === o.request.nonce) o.passedNow.add(m.replica);
    if (o.passedNow.size < this.config.f + 1) return;
    const above = [...o.passed.values()].sort((a, b) => b - a)[this.config.f]!;
    if (!Number.isSafeInteger(Math.max(this.lastNonce, above) + 1)) return; // a key whose nonces ran out: nothing to sign
    this.lastNonce = Math.max(this.lastNonce, above);
    o.request = this.signedRequest(o.request.operation);
    o.digest = requestDigest(this.config.crypto, o.request);
    if (o.signedAs.size >= signedAsMax) o.signedAs.delete(o.signedAs.keys().next().value as number);
    o.signedAs.set(o.request.nonce, o.digest);
    o.replies.clear();
    o.passedNow.clear();
    o.sentMs = nowMs;
    o.retransmissions = 0;
    this.counters.resigned++;
    for (const target of this.members) this.out.push({ kind: 'send', to: target.id, message: o.request });
  }

  /**
   * Does `m` come from the member it names, about this client's request with `digest`, and (on a
   * channel without integrity) carry that member's signature? A reply or nonce-passed that fails
   * is counted as a bad reply.
   */
  private answersFor(from: string, m: Reply | NoncePassed, clientKey: Uint8Array, digest: Uint8Array): boolean {
    const member = this.members[m.replica];
    const ok =
      member !== undefined &&
      member.id === from &&
      bytesEqual(m.clientKey, clientKey) &&
      bytesEqual(m.requestDigest, digest) &&
      (this.config.channelIntegrity === true || verifyMessage(this.config.crypto, member.publicKey, m));
    if (!ok) this.counters.badReplies++;
    return ok;
  }

  private onReply(from: string, m: Reply, nowMs: number): void {
    const o = this.outstanding;
    if (!o || o.completedSeq !== null || m.nonce !== o.request.nonce) return;
    if (!this.answersFor(from, m, o.request.clientKey, o.digest)) return;
    o.replies.set(m.replica, m);
    const matching = [...o.replies.values()].filter((r) => r.seq === m.seq && bytesEqual(r.result, m.result));
    if (matching.length < this.config.f + 1) return;
    // Not the view of any one reply (a faulty replica could name itself primary and drop what it
    // gets): the (f+1)-th highest of the replies', which a correct replica has reached.
    const views = [...o.replies.values()].map((r) => r.view).sort((a, b) => b - a);
    this.view = Math.max(this.view, views[this.config.f]!);
    o.completedSeq = m.seq;
    this.counters.completed++;
    this.out.push({
      kind: 'output',
      event: { kind: 'completed', clientKeyHex: this.clientKeyHex, nonce: m.nonce, seq: m.seq, result: m.result, latencyMs: nowMs - o.startMs },
    });
    if (!o.certified) {
      // Full: the oldest request's certificate is no longer waited for (not every one's).
      if (this.awaitingCertificate.size >= awaitingCertificateMax) this.awaitingCertificate.delete(this.awaitingCertificate.keys().next().value as number);
      const askAtMs = nowMs + this.certificateRetryMs;
      this.awaitingCertificate.set(m.nonce, { seq: m.seq, startMs: o.startMs, key: o.certificateKey, refusedFrom: o.refusedFrom, askAtMs, asks: 0 });
      this.nextCertificateAskMs = Math.min(this.nextCertificateAskMs, askAtMs);
    }
    // The next request goes out now; the certificate is checked whenever it arrives.
    this.finishOutstanding(nowMs);
  }

  /**
   * Only members send certificates, and each member gets one failed check per request: a correct
   * member never sends one that fails, so a Byzantine member that lies (another root, epoch or
   * leaf) costs this client at most one check (a pairing, for a root of its own) per request,
   * however often it repeats, and f of them at most f.
   */
  private onCertificate(from: string, m: CertificateMessage, nowMs: number): void {
    const o = this.outstanding;
    const early = o && o.completedSeq === null && !o.certified && o.request.nonce === m.nonce;
    const waiting = early ? { seq: m.seq, startMs: o.startMs, key: o.certificateKey, refusedFrom: o.refusedFrom } : this.awaitingCertificate.get(m.nonce);
    // A certificate covers a span of batches ending at m.seq, which includes this request's batch.
    if (!waiting || m.seq < waiting.seq || !bytesEqual(m.clientKey, this.config.signer.publicKey)) return;
    if (waiting.refusedFrom.has(from) || !this.members.some((member) => member.id === from)) return;
    const crypto = this.config.crypto;
    if (!this.statementBinds(m.statement, waiting.key) || !verifyBatchPath(crypto, m.root, batchLeafHash(crypto, m.statement), m.leafIndex, m.leafCount, m.path) || !this.signatureVerifies(m)) {
      this.counters.badCertificates++;
      waiting.refusedFrom.add(from);
      return;
    }
    if (early) o.certified = true;
    else this.awaitingCertificate.delete(m.nonce);
    this.counters.certified++;
    this.out.push({
      kind: 'output',
      event: { kind: 'certified', clientKeyHex: this.clientKeyHex, nonce: m.nonce, seq: m.seq, statement: m.statement, latencyMs: nowMs - waiting.startMs },
    });
  }

  /**
   * The ring key's signature over the header of `m` in the epoch it names. The epoch is part of the
   * signed header, so a server that names another one only makes the check fail; a refresh starts
   * epoch e+1 under the same ring key, so the signature is the ring's whatever epoch verifies.
   */
  private signatureVerifies(m: CertificateMessage): boolean {
    const ringId = this.config.ringId ?? new Uint8Array(32);
    return this.config.certificateVerifier.verify(batchMessage({ ringId, epoch: m.epoch }, m.seq, m.leafCount, m.root), m.signature);
  }

  /** Whether `statement` is the certified outcome of the request whose key is `key` (always, without a binding). */
  private statementBinds(statement: Uint8Array, key: Uint8Array | null): boolean {
    const binding = this.config.certificateBinding;
    if (!binding) return true;
    const found = binding.statementKey(statement);
    return key !== null && found !== null && bytesEqual(found, key);
  }

  private finishOutstanding(nowMs: number): void {
    this.outstanding = null;
    this.sendNext(nowMs);
  }

  private flush(): Effect<RingMessage, RingOutput>[] {
    const out = this.out;
    this.out = [];
    return out;
  }
}

export function clientFactory(config: ClientConfig): (ctx: MachineContext) => RingClient {
  return (ctx) => new RingClient(ctx, config);
}
