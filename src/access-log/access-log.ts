/**
 * The access log of one server process: a record per request (sampled), formatted as a line and
 * handed to the batching writer; its counts exposed as metrics; rotation and stop. Built once
 * from the `accessLog` setting by `openAccessLog` and passed down to the app.
 */
import { Counter, type Registry } from '../prom-parts.js';
import type { AccessLogConfig } from '../config/access-log.js';
import type { Logger } from '../log.js';
import { lineFormatter, loggedFields, type AccessRecord } from './line.js';
import { openLogSink } from './sink.js';
import { AccessLogWriter, type AccessLogCounts, type LogSink } from './writer.js';

export type { AccessRecord };

/**
 * Records waiting to be formatted are formatted at once when this many wait (else at the end of
 * the event loop's turn): a bound on what they hold on to (each its request's head, ≤ 16 KiB).
 */
const FORMAT_BATCH = 256;

export class AccessLog {
  /**
   * Records of this turn of the event loop, formatted together right after it (setImmediate):
   * a line formatted between two requests' network work cost the edge more CPU than the same
   * line formatted in a loop with the others of its turn (0.2–1 µs of ~4 µs, on 1 KiB hits).
   */
  private waiting: AccessRecord[] = [];
  private formatting: NodeJS.Immediate | undefined;

  constructor(
    private readonly writer: AccessLogWriter,
    private readonly format: (r: AccessRecord) => string,
  ) {}

  get counts(): Readonly<AccessLogCounts> {
    return this.writer.counts;
  }

  /** Whether to log this request (`sample`): ask before building its record. */
  sampled(): boolean {
    return this.writer.sampled();
  }

  /** Logs a record: its line goes to the writer at the end of this turn of the event loop, in order. */
  log(record: AccessRecord): void {
    if (this.waiting.push(record) >= FORMAT_BATCH) this.formatWaiting();
    else this.formatting ??= setImmediate(this.formatWaiting);
  }

  /** After a rotation (SIGUSR1): later lines go to a new file at the configured path. Resolves with whether it reopened. */
  reopen(): Promise<boolean> {
    this.formatWaiting();
    return this.writer.reopen();
  }

  /** Writes every line accepted so far (to be called once the server has answered its last request). */
  flush(): Promise<void> {
    this.formatWaiting();
    return this.writer.flush();
  }

  close(): Promise<void> {
    this.formatWaiting();
    return this.writer.close();
  }

  private readonly formatWaiting = (): void => {
    clearImmediate(this.formatting);
    this.formatting = undefined;
    const records = this.waiting;
    for (let i = 0; i < records.length; i++) this.writer.write(this.format(records[i]!));
    records.length = 0;
  };
}

export interface OpenAccessLogOptions {
  /** Constant fields of every JSON line, after `time` (the edge: pop and node). */
  fields?: Record<string, string>;
  /** Reports failed writes and reopens (at most one warning a minute for each). */
  logger: Logger;
  /** Where the line and drop counters go, and their name prefix (`anycdn_edge_`). */
  metrics?: { registry: Registry; prefix: string };
  /** The destination; default: opened from `config.path`. */
  sink?: LogSink;
  /** For tests: random numbers for sampling. */
  random?: () => number;
}

/** The access log the setting describes, or undefined when it is off. Opens (creates) the file. */
export async function openAccessLog(config: AccessLogConfig, options: OpenAccessLogOptions): Promise<AccessLog | undefined> {
  if (!config.enabled) return undefined;
  const sink = options.sink ?? (await openLogSink(config.path));
  const lastWarning = { write: -Infinity, reopen: -Infinity };
  const writer = new AccessLogWriter({
    sink,
    maxBufferBytes: config.maxBufferBytes,
    flushIntervalMs: config.flushInterval,
    sample: config.sample,
    random: options.random,
    onError(err, what) {
      const now = performance.now();
      if (now - lastWarning[what] < 60_000) return;
      lastWarning[what] = now;
      options.logger.warn({ err, path: config.path }, what === 'write' ? 'access log write failed; its lines are lost (counted in access_log_dropped_total)' : 'access log reopen failed; still writing to the file opened before');
    },
  });
  if (options.metrics !== undefined) registerCounts(writer.counts, options.metrics.registry, options.metrics.prefix);
  return new AccessLog(writer, lineFormatter(config.format, options.fields));
}

function registerCounts(counts: AccessLogCounts, registry: Registry, prefix: string): void {
  const reported = { written: 0, droppedFull: 0, droppedError: 0 };
  new Counter({
    name: `${prefix}access_log_lines_total`,
    help: 'Access log lines written',
    registers: [registry],
    collect() {
      this.inc(counts.written - reported.written);
      reported.written = counts.written;
    },
  });
  const dropped = new Counter({
    name: `${prefix}access_log_dropped_total`,
    help: 'Access log lines lost: the buffer was full (the destination could not keep up), or their write failed',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.inc({ reason: 'buffer-full' }, counts.droppedFull - reported.droppedFull);
      this.inc({ reason: 'write-error' }, counts.droppedError - reported.droppedError);
      reported.droppedFull = counts.droppedFull;
      reported.droppedError = counts.droppedError;
    },
  });
  dropped.inc({ reason: 'buffer-full' }, 0);
  dropped.inc({ reason: 'write-error' }, 0);
}

let clockOffset = 0;
let clockSynced = -Infinity;

/**
 * The wall-clock time (ms since the epoch) of a performance.now() reading, without a clock read
 * per request: the offset between the two clocks is taken again every second, so the monotonic
 * clock never drifts far from a wall clock that NTP adjusts.
 */
function wallClock(perfNow: number): number {
  if (perfNow - clockSynced > 1000 || perfNow < clockSynced) {
    clockSynced = performance.now();
    clockOffset = Date.now() - clockSynced;
  }
  return perfNow + clockOffset;
}

/** What a server knows of a request when it logs it. */
export interface LoggedRequest {
  method: string;
  /** The request target as received. */
  target: string;
  /** `HTTP/1.1`, `HTTP/1.0`. */
  protocol: string;
  rawHeaders: readonly string[];
  socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined } | undefined;
}

export interface LoggedAnswer {
  status: number;
  bytes: number;
  outcome: string;
  upstream?: { status: number; ms: number } | undefined;
  phases?: Readonly<Record<string, number>> | undefined;
}

/**
 * The record of a request that arrived at `started` (performance.now()), whose response head went
 * out at `headAt` (undefined: with the body, at the end) and whose last byte went out at `end`.
 */
export function accessRecord(req: LoggedRequest, answer: LoggedAnswer, started: number, headAt: number | undefined, end = performance.now()): AccessRecord {
  const fields = loggedFields(req.rawHeaders);
  const durationMs = end - started;
  return {
    time: wallClock(started),
    clientAddress: req.socket?.remoteAddress,
    clientPort: req.socket?.remotePort,
    method: req.method,
    host: fields.host,
    target: req.target,
    protocol: req.protocol,
    status: answer.status,
    bytes: answer.bytes,
    durationMs,
    ttfbMs: headAt === undefined ? durationMs : headAt - started,
    outcome: answer.outcome,
    upstreamStatus: answer.upstream?.status,
    upstreamMs: answer.upstream?.ms,
    userAgent: fields.userAgent,
    referer: fields.referer,
    phases: answer.phases,
  };
}
