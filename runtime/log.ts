/**
 * Structured JSON logs (pino). A node logs to its own file so `cluster up` can keep many
 * processes' output apart; tests capture lines in memory to assert on the logged reasons.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A logger writing JSON lines to `file` (synchronously, so a kill -9 loses no line already logged). */
export function fileLogger(file: string, name: string, level = 'info'): Logger {
  mkdirSync(dirname(file), { recursive: true });
  return pino({ name, level }, pino.destination({ dest: file, sync: true, mkdir: true }));
}

/** A logger that keeps parsed lines in `lines` (tests). */
export function memoryLogger(name = 'test', level = 'debug'): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { log: pino({ name, level }, stream), lines };
}

export interface LogLimits {
  /** Lines logged per key in a period; the rest are counted. */
  readonly burstMax: number;
  readonly periodMs: number;
  /** Keys tracked in a period; further keys share one. */
  readonly keysMax: number;
}

const logLimitsDefault: LogLimits = { burstMax: 5, periodMs: 10_000, keysMax: 1024 };
const overflowKey = '(other keys)';

/**
 * Warnings that a peer's input triggers (a dropped frame, a refused handshake, a cut), limited by
 * key (a peer and a reason): the first `burstMax` of a key in a period are logged, the rest
 * counted, and when the period ends one line per key says how many were left out. A node's log is
 * written synchronously, so without this a peer sending junk made the node write a line per frame
 * (5,000 one-byte frames, 5,000 lines in 0.2 s). The metrics still count every event.
 */
export class LogLimiter {
  private readonly keys = new Map<string, { logged: number; suppressed: number; msg: string }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly limits: LogLimits;

  constructor(private readonly log: Logger, limits: Partial<LogLimits> = {}) {
    this.limits = { ...logLimitsDefault, ...limits };
  }

  warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const k = this.keys.has(key) || this.keys.size < this.limits.keysMax ? key : overflowKey;
    let entry = this.keys.get(k);
    if (!entry) {
      entry = { logged: 0, suppressed: 0, msg };
      this.keys.set(k, entry);
      if (!this.timer) {
        this.timer = setTimeout(() => this.flush(), this.limits.periodMs);
        this.timer.unref();
      }
    }
    if (entry.logged < this.limits.burstMax) {
      entry.logged += 1;
      this.log.warn(fields, msg);
    } else {
      entry.suppressed += 1;
    }
  }

  /** Ends the period: logs what was left out of it (also on stop, so no count is lost). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const [key, entry] of this.keys) {
      if (entry.suppressed > 0) this.log.warn({ key, suppressed: entry.suppressed, periodMs: this.limits.periodMs }, `${entry.msg} (more lines like it left out)`);
    }
    this.keys.clear();
  }
}

/** A logger that drops everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
