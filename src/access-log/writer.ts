/**
 * The access log's buffer: lines are copied into byte chunks on the request path (no I/O there)
 * and written in batches off it, one write at a time, when a chunk is full or the flush interval
 * has passed. Memory is bounded: lines waiting and the batch being written together never exceed
 * `maxBufferBytes`; past that a line is dropped and counted, so a destination that cannot keep up
 * (a stalled pipe, a full disk) costs lines, never a stalled request. `flush()` and `close()`
 * write everything accepted so far (a clean stop loses nothing); `reopen()` switches to a new
 * file between two writes (log rotation).
 */

/** Where batches go (src/access-log/sink.ts): a file, or a standard stream. */
export interface LogSink {
  /** Writes all of the chunks, in order; each holds whole lines. Rejects when the destination fails. */
  write(chunks: readonly Buffer[]): Promise<void>;
  /** Opens the destination again (a rotated file: the new file at the same path). */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export interface AccessLogWriterOptions {
  sink: LogSink;
  /** Bound on lines waiting plus the batch being written, in bytes. */
  maxBufferBytes: number;
  /** Longest a line waits before it is written. */
  flushIntervalMs: number;
  /** Fraction of requests logged, 0..1. */
  sample: number;
  /** Random numbers in [0, 1) for sampling; default Math.random. */
  random?: () => number;
  /** Told of each failed write or reopen (to log it, rate-limited by the caller). */
  onError?: (err: unknown, what: 'write' | 'reopen') => void;
}

export interface AccessLogCounts {
  /** Lines written to the destination. */
  written: number;
  /** Lines dropped because the buffer was full. */
  droppedFull: number;
  /** Lines lost in writes that failed. */
  droppedError: number;
}

/**
 * Lines waiting this many bytes are written without waiting for the flush interval. Large: a
 * write to a file is handed to libuv's thread pool, and that hand-off (waking a pool thread, and
 * the event loop again when it is done) costs tens of µs on a loaded or virtualized host, paid per
 * batch: at 64 KiB it was over 1 µs a line.
 */
const BATCH_BYTES = 512 * 1024;
/** How long `close` waits for the destination to take what is buffered. */
const CLOSE_WAIT_MS = 2_000;

export class AccessLogWriter {
  readonly counts: AccessLogCounts = { written: 0, droppedFull: 0, droppedError: 0 };
  /** Lines waiting: full chunks, then the one being filled (`used` bytes of it). */
  private filled: Buffer[] = [];
  private current: Buffer | undefined;
  private used = 0;
  /** Chunks written and free to fill again (bounded by maxBufferBytes / chunk size). */
  private spare: Buffer[] = [];
  private pendingBytes = 0;
  private pendingLines = 0;
  /** Bytes of the batch being written (0 when none is). */
  private inFlight = 0;
  /** Lines accepted, and lines whose write has ended (written or failed), since the start. */
  private accepted = 0;
  private settled = 0;
  /** The sink loop while it runs: one sink operation at a time (write, reopen, close). */
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Write what waits now, however little (the flush interval passed, or a flush was asked for). */
  private due = false;
  private reopenWaiters: ((reopened: boolean) => void)[] = [];
  private closed = false;
  private readonly batchBytes: number;
  private readonly random: () => number;

  constructor(private readonly options: AccessLogWriterOptions) {
    this.batchBytes = Math.max(1, Math.min(BATCH_BYTES, Math.floor(options.maxBufferBytes / 4)));
    this.random = options.random ?? Math.random;
  }

  /** Whether this request is logged (`sample`); ask before building its line. */
  sampled(): boolean {
    const { sample } = this.options;
    return sample >= 1 || (sample > 0 && this.random() < sample);
  }

