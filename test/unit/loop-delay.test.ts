import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LoopDelaySampler, loopDelayValues, registerLoopDelayGauges, type RecordedIntervals } from '../../src/loop-delay.js';
import { createHttpMetrics } from '../../src/metrics.js';

const MS = 1e6;

/** Recorded intervals as IntervalHistogram reports them, percentiles from a sorted list. */
function recorded(intervalsNs: number[]): RecordedIntervals {
  const sorted = [...intervalsNs].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return {
    count: sorted.length,
    min: sorted.length === 0 ? 9223372036854776000 : sorted[0]!,
    max: sorted.length === 0 ? 0 : sorted.at(-1)!,
    mean: sorted.length === 0 ? NaN : mean,
    stddev: sorted.length === 0 ? NaN : Math.sqrt(sorted.reduce((s, v) => s + (v - mean) ** 2, 0) / sorted.length),
    percentile: (p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0,
  };
}

function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('loopDelayValues', () => {
  it.each([
    {
      name: 'nothing recorded: 0, and max from the check alone',
      intervals: [],
      late: 0,
      want: { min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 },
    },
    { name: 'nothing recorded, the check 250 ms late', intervals: [], late: 250 * MS, want: { min: 0, max: 0.25, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 } },
    {
      name: 'ticks on time: 0 past due',
      intervals: [10 * MS, 10 * MS, 10 * MS, 10 * MS],
      late: 0,
      want: { min: 0, max: 0, mean: 0, stddev: 0, p50: 0, p90: 0, p99: 0 },
    },
    {
      name: 'one tick 40 ms late of four',
      intervals: [10 * MS, 10 * MS, 10 * MS, 50 * MS],
      late: 0,
      want: { min: 0, max: 0.04, mean: 0.01, stddev: Math.sqrt(3) * 0.01, p50: 0, p90: 0.04, p99: 0.04 },
    },
    { name: 'a tick early by a timer slack is 0, not negative', intervals: [9.5 * MS, 12 * MS], late: 0, want: { min: 0, max: 0.002, mean: 0.00075, stddev: 0.00125, p50: 0, p90: 0.002, p99: 0.002 } },
    { name: 'the check later than any tick sets max', intervals: [10 * MS, 15 * MS], late: 30 * MS, want: { min: 0, max: 0.03, mean: 0.0025, stddev: 0.0025, p50: 0, p90: 0.005, p99: 0.005 } },
  ])('$name', ({ intervals, late, want }) => {
    const got = loopDelayValues(recorded(intervals), 10 * MS, late);
    for (const [stat, value] of Object.entries(want)) expect(got[stat as keyof typeof got], stat).toBeCloseTo(value, 9);
  });
});

describe('LoopDelaySampler', () => {
  let sampler: LoopDelaySampler | undefined;
  afterEach(() => sampler?.stop());

  it('samples only while the loop is busy, and its values show a stall of the loop', async () => {
    // Half the loop's time at work counts as busy here: a test runner's own work stays below it.
    const busyFraction = 0.5;
    sampler = new LoopDelaySampler({ resolutionMs: 10, checkMs: 60_000, busyFraction });
    expect(sampler.active).toBe(false);
    // Idle: no work, the sampler stays off, nothing recorded.
    sampler.check(0, busyFraction);
    await new Promise((r) => setTimeout(r, 100));
    sampler.check(0, busyFraction);
    expect(sampler.active).toBe(false);
    sampler.take();
    await new Promise((r) => setTimeout(r, 50));
    expect(sampler.take()).toMatchObject({ min: 0, mean: 0, p50: 0, p99: 0 });
    // Busy: the loop did nothing but work since the last look.
    sampler.check(0, busyFraction);
    spin(30);
    sampler.check(0, busyFraction);
    expect(sampler.active).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    spin(80);
    await new Promise((r) => setTimeout(r, 30));
    const busy = sampler.take();
    // The 80 ms stall delays one 10 ms tick by 70 to 80 ms.
    expect(busy.max).toBeGreaterThanOrEqual(0.06);
    expect(busy.max).toBeLessThan(1);
    expect(busy.min).toBeLessThanOrEqual(busy.p50);
    expect(busy.p50).toBeLessThanOrEqual(busy.max);
    // Idle again: off.
    sampler.check(0, busyFraction);
    await new Promise((r) => setTimeout(r, 100));
    sampler.check(0, busyFraction);
    expect(sampler.active).toBe(false);
  });

  it('checks less and less often while the loop stays idle, and every checkMs again once it is busy', async () => {
    sampler = new LoopDelaySampler({ checkMs: 20, idleCheckMaxMs: 80, busyFraction: 0.5 });
    const checks = vi.spyOn(sampler, 'check');
    const waitsSoFar = () => checks.mock.calls.map(([waitMs]) => waitMs);
    const until = async (n: number) => {
      for (let waited = 0; checks.mock.calls.length < n && waited < 3_000; waited += 5) await new Promise((r) => setTimeout(r, 5));
    };
    await until(4);
    expect(waitsSoFar()).toEqual([20, 40, 80, 80]);
    expect(sampler.active).toBe(false);
    // Busy: the loop works through the next check's wait; that check turns the sampler on.
    spin(120);
    await until(6);
    expect(waitsSoFar().slice(4, 6)).toEqual([80, 20]);
    expect(checks.mock.calls.length).toBeGreaterThanOrEqual(6);
  });

  it('a stall while the sampler is off shows in max through the check’s lateness', () => {
    sampler = new LoopDelaySampler({ checkMs: 60_000 });
    sampler.check(0, 2); // a fraction no loop reaches: stays off, and the check's clock starts now
    spin(40);
    sampler.check(0, 2);
    expect(sampler.active).toBe(false);
    const values = sampler.take();
    expect(values.max).toBeGreaterThanOrEqual(0.04);
    expect(values.p99).toBe(0);
    // Taken: the next period starts from nothing.
    expect(sampler.take().max).toBe(0);
  });
});

describe('the gauges in a registry', () => {
  let sampler: LoopDelaySampler | undefined;
  afterEach(() => sampler?.stop());
  const stats = ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99'];

  it('replace prom-client’s: each name once, prom-client’s lag gauge kept', async () => {
    const metrics = createHttpMetrics({ prefix: 't_' });
    const text = await metrics.registry.metrics();
    for (const stat of stats) {
      const lines = text.split('\n').filter((l) => l.startsWith(`t_nodejs_eventloop_lag_${stat}_seconds `));
      expect(lines, stat).toHaveLength(1);
      expect(text).toContain(`# HELP t_nodejs_eventloop_lag_${stat}_seconds `);
    }
    expect(text).toContain('Seconds past due, sampled every 10 ms while the event loop is busy (0 when idle).');
    expect(text.split('\n').filter((l) => l.startsWith('t_nodejs_eventloop_lag_seconds '))).toHaveLength(1);
    expect(text).toContain('t_process_cpu_user_seconds_total ');
  });

  it('are read once per scrape, from one period', async () => {
    const registry = new Registry();
    sampler = registerLoopDelayGauges(registry, 'r_', { checkMs: 60_000 });
    sampler.check(0, 2);
    spin(30);
    sampler.check(0, 2);
    const first = await registry.getMetricsAsJSON();
    const max = first.find((m) => m.name === 'r_nodejs_eventloop_lag_max_seconds')!.values[0]!.value;
    expect(max).toBeGreaterThanOrEqual(0.03);
    const again = await registry.getMetricsAsJSON();
    expect(again.find((m) => m.name === 'r_nodejs_eventloop_lag_max_seconds')!.values[0]!.value).toBe(0);
  });
});
