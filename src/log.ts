/**
 * Structured JSON logging through pino: one line per request (method, path, status, bytes,
 * duration, cache outcome) and lifecycle events. A logger is created once per process and passed
 * down; nothing imports a global logger.
 */
import pino, { type Logger } from 'pino';

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

export interface RequestLogFields {
  method: string;
  path: string;
  status: number;
  bytes: number;
  durationMs: number;
  cache?: string;
  error?: string;
  /** Where the time went, in ms, when the server knows (the origin: a new variant's queue and transform time). */
  phases?: Record<string, number>;
}

export function logRequest(logger: Logger, fields: RequestLogFields): void {
  logger.info({ req: fields }, 'request');
}
