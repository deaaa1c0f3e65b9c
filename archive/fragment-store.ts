/**
 * An archive server's fragments and certificates in its KvStore, verified on the way in and on
 * the way out. A record is stored under the fragment root its own Merkle path proves, so a later
 * read or scrub re-hashes the payload and compares with the key: a flipped bit anywhere in the
 * record shows up as a mismatch and the record is dropped rather than served.
 *
 * Keys (hex, so key order is BGUID order and a block's entries are contiguous):
 *   f/<bguid>/<fragmentRoot>/<index, 3 digits>  -> encoded fragment record
 *   c/<bguid>                                    -> the certificate stored beside a root block
 *   o/<bguid>/<fragmentRoot>                     -> the writer that stored the root's first fragment
 * Several roots per block are allowed because the server cannot tell which encoding is genuine
 * without the block, but each writer may add at most one root per block: a Byzantine writer
 * cannot fill a block's slots with made-up encodings and lock the genuine one out (a shared cap
 * of three roots per block let one faulty ring server do exactly that). A root already present
 * may be added to by anyone. Roots per block are thus bounded by the number of writers. Only
 * encodings with the cluster's configured (k, m) are stored, so a root holds at most k + m
 * fragments and a block at most writers x (k + m): a writer's k = 1, m = 255 junk encoding filled a
 * whole fetch reply (256 fragments) and hid every genuine fragment (session-20 review, finding 1).
 * Nor is a record whose blockBytes is over the block bound (second review, finding 3).
 * Readers group by root and check the decoded block against its BGUID.
 */
import { bytesEqual, fromHex, toHex } from '../core/bytes.ts';
import type { Crypto } from '../core/crypto.ts';
import { DecodeError } from '../core/errors.ts';
import { hasKey, type KvStore } from '../core/store.ts';
import { blockBytesMax } from '../core/version/block.ts';
import { decodeCertificate } from '../core/threshold/index.ts';
import { decodeFragment, fragmentRootOf, FragmentError, type FragmentRecord } from './erasure/index.ts';
import type { HeldFragment } from './messages.ts';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export type PutResult = { ok: true; record: FragmentRecord; duplicate: boolean } | { ok: false; reason: string };

export interface VerifiedFragment {
  record: FragmentRecord;
  bytes: Uint8Array;
  fragmentRoot: Uint8Array;
  key: string;
}

/** The erasure code the cluster is configured with (ClusterConfig.erasure): the only shape stored. */
export interface Coding {
  readonly k: number;
  readonly m: number;
}

/** Key layout: 'f/' + 64 hex (BGUID) + '/' + 64 hex (root) + '/' + index. */
function rootHexOfKey(key: string): string {
  return key.slice(67, 131);
}

/**
 * A block's keys (sorted) with its roots taken in turn: each root's first fragment, then each
 * root's second, and so on. A reply cut short after any prefix of this order holds as many
 * fragments of the genuine root as of any other, so roots that sort first cannot crowd it out.
 */
export function interleaveByRoot(keys: readonly string[]): string[] {
  const byRoot = new Map<string, string[]>();
  for (const key of keys) {
    const root = rootHexOfKey(key);
    let list = byRoot.get(root);
    if (!list) byRoot.set(root, (list = []));
    list.push(key);
  }
  const out: string[] = [];
  for (let turn = 0; out.length < keys.length; turn++) {
    for (const list of byRoot.values()) if (turn < list.length) out.push(list[turn]!);
  }
  return out;
}

/** The first position in `sorted` whose key is greater than `key` (all of them: sorted.length). */
export function positionAfter(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid]! <= key) low = mid + 1;
    else high = mid;
  }
  return low;
}

export function fragmentKeyOf(bguid: Uint8Array, fragmentRoot: Uint8Array, index: number): string {
  return `f/${toHex(bguid)}/${toHex(fragmentRoot)}/${String(index).padStart(3, '0')}`;
}

/** Hex digits to bytes without validation beyond what keys we wrote ourselves need (core/bytes fromHex checks with a regex). */
function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const hi = hex.charCodeAt(2 * i);
    const lo = hex.charCodeAt(2 * i + 1);
    out[i] = ((hi > 57 ? hi - 87 : hi - 48) << 4) | (lo > 57 ? lo - 87 : lo - 48);
  }
  return out;
}

