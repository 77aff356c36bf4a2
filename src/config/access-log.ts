/**
 * The `accessLog` setting shared by the edge and the origin: where the one line per request goes,
 * in which format, how much of the traffic, and the bound on what may wait in memory.
 * `accessLog: false` turns it off.
 */
import { z } from 'zod';
import { byteSize, duration } from './common.js';

const settings = z.strictObject(
  {
    /** Logging on. Written `accessLog: false` to turn it off. */
    enabled: z.boolean().default(true),
    /**
     * `stdout` (default), `stderr`, or a file opened for appending (and reopened on SIGUSR1 after
     * a rotation). A relative path is taken from the working directory.
     */
    path: z.string().min(1).default('stdout'),
    /** `json`: one JSON object per line (default). `combined`: nginx's combined format with the cache outcome appended. */
    format: z.enum(['json', 'combined']).default('json'),
    /** Fraction of requests logged, 0..1, for very busy nodes. Default 1: every request. */
    sample: z.number().min(0).max(1).default(1),
    /**
     * Bound on lines waiting to be written, in bytes (64KiB..1GiB). Past it, lines are dropped and
     * counted (`access_log_dropped_total`), so a destination that cannot keep up never stalls a
     * request. Default 4 MiB: about 15,000 lines, a few seconds of a saturated node's traffic.
     */
    maxBufferBytes: byteSize.pipe(z.number().min(64 * 1024, 'at least 64KiB').max(1024 ** 3, 'at most 1GiB')).default(4 * 1024 * 1024),
    /** Longest a line waits in memory before it is written (10ms..60s). Default 1 s, as `tail -f` readers expect. */
    flushInterval: duration.pipe(z.number().min(10, 'at least 10ms').max(60_000, 'at most 60s')).default(1_000),
  },
  { error: (issue) => (issue.code === 'invalid_type' ? 'expected false, or an object with path, format, sample, maxBufferBytes, flushInterval' : undefined) },
);

export const accessLogSchema = z.preprocess((value) => (value === undefined || value === true ? {} : value === false ? { enabled: false } : value), settings);

export type AccessLogConfig = z.output<typeof accessLogSchema>;
