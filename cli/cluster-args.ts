/** Small argument parsing shared by `oceanstore cluster ...` and `oceanstore node ...`. */
import { InvalidArgumentError } from '../core/errors.ts';

export interface ParsedArgs {
  readonly positional: string[];
  readonly flags: Map<string, string | true>;
}

/**
 * `--key value`, `--key=value` and bare `--flag` (for names in `booleans`). With `values`, the
 * flags taking a value, any other `--name` is refused as an unknown option, naming the known ones
 * (an unknown `--jsn` used to be read as a flag wanting a value, and `--verbose yes` was taken
 * silently). A boolean flag takes no value (`--detach=yes` is refused).
 */
export function parseArgs(args: readonly string[], booleans: readonly string[] = [], values?: readonly string[]): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const known = () => [...(values ?? []), ...booleans].map((k) => `--${k}`).join(', ') || 'none';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    const isBoolean = booleans.includes(key);
    if (values !== undefined && !isBoolean && !values.includes(key)) throw new InvalidArgumentError(`unknown option --${key} (known: ${known()})`);
    if (isBoolean) {
      if (eq > 0) throw new InvalidArgumentError(`--${key} takes no value`);
      flags.set(key, true);
    } else if (eq > 0) flags.set(key, arg.slice(eq + 1));
    else {
      const value = args[i + 1];
      if (value === undefined || value.startsWith('--')) throw new InvalidArgumentError(`--${key} needs a value`);
      flags.set(key, value);
      i += 1;
    }
  }
  return { positional, flags };
}

/** Refuses positional arguments beyond the `max` a command takes (they were dropped silently). */
export function checkPositional(parsed: ParsedArgs, max: number, command: string): void {
  if (parsed.positional.length > max) {
    const extra = parsed.positional.slice(max).map((a) => `'${a}'`).join(' ');
    throw new InvalidArgumentError(`${command} takes ${max === 0 ? 'no arguments' : `at most ${max} argument${max === 1 ? '' : 's'}`}; unexpected ${extra}`);
  }
}

export function stringFlag(parsed: ParsedArgs, key: string, fallback?: string): string {
  const v = parsed.flags.get(key);
  if (typeof v === 'string') return v;
  if (fallback !== undefined) return fallback;
  throw new InvalidArgumentError(`missing --${key}`);
}