function parseKey(key: string): HeldFragment | undefined {
  const parts = key.split('/');
  if (parts.length !== 4 || parts[0] !== 'f' || !/^[0-9a-f]{64}$/.test(parts[1]!) || !/^[0-9a-f]{64}$/.test(parts[2]!)) return undefined;
  return { bguid: hexToBytes(parts[1]!), fragmentRoot: hexToBytes(parts[2]!), index: Number(parts[3]) };
}

/** One object's certificate keys (c/<bguid>), sorted. */
interface ObjectCertificates {
  readonly aguidHex: string;
  readonly keys: string[];
}

export class FragmentStore {
  /**
   * Keys by BGUID hex, built once from the KvStore (which only scans prefixes over everything) and
   * kept in step with every put and delete made through this class.
   */
  private readonly index = new Map<string, Set<string>>();
  private count = 0;
  /**
   * Every certificate key (c/<bguid>), sorted, built once from the KvStore and kept in step with
   * putCertificate and deleteCertificate: a listing page is a binary search and a slice. Each
   * request used to read and filter every c/ key (KvStore has prefix scans only), so a full
   * listing was quadratic: 80,000 certificates took 34 s (session-20 review, finding 6).
   */
  private readonly certificateKeys: string[];
  /**
   * The same keys by the object each certificate's statement names (AGUID hex → sorted c/ keys),
   * and the object of each key, so a restore of one object lists that object's certificates, not
   * the whole archive's (it verified every certificate in the archive to restore one object: 1.7-
   * 3.6 s with 320 versions stored, and growing with the archive). Built from the certificates
   * themselves at every start (a decode each, no signature check) and kept in step with
   * putCertificate and deleteCertificate, so it cannot drift from what is stored. A certificate that
   * does not decode has no object; it could not pass the check a listing makes anyway.
   */
  private readonly certificateKeysByObject = new Map<string, ObjectCertificates>();
  /** Each key's object entry (shared, so an AGUID's hex is held once, not once per certificate). */
  private readonly objectOfKey = new Map<string, ObjectCertificates>();

  constructor(
    private readonly store: KvStore,
    private readonly crypto: Crypto,
    private readonly fragmentBytesMax: number,
    private readonly coding: Coding,
  ) {
    for (const key of store.keys('f/')) this.indexAdd(key);
    this.certificateKeys = store.keys('c/');
    for (const key of this.certificateKeys) {
      const certificate = store.get(key);
      if (certificate !== undefined) this.objectIndexAdd(key, certificate);
    }
  }

  private objectIndexAdd(key: string, certificate: Uint8Array): void {
    let aguidHex: string;
    try {
      aguidHex = toHex(decodeCertificate(certificate).statement.aguid);
    } catch (error) {
      if (error instanceof DecodeError) return;
      throw error;
    }
    let entry = this.certificateKeysByObject.get(aguidHex);
    if (!entry) this.certificateKeysByObject.set(aguidHex, (entry = { aguidHex, keys: [] }));
    entry.keys.splice(positionAfter(entry.keys, key), 0, key);
    this.objectOfKey.set(key, entry);
  }

  private objectIndexDelete(key: string): void {
    const entry = this.objectOfKey.get(key);
    if (entry === undefined) return;
    this.objectOfKey.delete(key);
    const at = positionAfter(entry.keys, key) - 1;
    if (entry.keys[at] === key) entry.keys.splice(at, 1);
    if (entry.keys.length === 0) this.certificateKeysByObject.delete(entry.aguidHex);
  }

  private indexAdd(key: string): void {
    const hex = key.slice(2, 66);
    let keys = this.index.get(hex);
    if (!keys) this.index.set(hex, (keys = new Set()));
    if (!keys.has(key)) {
      keys.add(key);
      this.count++;
    }
  }

  private indexDelete(key: string): void {
    const hex = key.slice(2, 66);
    const keys = this.index.get(hex);
    if (keys?.delete(key)) {
      this.count--;
      if (keys.size === 0) this.index.delete(hex);
    }
  }

