/**
 * The launcher's process identity check (runtime/cluster-launcher.ts isNodeProcess): a pid file
 * may be stale and its pid reused, and two clusters on one host (as in the tests, which run
 * several at once) may each have a node of the same name, so a stop or kill must only ever reach
 * the node of its own cluster's config file.
 */
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { isNodeProcess } from '../../runtime/cluster-launcher.ts';

// A stand-in with a node's command line (`... cli/node.ts --config FILE --node NAME`) that does nothing.
const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)', '/repo/cli/node.ts', '--config', '/tmp/cluster-a.json', '--node', 'ring-0'], { stdio: 'ignore' });

afterAll(() => {
  child.kill('SIGKILL');
});

describe('cluster launcher: which process is a node', () => {
  it('is the node of that name, and of that config file when one is given', async () => {
    const pid = child.pid!;
    // The command line is the child's once it has exec'd (bounded wait).
    for (let i = 0; i < 100 && !isNodeProcess(pid, 'ring-0'); i++) await new Promise((r) => setTimeout(r, 20));
    expect(isNodeProcess(pid, 'ring-0')).toBe(true);
    expect(isNodeProcess(pid, 'ring-0', '/tmp/cluster-a.json')).toBe(true);
    expect(isNodeProcess(pid, 'ring-0', '/tmp/cluster-b.json')).toBe(false);
    expect(isNodeProcess(pid, 'ring-1', '/tmp/cluster-a.json')).toBe(false);
    expect(isNodeProcess(process.pid, 'ring-0')).toBe(false);
  });
});
