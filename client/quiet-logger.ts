/**
 * The SDK's default logger: says nothing, and does not load pino (~20-35 ms of every CLI call's
 * start, for a logger set to 'silent'). Only the methods the transport, host and ring client call
 * exist; an application that wants logs passes its own pino logger to `connect({ log })`.
 */
import type { Logger } from 'pino';

export function quietLogger(): Logger {
  const nothing = (): void => undefined;
  const logger = {
    level: 'silent',
    fatal: nothing,
    error: nothing,
    warn: nothing,
    info: nothing,
    debug: nothing,
    trace: nothing,
    silent: nothing,
    child: (): unknown => logger,
    isLevelEnabled: (): boolean => false,
  };
  return logger as unknown as Logger;
}
