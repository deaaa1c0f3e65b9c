/**
 * The archive server core: stores fragments (verified on write), serves them (verified again on
 * read), scrubs them on a schedule, keeps liveness of its peers and runs its share of repair
 * (archive/repairer.ts). A sans-I/O Machine (core/machine.ts): the host feeds decoded messages and
 * ticks; everything durable lives in the KvStore it was built with.
 *
 * Who may do what: only configured writers (ring servers' archivers and archive servers, which
 * repair) may store; anyone authenticated (the restore tool included) may probe, fetch and list.
 * Bad input is dropped and counted, never thrown.
 */
import { bytesEqual, toHex } from '../core/bytes.ts';
import type { Crypto, Signer } from '../core/crypto.ts';
import type { Effect, Machine, MachineContext } from '../core/machine.ts';
import type { CertificateCheck } from './certificate-check.ts';
import { FragmentStore, type Coding } from './fragment-store.ts';
import type { ArchiveMessage, FetchedBlock, HeldFragment } from './messages.ts';
import { archiveLimits } from './messages.ts';
import { serverRingOf } from './placement.ts';
import { signReceipt } from './receipt.ts';
import { Repairer, type RepairOptions } from './repairer.ts';

export type ArchiveOutput =
  | { kind: 'stored'; bguid: Uint8Array; index: number; from: string }
  | { kind: 'corrupt'; key: string; foundBy: 'scrub' | 'read' }
  | { kind: 'peer-lost'; peer: string }
  | { kind: 'repaired'; bguid: Uint8Array; indexes: number[]; targets: string[] }
  | { kind: 'unrepairable'; bguid: Uint8Array; reason: string }
  | { kind: 'dropped'; from: string; reason: string }
  /** A peer's ping says another config.erasure than ours: reported once per peer and coding it says. */
  | { kind: 'coding-mismatch'; peer: string; theirs: Coding; ours: Coding };

export interface ArchiveServerOptions {
  crypto: Crypto;
  signer: Signer;
  /**
   * The cluster's erasure code (ClusterConfig.erasure): stores of any other shape are refused, and
   * repair takes a block's width n = k + m from it, not from a stored record a writer chose.
   */
  coding: Coding;
  /** Every archive server's name, this one included: the placement and repair universe. */
  archiveServers: readonly string[];
  /** Ring servers whose archivers may store fragments here (archive servers may too, for repair). */
  ringServers: readonly string[];
  /** Time for one full scrub pass to start again after the last ended. */
  scrubEveryMs: number;
  /** Fragments re-hashed per tick, bounding the scrubber's share of the disk and CPU. */
  scrubPerTickMax: number;
  pingEveryMs: number;
  /** A peer silent this long is treated as lost and its fragments are re-protected. */
  lostAfterMs: number;
  repair: RepairOptions;
  /**
   * Check of a certificate stored beside a root block (certificateCheckOf: verifies under the ring
   * public key, a commit, VGUID = this block), run when two differ and before listing
   * (keepCertificate). Real archive servers set it; without it the first certificate stored is
   * kept and listed whatever its bytes (tests that need no ring key).
   */
  certificateCheck?: CertificateCheck;
  /** Fragment bytes per fetch reply (default archiveLimits.fetchReplyBytesMax; tests set less to exercise replies cut short). */
  fetchReplyBytesMax?: number;
}

/** Passes over a lost peer's blocks after the first. */
const recheckPasses = 3;
/** Certificates remembered as passing the check (by block): bounds the memory, not correctness. */
const checkedCertificatesMax = 65_536;
/** Failed certificate checks a writer may cause: a bucket of this many, refilled by certificateChecksPerTick each tick. */
const certificateChecksBurst = 20;
const certificateChecksPerTick = 1;
/** Certificate checks one listing request may spend (~5 ms each with the WebAssembly engine). */
const listChecksMax = 64;

export const defaultArchiveTiming = {
  scrubEveryMs: 60_000,
  scrubPerTickMax: 64,
  pingEveryMs: 1_000,
  lostAfterMs: 10_000,
} as const;

