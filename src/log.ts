/**
 * Structured JSON logging through pino: lifecycle events and errors (requests have their own
 * log, src/access-log/). A logger is created once per process and passed down; nothing imports a
 * global logger.
 */
import pino, { type Logger } from 'pino';
import type { AccessLogConfig } from './config/access-log.js';

export type { Logger };

export interface LoggerOptions {
  /** Minimum level; default `info`. `silent` turns logging off (tests). */
  level?: string;
  /** Constant fields on every line, e.g. `{ service: 'edge', pop: 'ams', node: 'ams-1' }`. */
  base?: Record<string, unknown>;
  /** Destination stream; default stdout. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? {},
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    (options.destination ?? process.stdout) as pino.DestinationStream,
  );
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Where the lifecycle log goes: standard output, unless the access log writes the combined
 * format there; two formats on one stream would make both unreadable by tools. (Here, not beside
 * the access log's schema: a cluster worker makes its logger without loading any schema.)
 */
export function lifecycleLogStream(accessLog: AccessLogConfig): 'stdout' | 'stderr' {
  return accessLog.enabled && accessLog.path === 'stdout' && accessLog.format === 'combined' ? 'stderr' : 'stdout';
}
