/** One import point for the tests (the module's public surface plus the project error classes). */
export * from '../../../core/threshold/index.ts';
export { InvalidArgumentError, DecodeError } from '../../../core/errors.ts';
