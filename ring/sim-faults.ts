/**
 * Byzantine behaviours for the simulator, as interceptors on a faulty replica's outgoing messages
 * (the replica itself runs the correct code; its network output lies). Each one is within what f
 * Byzantine servers may do: equivocate with properly signed messages, corrupt signatures and
 * threshold shares, replay old messages, go quiet, or lie to clients about their certificates
 * while running honest rounds with its peers (another leaf of a signed span under the client's
 * key and nonce, another key epoch, or nothing; ring/replica-certificates.ts), or refuse to sign
 * spans it holds, naming a false floor, or answer a request with a share over a short prefix of the span
 * (a valid share or a corrupt one), as a replica cut by a state-transfer hole does honestly.
 */
import type { Signer } from '../core/crypto.ts';
import type { Interceptor } from '../sim/simulation.ts';
import type { Prng } from '../sim/prng.ts';
import type { Crypto } from '../core/crypto.ts';
import { bytesEqual } from '../core/bytes.ts';
import type { Batch, CertificateMessage, RingMessage, Share } from './messages.ts';
import type { Replica } from './replica.ts';
import { spanOf } from './replica-certificates.ts';
import { batchDigest, signMessage } from './signing.ts';

export type ByzantineBehaviour = 'equivocate' | 'bad-signature' | 'bad-share' | 'replay' | 'silent' | 'lie-to-clients' | 'refuse-shares' | 'false-prefix';
/**
 * The behaviours a scenario draws from. 'false-prefix' is drawn apart (ring/sim-scenario.ts
 * pickByzantine), so that adding it left every earlier seed's scenario as it was.
 */
export const byzantineBehaviours: readonly ByzantineBehaviour[] = ['equivocate', 'bad-signature', 'bad-share', 'replay', 'silent', 'lie-to-clients', 'refuse-shares'];

const replayHistoryMax = 64;
const certificateHistoryMax = 64;

function flipBit(bytes: Uint8Array, random: Prng): Uint8Array {
  const out = bytes.slice();
  if (out.length > 0) out[random.int(out.length)]! ^= 1 << random.int(8);
  return out;
}

/** A different, validly signed batch for the same slot: requests dropped or reordered, or another clock. */
function forkBatch(batch: Batch, random: Prng): Batch {
  if (batch.requests.length > 1 && random.chance(0.5)) return { ...batch, requests: [...batch.requests].reverse() };
  if (batch.requests.length > 0) return { ...batch, requests: batch.requests.slice(1) };
  return { ...batch, timestampMs: batch.timestampMs + 1 };
}

function equivocate(m: RingMessage, to: string, crypto: Crypto, signer: Signer, random: Prng): RingMessage {
  // Half of the peers (by name) see a different story.
  if (to.charCodeAt(to.length - 1) % 2 === 0) return m;
  if (m.kind === 'pre-prepare' && m.batch) {
    const batch = forkBatch(m.batch, random);
    const { signature: _s, ...rest } = m;
    return signMessage(crypto, signer, { ...rest, batch, digest: batchDigest(crypto, batch) } as never);
  }
  if (m.kind === 'prepare' || m.kind === 'commit' || m.kind === 'checkpoint') {
    const { signature: _s, ...rest } = m;
    const field = m.kind === 'checkpoint' ? 'stateDigest' : 'digest';
    return signMessage(crypto, signer, { ...rest, [field]: random.bytes(32) } as never);
  }
  return m;
}

function corruptSignature(m: RingMessage, random: Prng): RingMessage {
  if (!('signature' in m) || m.kind === 'request' || m.kind === 'certificate') return m;
  return { ...m, signature: flipBit(m.signature, random) } as RingMessage;
}

/**
 * A certificate for a client, as a liar sends it: withheld, under another key epoch, or (with
 * `relabel`) another leaf of the same signed span under the client's key and nonce, which only a
 * client that binds statements to its update refuses (the object service's; the sim-only kv
 * service's clients take any leaf of their span, so the kv runs do not relabel).
 */
