/**
 * Event loop delay gauges that cost nothing while the loop is idle. They keep the names of
 * prom-client's default metrics (`nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds`)
 * and replace them in a registry.
 *
 * prom-client samples with `monitorEventLoopDelay` at a 10 ms resolution for the life of the
 * process: a timer 100 times a second, about 0.65% of a core in an idle process (measured), in
 * each process of a node. Here the 10 ms sampler runs only while the loop is in use: a check
 * compares the loop's utilisation (`performance.eventLoopUtilization`) since the last one with
 * `busyFraction` and turns the sampler on or off. It runs every second while the loop is busy, and
 * half as often after each check that finds it idle, down to once in 8 s: a wake-up a second is
 * itself most of what an idle process spends. An idle loop has nothing to delay; a loop blocked
 * while the sampler is off still shows in `max`, through the check's own lateness.
 *
 * The values are the delay past the sampler's due time (what a callback due now waits), so 0 on
 * a loop with nothing to do; prom-client's include the resolution (10 ms at idle).
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';
import { Gauge, type Registry } from './prom-parts.js';

/** The seven gauges, by suffix, as prom-client names them, with how a cluster combines them. */
const GAUGES = [
  ['min', 'The minimum recorded event loop delay.', 'min'],
  ['max', 'The maximum recorded event loop delay.', 'max'],
  ['mean', 'The mean of the recorded event loop delays.', 'average'],
  ['stddev', 'The standard deviation of the recorded event loop delays.', 'average'],
  ['p50', 'The 50th percentile of the recorded event loop delays.', 'average'],
  ['p90', 'The 90th percentile of the recorded event loop delays.', 'average'],
  ['p99', 'The 99th percentile of the recorded event loop delays.', 'average'],
] as const;

export type LoopDelayStat = (typeof GAUGES)[number][0];

/**
 * A resolution for prom-client's own sampler that makes it inert (one tick in 24 days): its
 * gauges are replaced by these, and `collectDefaultMetrics` has no switch to leave them out.
 */
export const INERT_RESOLUTION_MS = 2 ** 31 - 1;

export interface LoopDelayOptions {
  /** Sampling period while the loop is busy. Default 10 ms, prom-client's: fine enough to see a 10 ms stall. */
  resolutionMs?: number;
  /** How often the loop's utilisation is looked at while it is busy. Default 1000 ms: a busy loop is sampled within a second. */
  checkMs?: number;
  /**
   * The longest wait between checks while the loop stays idle (the wait doubles from checkMs).
   * Default 8 × checkMs: a loop that turns busy after a long idle is sampled within 8 s.
   */
  idleCheckMaxMs?: number;
  /**
   * Utilisation over one check from which the sampler runs. Default 0.05 (50 ms of a second not
   * waiting for I/O): utilisation is wall time, so on a loaded machine an idle process's periodic
   * work, preempted, can take 1% of a second; a loop with less to do has little to delay.
   */
  busyFraction?: number;
}

/** What a sampler recorded (nanoseconds between its ticks), as `IntervalHistogram` reports it. */
export interface RecordedIntervals {
  count: number;
  min: number;
  max: number;
  mean: number;
  stddev: number;
  percentile(p: number): number;
}

/**
 * The gauges' values in seconds: each recorded interval less the resolution (the delay past the
 * due time, never below 0). `lateMaxNs`: the largest delay seen otherwise (the check's). With
 * nothing recorded, every value is 0 but max, which is `lateMaxNs`.
 */
export function loopDelayValues(recorded: RecordedIntervals, resolutionNs: number, lateMaxNs: number): Record<LoopDelayStat, number> {
  const past = (ns: number): number => Math.max(0, ns - resolutionNs) / 1e9;
  if (recorded.count === 0) return { min: 0, max: Math.max(0, lateMaxNs) / 1e9, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 };
  return {
    min: past(recorded.min),
    max: Math.max(past(recorded.max), Math.max(0, lateMaxNs) / 1e9),
    mean: past(recorded.mean),
    stddev: recorded.stddev / 1e9,
    p50: past(recorded.percentile(50)),
    p90: past(recorded.percentile(90)),
    p99: past(recorded.percentile(99)),
  };
}

