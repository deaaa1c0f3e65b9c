/**
 * An optional faster engine for the BLS operations that dominate a ring's CPU (hash to G1, G1
 * scalar multiplication, pairing checks). The pure @noble/curves code in this folder stays the
 * reference and the fallback; a runtime shell may install an engine with the same input/output
 * bytes (runtime/mcl-bls.ts, WebAssembly) once it has loaded it. Cores stay pure: this module
 * only holds the interface and the installed instance, and every engine is cross-checked against
 * the reference byte for byte (test/runtime/mcl-bls.test.ts).
 */
export interface BlsEngine {
  readonly name: string;
  /** RFC 9380 hash_to_curve onto G1 (SSWU, random oracle) under `dst`: 48 compressed bytes. */
  hashToG1(message: Uint8Array, dst: string): Uint8Array;
  /** scalar·P for a G1 point given as 48 compressed bytes (trusted: made by this process). */
  g1Multiply(point: Uint8Array, scalar: bigint): Uint8Array;
  /** Σ scalars[i]·points[i], or null if a point does not decode to a subgroup point. */
  g1MultiplyAdd(points: readonly Uint8Array[], scalars: readonly bigint[]): Uint8Array | null;
  /**
   * e(signature, G2) = e(hashed, publicKey): the signature must decode to a non-identity G1
   * subgroup point and the key to a G2 subgroup point, else false. Never throws.
   */
  verify(signature: Uint8Array, hashed: Uint8Array, publicKey: Uint8Array): boolean;
  /** scalar·G2 (the generator), 96 compressed bytes; the identity for 0. */
  g2MultiplyBase(scalar: bigint): Uint8Array;
}

let installed: BlsEngine | null = null;

/** Installs (or, with null, removes) the engine every threshold operation in this process uses. */
export function installBlsEngine(engine: BlsEngine | null): void {
  installed = engine;
}

export function blsEngine(): BlsEngine | null {
  return installed;
}
