import { describe, expect, it } from 'vitest';
import { LogLimiter, memoryLogger } from '../../runtime/log.ts';
import { waitFor } from './wait.ts';

describe('LogLimiter', () => {
  it('logs the first burstMax lines of a key per period, then one line saying how many were left out', async () => {
    const { log, lines } = memoryLogger();
    const limiter = new LogLimiter(log, { burstMax: 3, periodMs: 50 });
    for (let i = 0; i < 20; i++) limiter.warn('p1 junk', { i }, 'frame dropped');
    limiter.warn('p2 junk', { i: 0 }, 'frame dropped'); // another key has its own lines
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2, 0]);
    await waitFor(() => lines.length === 5, 5000, 'the summary at the end of the period');
    expect(lines[4]).toMatchObject({ key: 'p1 junk', suppressed: 17, msg: 'frame dropped (more lines like it left out)' });
    // A new period starts with a new burst.
    limiter.warn('p1 junk', { i: 20 }, 'frame dropped');
    expect(lines.at(-1)).toMatchObject({ i: 20 });
    limiter.flush();
  });

  it('tracks at most keysMax keys in a period: further keys share one', () => {
    const { log, lines } = memoryLogger();
    const limiter = new LogLimiter(log, { burstMax: 1, periodMs: 60_000, keysMax: 2 });
    for (let i = 0; i < 100; i++) limiter.warn(`peer-${i}`, { i }, 'handshake refused');
    expect(lines.map((l) => l.i)).toEqual([0, 1, 2]); // two keys, then the shared one
    limiter.flush();
    expect(lines.at(-1)).toMatchObject({ key: '(other keys)', suppressed: 97 });
  });
});