  /** This block's keys whose value is present (a key removed behind our back is skipped). */
  private keysOf(bguid: Uint8Array): string[] {
    const keys = this.index.get(toHex(bguid));
    return keys ? [...keys].filter((k) => hasKey(this.store, k)).sort() : [];
  }

  /** Decodes and verifies `bytes` as a fragment under `fragmentRoot`, then stores it; `writer` is who sent it. */
  put(bytes: Uint8Array, fragmentRoot: Uint8Array, writer: string): PutResult {
    let record: FragmentRecord;
    try {
      record = decodeFragment(bytes, this.fragmentBytesMax);
    } catch (error) {
      if (error instanceof DecodeError || error instanceof FragmentError) return { ok: false, reason: `malformed: ${error.message}` };
      throw error;
    }
    if (record.k !== this.coding.k || record.m !== this.coding.m) {
      return { ok: false, reason: `shape: the cluster stores only k = ${this.coding.k}, m = ${this.coding.m} encodings, not k = ${record.k}, m = ${record.m}` };
    }
    // No genuine block is larger (core/version/block.ts), and a record's payload is sized from its
    // blockBytes: unchecked, a writer's junk root beside a 4 KiB block could hold fragments of up to
    // fragmentBytesMax, pulled by every restore (second review, finding 3).
    if (record.blockBytes > blockBytesMax) {
      return { ok: false, reason: `size: a block is at most ${blockBytesMax} bytes, not ${record.blockBytes}` };
    }
    if (!bytesEqual(fragmentRootOf(this.crypto, record), fragmentRoot)) {
      return { ok: false, reason: 'root-mismatch: the fragment does not verify against the given fragment root' };
    }
    const key = fragmentKeyOf(record.bguid, fragmentRoot, record.index);
    const stored = this.store.get(key);
    // A stored copy that no longer verifies is replaced by this verified one, not acknowledged as is.
    if (stored !== undefined && (bytesEqual(stored, bytes) || this.verifyKey(key))) return { ok: true, record, duplicate: true };
    const bguidHex = key.slice(2, 66);
    const rootHex = rootHexOfKey(key);
    const roots = new Set(this.keysOf(record.bguid).map(rootHexOfKey));
    if (!roots.has(rootHex)) {
      for (const other of roots) {
        if (this.ownerOf(bguidHex, other) === writer) return { ok: false, reason: 'root-taken: this writer already stored another encoding of this block' };
      }
      this.store.put(`o/${bguidHex}/${rootHex}`, encoder.encode(writer));
    }
    this.store.put(key, bytes);
    this.indexAdd(key);
    return { ok: true, record, duplicate: false };
  }

  /** The writer that added `rootHex` to block `bguidHex` (undefined for roots stored before owners were kept). */
  private ownerOf(bguidHex: string, rootHex: string): string | undefined {
    const owner = this.store.get(`o/${bguidHex}/${rootHex}`);
    return owner === undefined ? undefined : decoder.decode(owner);
  }

  /** What is held for `bguid`, from the keys alone (no hashing): cheap enough for every probe. */
  heldOf(bguid: Uint8Array): HeldFragment[] {
    const out: HeldFragment[] = [];
    for (const key of this.keysOf(bguid)) {
      const held = parseKey(key);
      if (held) out.push(held);
    }
    return out;
  }

  /**
   * Every fragment of `bguid` that still verifies, roots taken in turn (interleaveByRoot), at most
   * `countMax` of them and `bytesMax` bytes of them (`cut`: one more did not fit; nothing past it is
   * read or hashed); the ones that do not verify are deleted and returned in `corrupt` so the
   * caller counts them and queues the block for repair.
   */
  read(bguid: Uint8Array, countMax = Number.MAX_SAFE_INTEGER, bytesMax = Number.MAX_SAFE_INTEGER): { fragments: VerifiedFragment[]; corrupt: string[]; cut: boolean } {
    const fragments: VerifiedFragment[] = [];
    const corrupt: string[] = [];
    let bytes = 0;
    for (const key of interleaveByRoot(this.keysOf(bguid))) {
      if (fragments.length >= countMax) break;
      const stored = this.store.get(key);
      if (stored !== undefined && bytes + stored.length > bytesMax) return { fragments, corrupt, cut: true };
      const verified = this.verifyRecord(key, stored);
      if (verified) {
        fragments.push(verified);
        bytes += verified.bytes.length;
      } else {
        this.deleteKey(key);
        corrupt.push(key);
      }
    }
    return { fragments, corrupt, cut: false };
  }

