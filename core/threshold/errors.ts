/**
 * Named errors of the threshold module. They extend OceanStoreError so callers can catch every
 * project error in one place; they live here because core/errors.ts is shared and closed.
 */
import { OceanStoreError } from '../errors.ts';

/**
 * Not enough valid signature shares (or sub-shares) to finish: fewer than the threshold arrived,
 * or too many of them were bad. `badIndices` names the servers whose shares failed verification.
 */
export class ThresholdNotReachedError extends OceanStoreError {
  override name = 'ThresholdNotReachedError';
  constructor(
    message: string,
    readonly badIndices: readonly number[],
  ) {
    super(message);
  }
}

/** A resharing round cannot complete (too few qualified dealers); the message says why. */
export class ResharingError extends OceanStoreError {
  override name = 'ResharingError';
}
