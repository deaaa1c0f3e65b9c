/**
 * The WebAssembly BLS12-381 engine (mcl-wasm) behind core/threshold/accelerator.ts: the same
 * bytes as the @noble/curves reference, several times faster (a pairing check ~5x, hash to G1
 * ~7x: bench/threshold.ts). Hash-to-field (expand_message_xmd with our DST) stays in
 * @noble/curves; mcl maps each field element to G1 with the same SSWU map and cofactor clearing,
 * so the sum is RFC 9380's hash_to_curve (checked against noble in the tests).
 */
import * as mcl from 'mcl-wasm';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { hash_to_field } from '@noble/curves/abstract/hash-to-curve.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from '../core/bytes.ts';
import { installBlsEngine, type BlsEngine } from '../core/threshold/accelerator.ts';

const fieldOrder = bls12_381.fields.Fp.ORDER;
const precomputesMax = 64;
let loading: Promise<BlsEngine> | null = null;

/** Loads mcl once per process and installs it for every threshold operation. */
export function useMclBls(): Promise<BlsEngine> {
  loading ??= (async () => {
    await mcl.init(mcl.BLS12_381);
    mcl.setETHserialization(true); // the ZCash compressed encoding noble uses
    mcl.setMapToMode(mcl.IRTF);
    mcl.verifyOrderG1(true);
    mcl.verifyOrderG2(true);
    const engine = mclEngine();
    installBlsEngine(engine);
    return engine;
  })();
  return loading;
}

/** A non-identity G1 point from 48 bytes, or null; `trusted` skips the subgroup check (a point this process hashed). */
function g1Of(bytes: Uint8Array, trusted = false): mcl.G1 | null {
  if (bytes.length !== 48) return null;
  if (trusted) mcl.verifyOrderG1(false);
  try {
    const p = new mcl.G1();
    p.deserialize(bytes);
    return p.isZero() ? null : p;
  } catch {
    return null;
  } finally {
    if (trusted) mcl.verifyOrderG1(true);
  }
}

function frOf(scalar: bigint): mcl.Fr {
  const fr = new mcl.Fr();
  fr.setStr(scalar.toString(16), 16);
  return fr;
}

function serialized(p: mcl.G1): Uint8Array {
  p.normalize();
  return p.serialize();
}

/**
 * The BLS12-381 G2 generator, compressed (ZCash encoding), as a constant: asking noble for
 * `G2.Point.BASE.toBytes(true)` runs its subgroup check, 0.12 s of CPU on every node start and
 * CLI call. test/runtime/mcl-bls.test.ts checks it equals noble's.
 */
export const g2GeneratorCompressedHex =
  '93e02b6052719f607dacd3a088274f65596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e' +
  '024aa2b2f08f0a91260805272dc51051c6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8';

function mclEngine(): BlsEngine {
  const generator = new mcl.G2();
  generator.deserialize(fromHex(g2GeneratorCompressedHex));
  const negatedGenerator = new mcl.PrecomputedG2(mcl.neg(generator));
  // Keys repeat (the ring key, each server's PK_i): their Miller-loop precomputes are kept.
  const keys = new Map<string, mcl.PrecomputedG2 | null>();
  const keyOf = (publicKey: Uint8Array): mcl.PrecomputedG2 | null => {
    const id = toHex(publicKey);
    let pre = keys.get(id);
    if (pre === undefined) {
      pre = null;
      if (publicKey.length === 96) {
        try {
          const q = new mcl.G2();
          q.deserialize(publicKey);
          if (!q.isZero()) pre = new mcl.PrecomputedG2(q);
        } catch {
          pre = null;
        }
      }
      if (keys.size >= precomputesMax) {
        const oldest = keys.keys().next().value as string;
        keys.get(oldest)?.destroy();
        keys.delete(oldest);
      }
      keys.set(id, pre);
    }
    return pre;
  };
  return {
    name: 'mcl-wasm',
    hashToG1(message, dst) {
      const u = hash_to_field(message, 2, { DST: dst, p: fieldOrder, m: 1, k: 128, expand: 'xmd', hash: sha256 });
      const f0 = new mcl.Fp();
      f0.setStr(u[0]![0]!.toString(16), 16);
      const f1 = new mcl.Fp();
      f1.setStr(u[1]![0]!.toString(16), 16);
      return serialized(mcl.add(f0.mapToG1(), f1.mapToG1()));
    },
    g1Multiply(point, scalar) {
      const p = g1Of(point, true);
      if (!p) throw new Error('g1Multiply: not a G1 point');
      return serialized(mcl.mul(p, frOf(scalar)));
    },
    g1MultiplyAdd(points, scalars) {
      const decoded = points.map((p) => g1Of(p)); // peers' shares: subgroup-checked
      if (decoded.some((p) => p === null)) return null;
      return serialized(mcl.mulVec(decoded as mcl.G1[], scalars.map(frOf)));
    },
    g2MultiplyBase(scalar) {
      return mcl.mul(generator, frOf(scalar)).serialize();
    },
    verify(signature, hashed, publicKey) {
      const sig = g1Of(signature);
      const h = g1Of(hashed, true); // our own hash-to-curve output: in the subgroup by construction
      const key = keyOf(publicKey);
      if (!sig || !h || !key) return false;
      // e(σ, -G2)·e(H, PK) = 1
      return mcl.finalExp(mcl.precomputedMillerLoop2(sig, negatedGenerator, h, key)).isOne();
    },
  };
}
