/**
 * Named errors of the erasure coder and the fragment layer. They extend the project's classes in
 * core/errors.ts so callers can catch by family (IntegrityError, UnavailableError) or exactly.
 */
import { IntegrityError, UnavailableError } from '../../core/errors.ts';

/** Why a fragment was refused; stable strings so callers can count drops by kind. */
export type FragmentFault =
  | 'malformed'
  | 'foreign'
  | 'parameters'
  | 'index'
  | 'truncated'
  | 'path'
  | 'root-mismatch'
  | 'duplicate';

/** A fragment record is corrupt, truncated, foreign, mislabelled or duplicated. Do not decode it. */
export class FragmentError extends IntegrityError {
  override name = 'FragmentError';
  constructor(
    message: string,
    readonly fault: FragmentFault,
  ) {
    super(message);
  }
}

/**
 * Fewer than k usable fragments: the block cannot be decoded from what was given. `problems` lists
 * what was wrong with the fragments that were refused (empty when there were simply too few).
 */
export class NotEnoughFragmentsError extends UnavailableError {
  override name = 'NotEnoughFragmentsError';
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}
