/** Picks the fastest kernel this runtime supports, once. */
import { referenceKernel, type Kernel } from './kernel.ts';

let chosen: Kernel | undefined;

export function defaultKernel(): Kernel {
  chosen ??= referenceKernel;
  return chosen;
}
