/**
 * Arithmetic in GF(2^8) with the reducing polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D) and
 * generator 2 — the field Intel ISA-L uses, so our matrices and parity bytes equal its own.
 * Tables are built once at module load from the polynomial (no copied constants to mistype).
 */

export const fieldPolynomial = 0x11d;

/** expTable[i] = 2^i for i in 0..509 (doubled so a product never needs a `% 255`). */
const expTable = new Uint8Array(510);
/** logTable[x] = i with 2^i = x, for x in 1..255 (logTable[0] is unused). */
const logTable = new Uint8Array(256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    expTable[i] = x;
    expTable[i + 255] = x;
    logTable[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= fieldPolynomial;
  }
}

export function gfMul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return expTable[logTable[a]! + logTable[b]!]!;
}

/** Multiplicative inverse; 0 has none, and asking for it is a programmer error upstream. */
export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('gfInv(0): zero has no inverse in GF(2^8)');
  return expTable[255 - logTable[a]!]!;
}

/**
 * The 256 x 256 product table (64 KiB), row c = c * x for every x. The reference kernel multiplies
 * a whole shard by one coefficient with one row lookup per byte.
 */
export const mulTable: Uint8Array = (() => {
  const table = new Uint8Array(256 * 256);
  for (let c = 0; c < 256; c++) for (let x = 0; x < 256; x++) table[c * 256 + x] = gfMul(c, x);
  return table;
})();

/**
 * The split-nibble tables for one coefficient c: 16 bytes c * x for x = 0..15 (low nibble), then
 * 16 bytes c * (x << 4) (high nibble); c * b = lo[b & 15] ^ hi[b >> 4] because multiplication by c
 * is linear over GF(2). Same 32-byte layout as ISA-L's `ec_init_tables`.
 */
export function writeNibbleTables(c: number, out: Uint8Array, offset: number): void {
  for (let x = 0; x < 16; x++) {
    out[offset + x] = gfMul(c, x);
    out[offset + 16 + x] = gfMul(c, x << 4);
  }
}