export class ArchiveServer implements Machine<ArchiveMessage, ArchiveOutput> {
  readonly fragments: FragmentStore;
  readonly repairer: Repairer;
  private readonly self: string;
  private writers: Set<string>;
  private readonly peers: string[];
  private readonly lastHeardMs = new Map<string, number>();
  private readonly lost = new Set<string>();
  /** Lost peers whose blocks are checked again later: when, and how many passes so far. */
  private readonly rechecks = new Map<string, { atMs: number; pass: number }>();
  private readonly checkedCertificates = new Map<string, Uint8Array>();
  /** Per writer, how many more failed certificate checks it may cause (absent: a full bucket). */
  private readonly checkTokens = new Map<string, number>();
  /** Per peer, the other coding its pings said and was reported ("k,m"), so it is said once, not every second. */
  private readonly codingMismatches = new Map<string, string>();
  private nextPingMs = 0;
  private scrubKeys: string[] | null = null;
  private scrubAt = 0;
  private nextScrubMs: number;
  readonly counters = { scrubbed: 0, corrupt: 0, dropped: 0, stored: 0, storesRefused: 0, certificateChecksRefused: 0 };

  constructor(
    context: MachineContext,
    private readonly options: ArchiveServerOptions,
  ) {
    this.self = context.nodeId;
    this.fragments = new FragmentStore(context.store, options.crypto, archiveLimits.fragmentBytesMax, options.coding);
    this.writers = new Set([...options.ringServers, ...options.archiveServers]);
    this.peers = options.archiveServers.filter((s) => s !== this.self);
    for (const p of this.peers) this.lastHeardMs.set(p, context.nowMs);
    this.nextScrubMs = context.nowMs + options.scrubEveryMs;
    this.repairer = new Repairer({
      self: this.self,
      store: context.store,
      fragments: this.fragments,
      crypto: options.crypto,
      ring: serverRingOf(options.archiveServers),
      isLive: (server) => server === this.self || !this.lost.has(server),
      storeLocally: (bytes, root, certificate) => this.storeLocally(bytes, root, certificate, this.self),
      coding: options.coding,
      certificateCheck: options.certificateCheck,
      options: options.repair,
    });
  }

  /**
   * The ring's members changed (a re-signed descriptor): the new members' archivers may store here,
   * and a member that left may not.
   */
  setRingServers(ringServers: readonly string[]): void {
    this.writers = new Set([...ringServers, ...this.options.archiveServers]);
  }

  onMessage(from: string, message: ArchiveMessage, nowMs: number): Effect<ArchiveMessage, ArchiveOutput>[] {
    if (this.lastHeardMs.has(from)) {
      this.lastHeardMs.set(from, nowMs);
      this.lost.delete(from);
      this.rechecks.delete(from);
    }
    switch (message.type) {
      case 'store':
        return this.onStore(from, message);
      case 'probe':
        return this.onProbe(from, message);
      case 'fetch':
        return this.onFetch(from, message);
      case 'listCertificates':
        return [send(from, { type: 'certificates', requestId: message.requestId, ...this.listCertificates(message.after, Math.min(message.limit, archiveLimits.certificatesPerReplyMax), message.aguid) })];
      case 'status':
        return [send(from, { type: 'statusReply', requestId: message.requestId, status: this.status() })];
      case 'probeReply':
      case 'fetchReply':
      case 'receipt':
      case 'refused':
        return this.repairer.onReply(from, message, nowMs);
      case 'ping':
        return this.onPing(from, message);
      case 'certificates':
      case 'statusReply':
        return [];
    }
  }

