/**
 * A repeating check that slows down while what it sees stays the same: its period doubles after
 * each run that resolves the value of the previous run, up to `maxMs`, and drops back to `minMs`
 * after one that resolves another. A busy store is looked at often; an idle one is hardly woken.
 * The timer is unref'd (it never keeps a process alive) and the next run is timed from the end
 * of the previous one (runs never overlap).
 */
export class BackoffCheck {
  private timer: NodeJS.Timeout | undefined;
  private periodMs: number;
  private last: unknown;
  private stopped = false;

  /** `run` resolves what it saw (compared with ===; a rejection counts as the same). */
  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly run: () => Promise<unknown>,
  ) {
    if (!(minMs > 0 && maxMs >= minMs)) throw new RangeError(`need 0 < minMs <= maxMs, got ${minMs} and ${maxMs}`);
    this.periodMs = minMs;
    this.schedule();
  }

  /** The wait before the next run. */
  get nextMs(): number {
    return this.periodMs;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.run().then(
        (seen) => {
          const changed = seen !== this.last;
          this.last = seen;
          this.ran(changed);
        },
        () => this.ran(false),
      );
    }, this.periodMs);
    this.timer.unref();
  }

  private ran(changed: boolean): void {
    this.periodMs = changed ? this.minMs : Math.min(2 * this.periodMs, this.maxMs);
    if (!this.stopped) this.schedule();
  }
}
