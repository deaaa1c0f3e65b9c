/**
 * Self-verifying fragments (issue 3; Pond FAST'03 §3 "archival storage", Weatherspoon et al.
 * "self-verifying data"): each record verifies alone against the block's fragment root, and
 * corrupt, truncated, duplicated, foreign and mislabelled records are refused with named errors.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HashTag, taggedHash } from '../../../core/crypto.ts';
import { encode as msgpackEncode } from '../../../core/codec.ts';
import { DecodeError } from '../../../core/errors.ts';
import { bytesEqual } from '../../../core/bytes.ts';
import { nobleCrypto } from '../../../core/noble-crypto.ts';
import { nodeCrypto } from '../../../runtime/node-crypto.ts';
import { FragmentError, NotEnoughFragmentsError } from '../../../archive/erasure/errors.ts';
import { decodeFragment, encodeFragment } from '../../../archive/erasure/fragment-codec.ts';
import {
  checkFragment,
  fragmentRootOf,
  makeFragments,
  recoverBlock,
  verifyFragment,
  type FragmentRecord,
} from '../../../archive/erasure/fragment.ts';
import { buildTree, pathLengthOf, topFromPath } from '../../../archive/erasure/merkle.ts';
import { Prng } from '../../../sim/prng.ts';

const crypto = nodeCrypto;

function blockOf(seed: number, length: number): { block: Uint8Array; bguid: Uint8Array } {
  const block = new Prng(seed).bytes(length);
  return { block, bguid: taggedHash(crypto, HashTag.dataBlock, block) };
}

const checkerFor = (bguid: Uint8Array) => (b: Uint8Array) => bytesEqual(taggedHash(crypto, HashTag.dataBlock, b), bguid);

describe('Merkle tree over fragments', () => {
  it('every leaf path reproduces the top for every tree size 1..40 (odd nodes carried up)', () => {
    for (let n = 1; n <= 40; n++) {
      const leaves = Array.from({ length: n }, (_, i) => taggedHash(crypto, HashTag.fragmentLeaf, Uint8Array.of(i)));
      const { top, paths } = buildTree(crypto, leaves);
      for (let i = 0; i < n; i++) {
        expect(paths[i]).toHaveLength(pathLengthOf(i, n));
        expect(topFromPath(crypto, leaves[i]!, i, n, paths[i]!)).toEqual(top);
      }
    }
  });
});

describe('makeFragments / verifyFragment', () => {
  it('every fragment verifies alone against the root, with node and noble crypto alike', () => {
    const { block, bguid } = blockOf(1, 10_000);
    const set = makeFragments(crypto, 10, 4, bguid, block);
    expect(set.fragments).toHaveLength(14);
    for (const f of set.fragments) expect(verifyFragment(crypto, f, set.fragmentRoot)).toBe(true);
    expect(makeFragments(nobleCrypto, 10, 4, bguid, block).fragmentRoot).toEqual(set.fragmentRoot);
  });

  it('property: for random shapes and blocks every record verifies, and any flipped byte in payload or path does not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 0, max: 600 }),
        fc.integer({ min: 1, max: 2 ** 31 - 1 }),
        (k, m, blockBytes, seed) => {
          const prng = new Prng(seed);
          const block = prng.bytes(blockBytes);
          const bguid = taggedHash(crypto, HashTag.dataBlock, block);
          const { fragmentRoot, fragments } = makeFragments(crypto, k, m, bguid, block);
          for (const f of fragments) expect(verifyFragment(crypto, f, fragmentRoot)).toBe(true);
          const victim = prng.pick(fragments);
          const hashes = [victim.payload, ...victim.path].filter((b) => b.length > 0);
          // An empty payload in a one-leaf tree (k = 1, m = 0, empty block) has no byte to flip.
          if (hashes.length === 0) return;
          const target = prng.pick(hashes);
          const at = prng.int(target.length);
          const tampered = hashes.map((b) => (b === target ? Uint8Array.from(b, (x, i) => (i === at ? x ^ (1 + prng.int(255)) : x)) : b));
          const record = target === victim.payload ? { ...victim, payload: tampered[0]! } : { ...victim, path: tampered.slice(victim.payload.length > 0 ? 1 : 0) };
          expect(verifyFragment(crypto, record, fragmentRoot)).toBe(false);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a flipped payload bit, a wrong path hash, or a relabelled index fails to verify', () => {
    const { block, bguid } = blockOf(2, 999);
    const { fragmentRoot, fragments } = makeFragments(crypto, 4, 4, bguid, block);
    const f = fragments[5]!;
    const flipped = { ...f, payload: f.payload.slice() };
    flipped.payload[7]! ^= 1;
    expect(verifyFragment(crypto, flipped, fragmentRoot)).toBe(false);
    expect(() => checkFragment(crypto, flipped, fragmentRoot)).toThrow(FragmentError);
    const badPath = { ...f, path: f.path.map((p, i) => (i === 1 ? p.map((x) => x ^ 0xff) : p)) };
    expect(verifyFragment(crypto, badPath, fragmentRoot)).toBe(false);
    expect(verifyFragment(crypto, { ...f, index: 4 }, fragmentRoot)).toBe(false);
  });

  it('binds k, m, blockBytes and the BGUID into the root: relabelled or foreign records fail', () => {
    const { block, bguid } = blockOf(3, 1200);
    const { fragmentRoot, fragments } = makeFragments(crypto, 4, 4, bguid, block);
    const f = fragments[0]!;
    // Same payload length (300) under other parameters, so only the root binding can catch these.
    const relabelled: FragmentRecord[] = [
      { ...f, k: 4, m: 5, path: makeFragments(crypto, 4, 5, bguid, block).fragments[0]!.path },
      { ...f, blockBytes: 1199 },
      { ...f, bguid: blockOf(4, 10).bguid },
    ];
    for (const r of relabelled) expect(verifyFragment(crypto, r, fragmentRoot)).toBe(false);
    const other = blockOf(5, 1200);
    const foreign = makeFragments(crypto, 4, 4, other.bguid, other.block);
    expect(verifyFragment(crypto, foreign.fragments[0]!, fragmentRoot)).toBe(false);
  });

  it('refuses structurally bad records with the named fault', () => {
    const { block, bguid } = blockOf(6, 100);
    const { fragmentRoot, fragments } = makeFragments(crypto, 4, 2, bguid, block);
    const f = fragments[1]!;
    const cases: [FragmentRecord, string][] = [
      [{ ...f, payload: f.payload.subarray(0, 24) }, 'truncated'],
      [{ ...f, index: 6 }, 'index'],
      [{ ...f, k: 200, m: 100 }, 'parameters'],
      [{ ...f, version: 2 }, 'malformed'],
      [{ ...f, path: f.path.slice(1) }, 'path'],
      [null as unknown as FragmentRecord, 'malformed'],
    ];
    for (const [record, fault] of cases) {
      expect(verifyFragment(crypto, record, fragmentRoot)).toBe(false);
      try {
        checkFragment(crypto, record, fragmentRoot);
        expect.unreachable('checkFragment accepted a bad record');
      } catch (error) {
        expect(error).toBeInstanceOf(FragmentError);
        expect((error as FragmentError).fault).toBe(fault);
      }
    }
  });
});

describe('encodeFragment / decodeFragment', () => {
  it('round-trips every record, which still verifies', () => {
    const { block, bguid } = blockOf(7, 3333);
    const { fragmentRoot, fragments } = makeFragments(crypto, 16, 16, bguid, block);
    for (const f of fragments) {
      const back = decodeFragment(encodeFragment(f));
      expect(back).toEqual(f);
      expect(verifyFragment(crypto, back, fragmentRoot)).toBe(true);
    }
  });

  it('refuses truncated bytes, oversize input and inconsistent fields', () => {
    const { block, bguid } = blockOf(8, 500);
    const f = makeFragments(crypto, 4, 4, bguid, block).fragments[2]!;
    const bytes = encodeFragment(f);
    expect(() => decodeFragment(bytes.subarray(0, bytes.length - 10))).toThrow(DecodeError);
    expect(() => decodeFragment(bytes, 100)).toThrow(/exceeds/);
    // A payload cut short but re-encoded consistently as msgpack is caught by the shape check.
    const cut = encodeFragmentUnchecked({ ...f, payload: f.payload.subarray(0, 10) });
    expect(() => decodeFragment(cut)).toThrow(FragmentError);
  });
});

describe('recoverBlock from untrusted records', () => {
  it('recovers from any k genuine records mixed with corrupt, duplicate, foreign and forged ones', () => {
    const { block, bguid } = blockOf(9, 20_000);
    const { fragmentRoot, fragments } = makeFragments(crypto, 10, 4, bguid, block);
    const corrupt = { ...fragments[0]!, payload: fragments[0]!.payload.map((x) => x ^ 1) };
    const other = blockOf(10, 20_000);
    const foreign = makeFragments(crypto, 10, 4, other.bguid, other.block).fragments;
    // A forger with a full, self-consistent set for our BGUID but other bytes: its group decodes,
    // then fails the caller's BGUID check, and the genuine group is used.
    const forged = makeFragments(crypto, 10, 4, bguid, other.block).fragments;
    const records = [...forged, corrupt, fragments[3]!, fragments[3]!, ...foreign.slice(0, 5), ...fragments.slice(4, 13)];
    const got = recoverBlock(crypto, bguid, records, checkerFor(bguid));
    expect(got).toEqual(block);
    expect(recoverBlock(crypto, bguid, records, checkerFor(bguid), { fragmentRoot })).toEqual(block);
  });

  it('fails with NotEnoughFragmentsError listing why records were refused', () => {
    const { block, bguid } = blockOf(11, 4000);
    const { fragments } = makeFragments(crypto, 10, 4, bguid, block);
    const truncated = { ...fragments[0]!, payload: fragments[0]!.payload.subarray(1) };
    const records = [truncated, ...fragments.slice(1, 10), fragments[1]!];
    try {
      recoverBlock(crypto, bguid, records, checkerFor(bguid));
      expect.unreachable('recovered from 9 good fragments with k = 10');
    } catch (error) {
      expect(error).toBeInstanceOf(NotEnoughFragmentsError);
      const problems = (error as NotEnoughFragmentsError).problems.join('\n');
      expect(problems).toMatch(/record 0: truncated/);
      expect(problems).toMatch(/record 10: duplicate/);
    }
  });

  it('with a trusted root, a forged self-consistent set is refused before decoding', () => {
    const { block, bguid } = blockOf(12, 4000);
    const genuine = makeFragments(crypto, 4, 4, bguid, block);
    const forged = makeFragments(crypto, 4, 4, bguid, blockOf(13, 4000).block);
    let decodedCalls = 0;
    expect(() =>
      recoverBlock(crypto, bguid, forged.fragments, () => (decodedCalls++, true), { fragmentRoot: genuine.fragmentRoot }),
    ).toThrow(/root-mismatch/);
    expect(decodedCalls).toBe(0);
    expect(fragmentRootOf(crypto, forged.fragments[0]!)).toEqual(forged.fragmentRoot);
  });
});

function encodeFragmentUnchecked(r: FragmentRecord): Uint8Array {
  return msgpackEncode(['fragment', r.version, r.k, r.m, r.index, r.blockBytes, r.bguid, r.payload, r.path]);
}
