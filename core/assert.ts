/**
 * Programmer-error checks. Always on: a failed assertion means the code is wrong, so the node
 * stops (and a simulation seed fails) rather than carrying on with a broken invariant.
 * Bad or Byzantine input is never asserted on; it is decoded, checked and dropped at the boundary.
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, why: string): asserts condition {
  if (!condition) throw new AssertionError(why);
}

export function unreachable(value: never, why = 'unreachable'): never {
  throw new AssertionError(`${why}: ${JSON.stringify(value)}`);
}