  onTick(nowMs: number): Effect<ArchiveMessage, ArchiveOutput>[] {
    const effects: Effect<ArchiveMessage, ArchiveOutput>[] = [];
    for (const [writer, tokens] of this.checkTokens) {
      if (tokens + certificateChecksPerTick >= certificateChecksBurst) this.checkTokens.delete(writer);
      else this.checkTokens.set(writer, tokens + certificateChecksPerTick);
    }
    if (nowMs >= this.nextPingMs) {
      this.nextPingMs = nowMs + this.options.pingEveryMs;
      const coding = { k: this.options.coding.k, m: this.options.coding.m };
      for (const p of this.peers) effects.push(send(p, { type: 'ping', coding }));
    }
    for (const p of this.peers) {
      if (!this.lost.has(p) && nowMs - this.lastHeardMs.get(p)! > this.options.lostAfterMs) {
        this.lost.add(p);
        effects.push({ kind: 'output', event: { kind: 'peer-lost', peer: p } });
        this.repairer.onPeerLost(p);
        this.rechecks.set(p, { atMs: nowMs + this.options.lostAfterMs, pass: 1 });
      }
    }
    // Later passes over a lost peer's blocks (after 1, 3 and 7 lostAfterMs): whatever the first
    // pass left short is queued again; the last pass has every holder act, not one coordinator.
    for (const [p, recheck] of this.rechecks) {
      if (nowMs < recheck.atMs) continue;
      this.repairer.onPeerLost(p, recheck.pass >= recheckPasses ? 'recheck' : 'peer-lost');
      if (recheck.pass >= recheckPasses) this.rechecks.delete(p);
      else this.rechecks.set(p, { atMs: nowMs + 2 ** recheck.pass * this.options.lostAfterMs, pass: recheck.pass + 1 });
    }
    effects.push(...this.scrubStep(nowMs));
    effects.push(...this.repairer.onTick(nowMs));
    return effects;
  }

  status() {
    const r = this.repairer.counters;
    return {
      fragmentCount: this.fragments.fragmentCount(),
      certificateCount: this.fragments.certificateCount(),
      scrubbedCount: this.counters.scrubbed,
      corruptFoundCount: this.counters.corrupt,
      repairQueuedCount: this.repairer.queuedCount(),
      repairedFragmentCount: r.repairedFragments,
      repairFailedCount: this.repairer.failedCount(),
      lostPeers: [...this.lost].sort(),
      /** Store requests from peers that are neither ring members nor archive servers. */
      storesRefused: this.counters.storesRefused,
    };
  }

  private storeLocally(bytes: Uint8Array, fragmentRoot: Uint8Array, certificate: Uint8Array | null, writer: string): ReturnType<FragmentStore['put']> {
    const result = this.fragments.put(bytes, fragmentRoot, writer);
    if (result.ok) {
      if (!result.duplicate) this.counters.stored++;
      if (certificate) this.keepCertificate(result.record.bguid, certificate, writer);
    }
    return result;
  }

  /**
   * Keeps a certificate beside a root block. The first one is kept unchecked: in the normal case it
   * is the genuine one, and a pairing check per batch on every archive server would cost more CPU
   * than the archive's whole share of a small write (measured: archive CPU per update 5.5 -> 27 ms
   * at one client). A different one arriving later is the conflict a faulty writer makes by
   * storing junk first (which would hide the version from restore: it finds versions only through
   * these certificates): the newcomer is checked, and replaces what is kept if it passes (two that
   * pass are both genuine). Only the newcomer is checked, so a check that fails is the sender's
   * junk, and each writer may send only so many of those (certificateChecksPerTick, a bucket of
   * certificateChecksBurst): a faulty writer sending junk after junk cost two pairings each, without
   * end (second review). Certificates are checked before they are listed too (listCertificates),
   * so junk kept first never reaches a restore from here.
   */
  private keepCertificate(bguid: Uint8Array, certificate: Uint8Array, writer: string): void {
    const existing = this.fragments.certificateOf(bguid);
    if (existing === null) return this.fragments.putCertificate(bguid, certificate);
    if (bytesEqual(existing, certificate) || !this.options.certificateCheck) return;
    if (!this.passed(bguid, certificate)) {
      const tokens = this.checkTokens.get(writer) ?? certificateChecksBurst;
      if (tokens < 1) {
        this.counters.certificateChecksRefused++;
        return;
      }
      if (!this.certificateHolds(bguid, certificate)) {
        this.checkTokens.set(writer, tokens - 1);
        return;
      }
    }
    this.fragments.putCertificate(bguid, certificate);
  }

  /** Whether this certificate is the one remembered as passing for the block (no check spent). */
  private passed(bguid: Uint8Array, certificate: Uint8Array): boolean {
    const known = this.checkedCertificates.get(toHex(bguid));
    return known !== undefined && bytesEqual(known, certificate);
  }

