/**
 * Storage receipts: an archive server's one signature over "I hold these fragments" (each named
 * by block BGUID, fragment root and index). The archiver counts receipts to know a block is safely
 * archived, and a receipt is a transferable proof (a ring server can show it to another, an
 * operator can audit a server that signed and then lost a fragment). One signature covers a whole
 * store batch, so a version's fragments on one server cost one ed25519 signature, not one each.
 * Signed under HashTag.receipt so it can never be mistaken for any other signed statement.
 */
import { u32be } from '../core/bytes.ts';
import { HashTag, signTagged, verifyTagged, type Crypto, type Signer } from '../core/crypto.ts';

export interface ReceiptBody {
  bguid: Uint8Array;
  fragmentRoot: Uint8Array;
  index: number;
}

function receiptPreimage(crypto: Crypto, items: readonly ReceiptBody[]): Uint8Array {
  // Hash the list first so the signed message stays small however many items there are.
  return crypto.sha256([u32be(items.length), ...items.flatMap((i) => [i.bguid, i.fragmentRoot, u32be(i.index)])]);
}

export function signReceipt(crypto: Crypto, signer: Signer, items: readonly ReceiptBody[]): Uint8Array {
  return signTagged(crypto, signer, HashTag.receipt, receiptPreimage(crypto, items));
}

/** True iff `signature` is `publicKey`'s receipt for exactly `items` (in order). Never throws. */
export function verifyReceipt(crypto: Crypto, publicKey: Uint8Array, items: readonly ReceiptBody[], signature: Uint8Array): boolean {
  return verifyTagged(crypto, publicKey, HashTag.receipt, receiptPreimage(crypto, items), signature);
}
