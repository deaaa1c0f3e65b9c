/**
 * Storage receipts: an archive server's signature over "I hold fragment `index` of block `bguid`
 * under `fragmentRoot`". The archiver counts receipts to know a block is safely archived, and a
 * receipt is a transferable proof (a ring server can show it to another, an operator can audit a
 * server that signed and then lost a fragment). Signed under HashTag.receipt so it can never be
 * mistaken for any other signed statement.
 */
import { u32be, concatBytes } from '../core/bytes.ts';
import { HashTag, signTagged, verifyTagged, type Crypto, type Signer } from '../core/crypto.ts';

export interface ReceiptBody {
  bguid: Uint8Array;
  fragmentRoot: Uint8Array;
  index: number;
}

function receiptPreimage(body: ReceiptBody): Uint8Array {
  return concatBytes([body.bguid, body.fragmentRoot, u32be(body.index)]);
}

export function signReceipt(crypto: Crypto, signer: Signer, body: ReceiptBody): Uint8Array {
  return signTagged(crypto, signer, HashTag.receipt, receiptPreimage(body));
}

/** True iff `signature` is `publicKey`'s receipt for `body`. Never throws. */
export function verifyReceipt(crypto: Crypto, publicKey: Uint8Array, body: ReceiptBody, signature: Uint8Array): boolean {
  return verifyTagged(crypto, publicKey, HashTag.receipt, receiptPreimage(body), signature);
}
