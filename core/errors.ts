/**
 * Every named error the public APIs throw. One module, so callers can `instanceof` one place and
 * every message says what was wrong and what to do.
 */
export class OceanStoreError extends Error {
  override name = 'OceanStoreError';
}

/** A caller passed a bad argument (wrong type, out of range). Fix the call. */
export class InvalidArgumentError extends OceanStoreError {
  override name = 'InvalidArgumentError';
}

/** Bytes from a peer, a file or a user did not decode to the expected record shape. */
export class DecodeError extends OceanStoreError {
  override name = 'DecodeError';
}

/** A hash, signature, Merkle path or certificate did not verify. The data is not trusted. */
export class IntegrityError extends OceanStoreError {
  override name = 'IntegrityError';
}

/** The signer is not allowed to do this (not on the ACL, not the owner, unknown peer). */
export class UnauthorizedError extends OceanStoreError {
  override name = 'UnauthorizedError';
}

/** No clause's predicates held; `currentVersion` is the version the ring evaluated against. */
export class PredicateFailedError extends OceanStoreError {
  override name = 'PredicateFailedError';
  constructor(
    message: string,
    readonly currentVersion: number,
  ) {
    super(message);
  }
}

/** The object, version, block or fragment does not exist (or is not reachable). */
export class NotFoundError extends OceanStoreError {
  override name = 'NotFoundError';
}

/** An operation did not finish within its deadline. */
export class TimeoutError extends OceanStoreError {
  override name = 'TimeoutError';
}

/** Not enough servers answered to complete the operation safely. */
export class UnavailableError extends OceanStoreError {
  override name = 'UnavailableError';
}

/** A configuration file is invalid; the message names the field. */
export class ConfigError extends OceanStoreError {
  override name = 'ConfigError';
}

/**
 * The store (its session) was closed: nothing more is sent, and what was waiting ends with this.
 * Not retried (a read used to take it for an unavailable member and wait out its whole deadline).
 */
export class SessionClosedError extends InvalidArgumentError {
  override name = 'SessionClosedError';
}

/** The same nonce was used twice by one writer. */
export class ReplayError extends OceanStoreError {
  override name = 'ReplayError';
}

/** Throws InvalidArgumentError naming `argument` unless `condition` holds. */
export function checkArgument(condition: unknown, argument: string, expected: string): asserts condition {
  if (!condition) throw new InvalidArgumentError(`argument '${argument}': expected ${expected}`);
}