function lieToClient(m: CertificateMessage, seen: CertificateMessage[], relabel: boolean, random: Prng): RingMessage[] {
  const other = relabel ? seen.find((s) => s.seq === m.seq && s.leafIndex !== m.leafIndex) : undefined;
  if (seen.length >= certificateHistoryMax) seen.shift();
  seen.push(m);
  const way = random.int(3);
  if (way === 0 && other) return [{ ...other, clientKey: m.clientKey, nonce: m.nonce }];
  if (way === 1) return [{ ...m, epoch: m.epoch + 1 + random.int(3) }];
  return [];
}

/**
 * Instead of a share over the requested span, one over a prefix of it that ends at a batch with
 * statements: the shortest (most often) or any, signed with the replica's key share, corrupt half
 * the time (a long corrupt prefix is preferred to a correct replica's shorter one: tryPrefix), and
 * half the time with a refusal naming the batch after it as its floor, as a replica a hole cuts
 * sends. What a liar sends to make a certifier's round a one-batch one, or stall it on a share
 * that does not combine. The span requested is found by its root: the shortest one ending at the
 * share's seq whose statements have it (a span's message names its end and leaves, not its start).
 * Unchanged if the replica is down or holds no shorter prefix.
 */
function falsePrefix(m: Share, r: Replica, random: Prng): RingMessage[] {
  const held = [...r.certificateState.executed.keys()].filter((seq) => seq <= m.seq);
  const from = held.find((seq) => {
    const span = spanOf(r, seq, m.seq);
    return span !== null && bytesEqual(span.root, m.root);
  });
  const ends = from === undefined ? [] : held.filter((seq) => seq >= from && seq < m.seq);
  if (from === undefined || ends.length === 0) return [m];
  const span = spanOf(r, from, random.chance(0.6) ? ends[0]! : random.pick(ends));
  if (!span) return [m];
  const signature = r.config.certificateSigner.signShare(span.message);
  const share: Share = { kind: 'share', seq: span.to, root: span.root, replica: m.replica, share: random.chance(0.5) ? signature : flipBit(signature, random) };
  return random.chance(0.5) ? [{ kind: 'share-refused', to: m.seq, floor: span.to + 1, replica: m.replica }, share] : [share];
}

export function byzantineInterceptor(
  behaviours: readonly ByzantineBehaviour[],
  crypto: Crypto,
  signer: Signer,
  options: {
    relabelCertificates?: boolean;
    /** 'false-prefix': the replica the liar runs as, now (null while it is down). */
    replica?: () => Replica | null;
    /** 'false-prefix': its own draws, so the sender's random stream stays as without it. */
    prefixRandom?: Prng;
  } = {},
): Interceptor<RingMessage> {
  const history: RingMessage[] = [];
  const certificates: CertificateMessage[] = [];
  return (message, to, random) => {
    let m = message;
    if (behaviours.includes('silent') && random.chance(0.7)) return [];
    if (behaviours.includes('lie-to-clients') && m.kind === 'certificate') return lieToClient(m, certificates, options.relabelCertificates === true, random);
    // Instead of its share, a claim that it holds none of the span's statements (far above, or just
    // above the span's end), or a floor the span does not start below (not a refusal at all).
    if (behaviours.includes('refuse-shares') && m.kind === 'share') {
      const floor = random.chance(0.5) ? m.seq + 1 + (random.chance(0.5) ? 0 : random.int(1_000)) : random.int(m.seq + 1);
      m = { kind: 'share-refused', to: m.seq, floor, replica: m.replica };
    }
    if (behaviours.includes('false-prefix') && m.kind === 'share') {
      const r = options.replica?.();
      if (r) return falsePrefix(m, r, options.prefixRandom ?? random);
    }
    if (behaviours.includes('equivocate')) m = equivocate(m, to, crypto, signer, random);
    if (behaviours.includes('bad-signature') && random.chance(0.5)) m = corruptSignature(m, random);
    if (behaviours.includes('bad-share') && m.kind === 'share') m = { ...m, share: flipBit(m.share, random) };
    const out = [m];
    if (behaviours.includes('replay')) {
      if (history.length > 0 && random.chance(0.3)) out.push(random.pick(history));
      if (history.length >= replayHistoryMax) history.splice(random.int(history.length), 1);
      history.push(message);
    }
    return out;
  };
}