  /** Re-hashes one stored record; undefined when it is missing, malformed or does not match its key. */
  verifyKey(key: string): VerifiedFragment | undefined {
    return this.verifyRecord(key, this.store.get(key));
  }

  /** verifyKey for a record already read (each read of the store is a copy of the fragment). */
  private verifyRecord(key: string, bytes: Uint8Array | undefined): VerifiedFragment | undefined {
    const parts = key.split('/');
    if (parts.length !== 4 || parts[0] !== 'f' || !bytes) return undefined;
    try {
      const record = decodeFragment(bytes, this.fragmentBytesMax);
      // Compare as hex: the key is hex already, and decoding it would cost more than encoding 64 bytes.
      if (String(record.index).padStart(3, '0') !== parts[3] || toHex(record.bguid) !== parts[1]) return undefined;
      const fragmentRoot = fragmentRootOf(this.crypto, record);
      if (toHex(fragmentRoot) !== parts[2]) return undefined;
      return { record, bytes, fragmentRoot, key };
    } catch (error) {
      if (error instanceof DecodeError || error instanceof FragmentError) return undefined;
      throw error;
    }
  }

  deleteKey(key: string): void {
    this.store.delete(key);
    this.indexDelete(key);
  }

  /** Up to `limit` fragment keys strictly after `after` (scrubbing and holdings scans page through these). */
  keysAfter(after: string, limit: number): string[] {
    // KvStore has prefix scans only; filtering is fine at archive-server scale per call.
    const out: string[] = [];
    for (const key of this.store.keys('f/')) {
      if (key > after) {
        out.push(key);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  /** The BGUIDs (hex) of every block with a fragment here, from the in-memory index (no store scan). */
  blockHexes(): string[] {
    return [...this.index.keys()];
  }

  parseKey(key: string): HeldFragment | undefined {
    return parseKey(key);
  }

  fragmentCount(): number {
    return this.count;
  }

  /** Stores (or replaces) the certificate beside a root block; which one to keep is the caller's choice (ArchiveServer.keepCertificate). */
  putCertificate(bguid: Uint8Array, certificate: Uint8Array): void {
    const key = `c/${toHex(bguid)}`;
    this.store.put(key, certificate);
    this.objectIndexDelete(key);
    this.objectIndexAdd(key, certificate);
    const at = positionAfter(this.certificateKeys, key);
    if (this.certificateKeys[at - 1] !== key) this.certificateKeys.splice(at, 0, key);
  }

  certificateOf(bguid: Uint8Array): Uint8Array | null {
    return this.store.get(`c/${toHex(bguid)}`) ?? null;
  }

  deleteCertificate(bguid: Uint8Array): void {
    const key = `c/${toHex(bguid)}`;
    this.objectIndexDelete(key);
    this.store.delete(key);
    const at = positionAfter(this.certificateKeys, key) - 1;
    if (this.certificateKeys[at] === key) this.certificateKeys.splice(at, 1);
  }

  /**
   * Certificates with their blocks, in key order (c/<bguid>) after `after`; `next` is the last key
   * returned when more remain. With `aguid`, only the certificates indexed under that object.
   */
  certificateEntriesAfter(after: string, limit: number, aguid?: Uint8Array): { entries: { bguid: Uint8Array; certificate: Uint8Array }[]; next: string | null } {
    const keys = aguid === undefined ? this.certificateKeys : (this.certificateKeysByObject.get(toHex(aguid))?.keys ?? []);
    const start = positionAfter(keys, after);
    const page = keys.slice(start, start + limit);
    const entries: { bguid: Uint8Array; certificate: Uint8Array }[] = [];
    for (const k of page) {
      const certificate = this.store.get(k);
      if (certificate !== undefined) entries.push({ bguid: fromHex(k.slice(2)), certificate });
    }
    return { entries, next: start + page.length < keys.length ? (page[page.length - 1] ?? after) : null };
  }

  certificateCount(): number {
    return this.certificateKeys.length;
  }
}
