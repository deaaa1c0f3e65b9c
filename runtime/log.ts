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

/** A logger that drops everything. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
