/**
 * When a disk store's periodic flush runs: every `periodMs` while it finds work, less and less
 * often while it finds none (the wait doubles after each run that had nothing to do, up to
 * `idleMaxMs`), so an idle store is hardly woken. `soon()` (this process wrote) brings the next
 * run back within `periodMs`, which is what bounds how long a write waits for its sync. The next
 * run is timed from the end of the previous one (runs never overlap); the timer is unref'd (it
 * never keeps a process alive).
 */
export class FlushSchedule {
  private timer: NodeJS.Timeout | undefined;
  private waitMs: number;
  /** When the pending run is due (performance.now()); undefined while one runs. */
  private dueAt: number | undefined;
  /** soon() was called since the current run began. */
  private wrote = false;
  private stopped = false;

  /** `run` resolves whether it found work (a rejection counts as work: it is tried again soon). */
  constructor(
    private readonly periodMs: number,
    private readonly idleMaxMs: number,
    private readonly run: () => Promise<boolean>,
  ) {
    if (!(periodMs > 0 && idleMaxMs >= periodMs)) throw new RangeError(`need 0 < periodMs <= idleMaxMs, got ${periodMs} and ${idleMaxMs}`);
    this.waitMs = periodMs;
    this.schedule();
  }

  /** The wait before the next run, as it stands. */
  get nextWaitMs(): number {
    return this.waitMs;
  }

  /** Something was written: the next run is within `periodMs` from now. */
  soon(): void {
    this.wrote = true;
    this.waitMs = this.periodMs;
    if (this.dueAt === undefined || this.dueAt - performance.now() <= this.periodMs || this.stopped) return;
    clearTimeout(this.timer);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    this.dueAt = performance.now() + this.waitMs;
    this.timer = setTimeout(() => {
      this.dueAt = undefined;
      this.wrote = false;
      void this.run().then(
        (worked) => this.ran(worked),
        () => this.ran(true),
      );
    }, this.waitMs);
    this.timer.unref();
  }

  private ran(worked: boolean): void {
    // What was written during the run is flushed within periodMs too.
    this.waitMs = worked || this.wrote ? this.periodMs : Math.min(2 * this.waitMs, this.idleMaxMs);
    if (!this.stopped) this.schedule();
  }
}
