/**
 * A repeating check that slows down while it finds nothing changing: its period doubles after each
 * run that reports no change, up to `maxMs`, and drops back to `minMs` after one that does. A busy
 * store is looked at often; an idle one is hardly woken. The timer is unref'd (it never keeps a
 * process alive) and the next run is timed from the end of the previous one (runs never overlap).
 */
export class BackoffCheck {
  private timer: NodeJS.Timeout | undefined;
  private periodMs: number;
  private stopped = false;

  /** `run` resolves true when it saw a change (a rejection counts as none). */
  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly run: () => Promise<boolean>,
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
        (changed) => this.ran(changed),
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
