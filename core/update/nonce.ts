/**
 * Replay protection lives in the ring, which remembers the last nonce it ordered per writer; this
 * is the rule it applies, kept here so every replica and the tests agree on it.
 */

/** True iff `nonce` may be ordered after `lastNonce` (undefined: the writer has not been seen). Strictly increasing. */
export function nonceIsFresh(lastNonce: number | undefined, nonce: number): boolean {
  return Number.isSafeInteger(nonce) && nonce >= 0 && (lastNonce === undefined || nonce > lastNonce);
}