  /** Whether a certificate passes the check (no check configured: every one does); passes are remembered. */
  private certificateHolds(bguid: Uint8Array, certificate: Uint8Array): boolean {
    const check = this.options.certificateCheck;
    if (!check || this.passed(bguid, certificate)) return true;
    if (!check(bguid, certificate)) return false;
    if (this.checkedCertificates.size >= checkedCertificatesMax) this.checkedCertificates.clear();
    this.checkedCertificates.set(toHex(bguid), certificate);
    return true;
  }

  /**
   * A page of certificates for a restore's discovery, each checked first: one that fails (junk a
   * faulty writer stored beside a block no genuine certificate reached) is deleted instead of
   * listed, so an honest server never sends junk (each junk certificate costs one check, once).
   * At most listChecksMax checks per request: the page may end early, short or even empty, with
   * `next` set (a request cost up to a page of pairings, 1,024 of them ~7 s, second review).
   */
  private listCertificates(after: string, limit: number, aguid?: Uint8Array): { certificates: Uint8Array[]; next: string | null } {
    const certificates: Uint8Array[] = [];
    let cursor = after;
    let checks = 0;
    for (;;) {
      const page = this.fragments.certificateEntriesAfter(cursor, limit - certificates.length, aguid);
      for (const e of page.entries) {
        if (this.options.certificateCheck && !this.passed(e.bguid, e.certificate)) checks++;
        if (this.certificateHolds(e.bguid, e.certificate)) certificates.push(e.certificate);
        else this.fragments.deleteCertificate(e.bguid);
        cursor = `c/${toHex(e.bguid)}`;
        if (checks >= listChecksMax) return { certificates, next: cursor };
      }
      if (page.next === null) return { certificates, next: null };
      cursor = page.next;
      if (certificates.length >= limit) return { certificates, next: cursor };
    }
  }

  private onStore(from: string, message: Extract<ArchiveMessage, { type: 'store' }>): Effect<ArchiveMessage, ArchiveOutput>[] {
    if (!this.writers.has(from)) {
      this.counters.storesRefused++;
      return this.drop(from, 'store from a peer that is not a configured writer');
    }
    const effects: Effect<ArchiveMessage, ArchiveOutput>[] = [];
    const stored: HeldFragment[] = [];
    const reasons: string[] = [];
    for (const item of message.items) {
      const result = this.storeLocally(item.fragment, item.fragmentRoot, item.certificate, from);
      if (!result.ok) {
        reasons.push(result.reason);
        effects.push(...this.drop(from, result.reason));
        continue;
      }
      stored.push({ bguid: result.record.bguid, fragmentRoot: item.fragmentRoot, index: result.record.index });
      effects.push({ kind: 'output', event: { kind: 'stored', bguid: result.record.bguid, index: result.record.index, from } });
    }
    if (stored.length === 0) {
      effects.push(send(from, { type: 'refused', requestId: message.requestId, reason: (reasons[0] ?? 'empty store').slice(0, archiveLimits.reasonLengthMax) }));
      return effects;
    }
    const signature = signReceipt(this.options.crypto, this.options.signer, stored);
    effects.unshift(send(from, { type: 'receipt', requestId: message.requestId, items: stored, signature }));
    return effects;
  }

  /**
   * Every archive server must have the same config.erasure: each stores only its own (k, m), so a
   * peer configured otherwise refuses every fragment repair sends it and sends only fragments the
   * others refuse. Said loudly, once per peer and coding, when its ping shows it.
   */
  private onPing(from: string, message: Extract<ArchiveMessage, { type: 'ping' }>): Effect<ArchiveMessage, ArchiveOutput>[] {
    const theirs = message.coding;
    if (!theirs || !this.lastHeardMs.has(from)) return [];
    const ours = this.options.coding;
    if (theirs.k === ours.k && theirs.m === ours.m) {
      this.codingMismatches.delete(from);
      return [];
    }
    const said = `${theirs.k},${theirs.m}`;
    if (this.codingMismatches.get(from) === said) return [];
    this.codingMismatches.set(from, said);
    return [{ kind: 'output', event: { kind: 'coding-mismatch', peer: from, theirs, ours: { k: ours.k, m: ours.m } } }];
  }

  private onProbe(from: string, message: Extract<ArchiveMessage, { type: 'probe' }>): Effect<ArchiveMessage, ArchiveOutput>[] {
    const held = message.bguids.slice(0, archiveLimits.probeBguidsMax).flatMap((b) => this.fragments.heldOf(b));
    return [send(from, { type: 'probeReply', requestId: message.requestId, held: held.slice(0, archiveLimits.heldMax) })];
  }