  /**
   * Accepts one line (ASCII, ending in `\n`: one byte per character), or drops and counts it when
   * the buffer is full. A line is copied once, into the chunk being filled; a full chunk is a batch.
   */
  write(line: string): void {
    const length = line.length;
    if (this.closed || this.pendingBytes + this.inFlight + length > this.options.maxBufferBytes) {
      this.counts.droppedFull++;
      return;
    }
    let chunk = this.current;
    if (chunk === undefined || this.used + length > chunk.length) {
      if (chunk !== undefined) this.filled.push(chunk.subarray(0, this.used));
      chunk = this.current = length <= this.batchBytes ? (this.spare.pop() ?? Buffer.allocUnsafeSlow(this.batchBytes)) : Buffer.allocUnsafeSlow(length);
      this.used = 0;
    }
    this.used += chunk.write(line, this.used, 'latin1');
    if (this.used === chunk.length) {
      this.filled.push(chunk);
      this.current = undefined;
    }
    this.pendingBytes += length;
    this.pendingLines++;
    this.accepted++;
    if (this.running !== undefined) return;
    if (this.filled.length > 0) this.run();
    else if (this.timer === undefined) this.timer = setTimeout(this.onTimer, this.options.flushIntervalMs);
  }

  /** Resolves when every line accepted before the call is written (or its write failed). */
  async flush(): Promise<void> {
    const target = this.accepted;
    while (this.settled < target) {
      this.due = true;
      this.run();
      await this.running;
    }
  }

  /**
   * Opens the destination again, between two writes: lines accepted before the reopen (the call,
   * or a write under way then) go to the old file (renamed by the rotation: nothing is lost),
   * later ones to the new file. A reopen that fails keeps the old file and is reported; resolves
   * with whether it reopened.
   */
  reopen(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const done = new Promise<boolean>((resolve) => this.reopenWaiters.push(resolve));
    this.due = true;
    this.run();
    return done;
  }

  /**
   * Writes what is buffered, then closes the destination; later lines are dropped and counted. A
   * destination that takes nothing for `waitMs` (a pipe nobody reads) loses what is left, counted
   * as failed writes: a stop does not wait for a reader forever.
   */
  async close(waitMs = CLOSE_WAIT_MS): Promise<void> {
    if (this.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    // Closing the destination ends a write still waiting for it.
    const closing = this.options.sink.close();
    await this.running;
    this.counts.droppedError += this.pendingLines;
    this.settled += this.pendingLines;
    this.takeBatch();
    await closing;
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.due = true;
    this.run();
  };

  /** Starts the sink loop unless it runs. */
  private run(): void {
    if (this.running !== undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      if (!this.closed && this.pendingBytes > 0 && this.timer === undefined) this.timer = setTimeout(this.onTimer, this.options.flushIntervalMs);
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      if (this.reopenWaiters.length > 0) {
        const waiters = this.reopenWaiters.splice(0);
        // What was accepted before the rotation goes to the old file.
        if (this.pendingBytes > 0) await this.writeBatch();
        let reopened = false;
        try {
          await this.options.sink.reopen();
          reopened = true;
        } catch (err) {
          this.options.onError?.(err, 'reopen');
        }
        for (const resolve of waiters) resolve(reopened);
      } else if (this.pendingBytes > 0 && (this.due || this.filled.length > 0)) {
        this.due = false;
        await this.writeBatch();
      } else {
        this.due = false;
        return;
      }
    }
  }

  /** Everything waiting, as chunks to write; the buffer is empty after. */
  private takeBatch(): { chunks: Buffer[]; lines: number; bytes: number } {
    const chunks = this.filled;
    if (this.current !== undefined && this.used > 0) chunks.push(this.current.subarray(0, this.used));
    const batch = { chunks, lines: this.pendingLines, bytes: this.pendingBytes };
    this.filled = [];
    this.current = undefined;
    this.used = 0;
    this.pendingBytes = 0;
    this.pendingLines = 0;
    return batch;
  }

  private async writeBatch(): Promise<void> {
    const { chunks, lines, bytes } = this.takeBatch();
    this.inFlight = bytes;
    try {
      await this.options.sink.write(chunks);
      this.counts.written += lines;
    } catch (err) {
      this.counts.droppedError += lines;
      this.options.onError?.(err, 'write');
    } finally {
      this.inFlight = 0;
      this.settled += lines;
      // The chunks are free again (a bounded number: the buffer's bound over the chunk size).
      const keep = Math.ceil(this.options.maxBufferBytes / this.batchBytes);
      for (const chunk of chunks) if (chunk.buffer.byteLength === this.batchBytes && this.spare.length < keep) this.spare.push(Buffer.from(chunk.buffer, 0, this.batchBytes));
    }
  }
}
