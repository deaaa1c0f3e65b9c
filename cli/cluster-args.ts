/** Small argument parsing shared by `oceanstore cluster ...` and `oceanstore node ...`. */
import { InvalidArgumentError } from '../core/errors.ts';

export interface ParsedArgs {
  readonly positional: string[];
  readonly flags: Map<string, string | true>;
}

/** `--key value`, `--key=value` and bare `--flag` (for names in `booleans`). */
export function parseArgs(args: readonly string[], booleans: readonly string[] = []): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (eq > 0) flags.set(key, arg.slice(eq + 1));
    else if (booleans.includes(key)) flags.set(key, true);
    else {
      const value = args[i + 1];
      if (value === undefined || value.startsWith('--')) throw new InvalidArgumentError(`--${key} needs a value`);
      flags.set(key, value);
      i += 1;
    }
  }
  return { positional, flags };
}

export function stringFlag(parsed: ParsedArgs, key: string, fallback?: string): string {
  const v = parsed.flags.get(key);
  if (typeof v === 'string') return v;
  if (fallback !== undefined) return fallback;
  throw new InvalidArgumentError(`missing --${key}`);
}