/** Samples the loop's delay while it is busy; read and restarted by `take`. */
export class LoopDelaySampler {
  readonly resolutionMs: number;
  private readonly histogram: IntervalHistogram;
  private sampling = false;
  private lateMaxNs = 0;
  private checkedAt = performance.now();
  private utilization: EventLoopUtilization = performance.eventLoopUtilization();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly checkMs: number;
  private readonly idleCheckMaxMs: number;
  private readonly busyFraction: number;

  constructor(options: LoopDelayOptions = {}) {
    this.resolutionMs = options.resolutionMs ?? 10;
    this.checkMs = options.checkMs ?? 1000;
    this.idleCheckMaxMs = Math.max(this.checkMs, options.idleCheckMaxMs ?? 8 * this.checkMs);
    this.busyFraction = options.busyFraction ?? 0.05;
    this.histogram = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.scheduleCheck(this.checkMs);
  }

  /** The next check in `waitMs`; the one after it in checkMs if the loop is busy, else twice `waitMs` (at most idleCheckMaxMs). */
  private scheduleCheck(waitMs: number): void {
    if (this.stopped) return;
    // Unref'd: metrics never keep a process alive.
    this.timer = setTimeout(() => {
      this.check(waitMs, this.busyFraction);
      this.scheduleCheck(this.sampling ? this.checkMs : Math.min(2 * waitMs, this.idleCheckMaxMs));
    }, waitMs).unref();
  }

  /** Whether the fine sampler runs now. */
  get active(): boolean {
    return this.sampling;
  }

  /** One look at the loop, `checkMs` after the last (the timer's work; public for tests). */
  check(checkMs: number, busyFraction: number): void {
    const now = performance.now();
    this.lateMaxNs = Math.max(this.lateMaxNs, (now - this.checkedAt - checkMs) * 1e6);
    this.checkedAt = now;
    const used = performance.eventLoopUtilization(this.utilization).utilization;
    this.utilization = performance.eventLoopUtilization();
    const busy = used >= busyFraction;
    if (busy === this.sampling) return;
    this.sampling = busy;
    // Disabling keeps what was recorded until the next take().
    if (busy) this.histogram.enable();
    else this.histogram.disable();
  }

  /** The values since the last take, in seconds; starts a new period. */
  take(): Record<LoopDelayStat, number> {
    const values = loopDelayValues(this.histogram, this.resolutionMs * 1e6, this.lateMaxNs);
    this.histogram.reset();
    this.lateMaxNs = 0;
    return values;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.histogram.disable();
    this.sampling = false;
  }
}

/**
 * Puts this module's gauges in `registry` in place of prom-client's (named `prefix` +
 * `nodejs_eventloop_lag_<stat>_seconds`), fed by one sampler read at each scrape.
 */
export function registerLoopDelayGauges(registry: Registry, prefix: string, options: LoopDelayOptions = {}): LoopDelaySampler {
  const sampler = new LoopDelaySampler(options);
  let taken: Record<LoopDelayStat, number> | undefined;
  for (const [stat, help, aggregator] of GAUGES) {
    const name = `${prefix}nodejs_eventloop_lag_${stat}_seconds`;
    registry.removeSingleMetric(name);
    new Gauge({
      name,
      help: `${help} Seconds past due, sampled every ${sampler.resolutionMs} ms while the event loop is busy (0 when idle).`,
      registers: [registry],
      aggregator,
      collect() {
        // The first gauge read in a scrape takes the period; the others read the same values.
        if (stat === 'min') taken = sampler.take();
        this.set((taken ?? sampler.take())[stat]);
      },
    });
  }
  return sampler;
}
