/**
 * Turns the ring's agreed result for an update (f+1 matching signed replies) into the SDK's
 * answer: the new version, or a named error (PredicateFailedError with the current version,
 * UnauthorizedError, ...). The certified statement follows as `certified`.
 */
import { toHex } from '../core/bytes.ts';
import { IntegrityError, InvalidArgumentError, NotFoundError, PredicateFailedError, ReplayError, UnauthorizedError } from '../core/errors.ts';
import { decodeObjectResult } from '../ring/object-result.ts';
import type { Submitted } from './session.ts';

export interface WriteResult {
  readonly version: number;
  readonly vguid: string;
  /** The ring's sequence number for the batch that ordered the update. */
  readonly seq: number;
  /** Resolves when the threshold certificate for this update arrived and verified. */
  readonly certified: Promise<void>;
}

export function outcomeOf(submitted: Submitted): WriteResult {
  let result;
  try {
    result = decodeObjectResult(submitted.result);
  } catch {
    throw new IntegrityError('f+1 ring servers agreed on a result this client cannot decode (version mismatch?)');
  }
  if (result.outcome === 'commit') {
    const certified = submitted.certified.then(() => undefined);
    certified.catch(() => undefined); // awaiting the certificate is optional
    return { version: result.version, vguid: toHex(result.vguid), seq: submitted.seq, certified };
  }
  const message = result.detail ? `${result.reason}: ${result.detail}` : result.reason;
  switch (result.reason) {
    case 'predicate-failed':
      throw new PredicateFailedError(`no clause's predicates held (current version ${result.currentVersion})`, result.currentVersion);
    case 'unauthorized':
      throw new UnauthorizedError(`this identity may not update the object (${message})`);
    case 'no-object':
      throw new NotFoundError(`the object does not exist (${message})`);
    case 'exists':
      throw new PredicateFailedError(`the object already exists (current version ${result.currentVersion})`, result.currentVersion);
    case 'replay':
      throw new ReplayError(`the ring refused a reused nonce (${message})`);
    case 'malformed':
    case 'bad-signature':
      throw new IntegrityError(`the ring refused the update as ${message} (client and ring versions differ?)`);
    default:
      // out-of-range, missing-block, bad-block, bad-create, ...: the update itself was wrong.
      throw new InvalidArgumentError(`update aborted: ${message}`);
  }
}