  /**
   * The requested blocks' fragments, in order, up to `fetchReplyBytesMax` bytes of fragments: a
   * block that does not fit whole ends the reply and is left out, for the client to ask again
   * (BlockFetcher asks for what a reply left out); the first block is always in, with as many of
   * its fragments as fit (roots in turn, so junk sorting first cannot fill it). Without the bound a
   * reply for 64 blocks of 4 MiB outgrew messageBytesMax and was refused, so restores of big blocks
   * failed with m servers down (session-20 review, finding 3); it also bounds what one request
   * makes the server read and hash.
   */
  private onFetch(from: string, message: Extract<ArchiveMessage, { type: 'fetch' }>): Effect<ArchiveMessage, ArchiveOutput>[] {
    const effects: Effect<ArchiveMessage, ArchiveOutput>[] = [];
    const blocks: FetchedBlock[] = [];
    let budget = this.options.fetchReplyBytesMax ?? archiveLimits.fetchReplyBytesMax;
    for (const bguid of message.bguids.slice(0, archiveLimits.fetchBguidsMax)) {
      const { fragments, corrupt, cut } = this.fragments.read(bguid, archiveLimits.fragmentsPerReplyMax, budget);
      effects.push(...this.onCorrupt(corrupt, 'read'));
      if (cut && blocks.length > 0) break;
      blocks.push({ bguid, fragments: fragments.map((f) => f.bytes), certificate: this.fragments.certificateOf(bguid) });
      for (const f of fragments) budget -= f.bytes.length;
      if (cut) break;
    }
    effects.push(send(from, { type: 'fetchReply', requestId: message.requestId, blocks }));
    return effects;
  }

  private onCorrupt(keys: string[], foundBy: 'scrub' | 'read'): Effect<ArchiveMessage, ArchiveOutput>[] {
    const effects: Effect<ArchiveMessage, ArchiveOutput>[] = [];
    for (const key of keys) {
      this.counters.corrupt++;
      effects.push({ kind: 'output', event: { kind: 'corrupt', key, foundBy } });
      const held = this.fragments.parseKey(key);
      if (held) this.repairer.enqueue(held.bguid, 'corrupt');
    }
    return effects;
  }

  /** Re-hashes up to scrubPerTickMax fragments; a pass walks a snapshot of the keys in order. */
  private scrubStep(nowMs: number): Effect<ArchiveMessage, ArchiveOutput>[] {
    if (this.scrubKeys === null) {
      if (nowMs < this.nextScrubMs) return [];
      this.scrubKeys = this.fragments.keysAfter('', Number.MAX_SAFE_INTEGER);
      this.scrubAt = 0;
    }
    const corrupt: string[] = [];
    const end = Math.min(this.scrubKeys.length, this.scrubAt + this.options.scrubPerTickMax);
    for (; this.scrubAt < end; this.scrubAt++) {
      const key = this.scrubKeys[this.scrubAt]!;
      this.counters.scrubbed++;
      if (this.fragments.verifyKey(key) === undefined && this.fragments.parseKey(key) && this.stillStored(key)) {
        this.fragments.deleteKey(key);
        corrupt.push(key);
      }
    }
    if (this.scrubAt >= this.scrubKeys.length) {
      this.scrubKeys = null;
      this.nextScrubMs = nowMs + this.options.scrubEveryMs;
    }
    return this.onCorrupt(corrupt, 'scrub');
  }

  /** A key deleted since the pass's snapshot (by a read that found it corrupt) is not corrupt again. */
  private stillStored(key: string): boolean {
    const held = this.fragments.parseKey(key)!;
    return this.fragments.heldOf(held.bguid).some((h) => h.index === held.index && bytesEqual(h.fragmentRoot, held.fragmentRoot));
  }

  private drop(from: string, reason: string): Effect<ArchiveMessage, ArchiveOutput>[] {
    this.counters.dropped++;
    return [{ kind: 'output', event: { kind: 'dropped', from, reason } }];
  }
}

function send(to: string, message: ArchiveMessage): Effect<ArchiveMessage, ArchiveOutput> {
  return { kind: 'send', to, message };
}
