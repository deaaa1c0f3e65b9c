/**
 * The replies a replica gave to each client's last few executed requests before its latest one
 * (whose reply the client record holds: ring/replica-store.ts ClientRecord).
 *
 * Why: replies go to the client's connection to each replica, and a replica the client is not
 * connected to (yet, or any more: a cut connection) drops them (runtime/transport.ts counts them
 * as framesNoRoute). The client retransmits 500 ms later; if meanwhile another process with the
 * same identity had a higher nonce executed, the record listed the old nonce as executed and held
 * no reply for it, and nobody answered: the call waited out its deadline (a possible cause of the
 * racing CLI puts that hung 120 s in two CI runs, sessions 24 and 28). With these,
 * the retransmission gets its own reply back; and another request under a kept nonce (two
 * processes that picked the same microsecond nonce) provably never ran, so it gets nonce-passed
 * where it got silence.
 *
 * Local to this replica and outside the replicated state: in no checkpoint snapshot, not sent by
 * state transfer, lost at a restart. Every entry is a reply this replica computed itself from a
 * committed batch, so it is what any correct replica would say, and a client still needs f+1
 * matching replies. Kept in the snapshot instead, a record's content would depend on which code
 * version executed each request (the session-29 review: a ring upgraded across a restart split its
 * checkpoints and stopped), and every snapshot would grow ~5x. What is lost at a restart (or never
 * seen, after a state transfer) only makes this replica silent to such a retransmission, as all
 * were before; the others answer.
 */
import { ownedBytes } from '../core/bytes.ts';
import type { ClientRecord } from './replica-store.ts';

/** What a reply to one executed request says (ring/replica-execution.ts sendReply). */
export interface KeptReply {
  readonly nonce: number;
  readonly requestDigest: Uint8Array;
  readonly seq: number;
  readonly result: Uint8Array;
}

/** Replies kept per client below its latest: a request passed by more of its key's before any reply reached it stays unanswered. */
export const repliesKeptMax = 8;
/** Clients kept (the least recently executed go first): ~8 MiB at most with results under 600 bytes, as both services' are. */
export const keptClientsMax = 4096;
/** A reply with a longer result is not kept. */
export const keptResultBytesMax = 4096;

export class KeptReplies {
  /** Client key hex -> its kept replies, newest first; in the order clients last executed. */
  private readonly byClient = new Map<string, KeptReply[]>();

  constructor(
    private readonly clientsMax = keptClientsMax,
    private readonly perClientMax = repliesKeptMax,
  ) {}

  get clientCount(): number {
    return this.byClient.size;
  }

  /** `passed`, the client's last executed request, has just been passed by a newer one of the key. */
  keep(clientHex: string, passed: ClientRecord): void {
    const list = this.byClient.get(clientHex) ?? [];
    this.byClient.delete(clientHex);
    if (passed.result.length <= keptResultBytesMax) {
      // A record read from a state transfer holds views into its whole frame: copied then.
      list.unshift({ nonce: passed.nonce, requestDigest: ownedBytes(passed.requestDigest), seq: passed.seq, result: ownedBytes(passed.result) });
      if (list.length > this.perClientMax) list.length = this.perClientMax;
    }
    if (list.length === 0) return;
    this.byClient.set(clientHex, list);
    if (this.byClient.size > this.clientsMax) this.byClient.delete(this.byClient.keys().next().value as string);
  }

  /** The reply kept for the client's request `nonce`, if any. */
  find(clientHex: string, nonce: number): KeptReply | undefined {
    return this.byClient.get(clientHex)?.find((k) => k.nonce === nonce);
  }
}
