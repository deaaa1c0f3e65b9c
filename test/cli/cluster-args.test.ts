/**
 * `oceanstore cluster` flag parsing (cli/cluster.ts parseCommandArgs over cli/cluster-args.ts):
 * unknown options and extra arguments are usage errors (exit 2) naming what is known; an unknown
 * `--jsn` was read as a flag wanting a value ("needs a value"), `--verbose yes` and extra
 * positional arguments were taken silently.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../core/errors.ts';
import { parseCommandArgs, interruptSignals, run } from '../../cli/cluster.ts';
import { vi } from 'vitest';
import { parseArgs } from '../../cli/cluster-args.ts';

describe('cluster flag parsing', () => {
  it('refuses an unknown option, naming the known ones', () => {
    expect(() => parseCommandArgs('status', ['--jsn'])).toThrow(/unknown option --jsn \(known: --config, --json\)/);
    expect(() => parseCommandArgs('down', ['--force'])).toThrow(/unknown option --force/);
    expect(() => parseCommandArgs('up', ['--verbose', 'yes'])).toThrow(/unknown option --verbose/);
    expect(() => parseCommandArgs('up', ['--jsn'])).toThrow(InvalidArgumentError);
  });

  it('refuses extra positional arguments and a value on a bare flag', () => {
    expect(() => parseCommandArgs('up', ['now'])).toThrow(/cluster up takes no arguments; unexpected 'now'/);
    expect(() => parseCommandArgs('stop-node', ['ring-0', 'ring-1'])).toThrow(/at most 1 argument; unexpected 'ring-1'/);
    expect(() => parseCommandArgs('up', ['--detach=yes'])).toThrow(/--detach takes no value/);
  });

  it('takes what each command knows', () => {
    const up = parseCommandArgs('up', ['--detach', '--timeout-ms', '5000', '--config=x.json']);
    expect(up.flags.get('detach')).toBe(true);
    expect(up.flags.get('timeout-ms')).toBe('5000');
    expect(up.flags.get('config')).toBe('x.json');
    expect(parseCommandArgs('replace-node', ['ring-1', '--with', 'spare-0']).positional).toEqual(['ring-1']);
    expect(() => parseCommandArgs('up', ['--timeout-ms'])).toThrow(/--timeout-ms needs a value/);
    // Without a list of value flags (the node entry's old call), anything goes as before.
    expect(parseArgs(['--anything', 'x']).flags.get('anything')).toBe('x');
  });

  it('a foreground cluster ends on a hang-up too (closing its terminal left 14 nodes running)', () => {
    expect(interruptSignals).toContain('SIGHUP');
  });

  it('status --json that fails prints a JSON error object on stdout, as the object verbs do (it printed only a line on stderr)', async () => {
    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      expect(await run(['status', '--json', '--config', '/nonexistent/oceanstore.json'])).toBe(1);
      expect(await run(['status', '--json', '--jsn'])).toBe(2);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    const errors = out.map((line) => (JSON.parse(line) as { error: { name: string; exitCode: number } }).error);
    expect(errors.map((e) => [e.name, e.exitCode])).toEqual([['ConfigError', 1], ['InvalidArgumentError', 2]]);
  });
});
