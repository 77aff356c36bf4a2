/**
 * Prometheus metrics through prom-client. Each server builds its own Registry (no global default
 * registry), so two servers in one process (the demo, tests) keep separate counts.
 */
import type { LabelValues, MetricValueWithName } from 'prom-client';
import { Counter, Registry, collectDefaultMetrics, type Histogram } from './prom-parts.js';
import { INERT_RESOLUTION_MS, registerLoopDelayGauges } from './loop-delay.js';

interface Tally {
  labels: LabelValues<string>;
  pending: number;
}

const tallies = new WeakMap<Counter<string>, Tally[]>();

/**
 * A counter child for a hot path: `add` is one addition, and what was added reaches the counter
 * when it is read (its `collect` must be `flushTallies`). prom-client hashes the label set on
 * every `inc`, which costs more than a cache hit's own lookup.
 */
export function tallied<T extends string>(counter: Counter<T>, labels: LabelValues<T>): { add(n?: number): void } {
  const tally: Tally = { labels, pending: 0 };
  const list = tallies.get(counter as Counter<string>) ?? [];
  list.push(tally);
  tallies.set(counter as Counter<string>, list);
  return {
    add(n = 1) {
      tally.pending += n;
    },
  };
}

/** The `collect` of a counter fed by `tallied`: adds what was tallied since the last read. */
export function flushTallies(this: Counter<string>): void {
  for (const tally of tallies.get(this) ?? []) {
    if (tally.pending === 0) continue;
    this.inc(tally.labels, tally.pending);
    tally.pending = 0;
  }
}

interface Series {
  labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram for a hot path, exposed through prom-client's registry like its own Histogram
 * (same text and JSON output, summed across cluster processes). prom-client's validates and hashes
 * the label set on every `observe`, a tenth of a cache hit's cost (measured); a child taken once
 * with `labels()` here observes with a bucket search and three additions.
 */
export class RequestHistogram<T extends string> {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly T[],
    private readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Histogram<T>);
  }

  /** The series of one label set, in `labelNames` order; observe on it as often as you like. */
  labels(...values: string[]): { observe(seconds: number): void } {
    const id = values.join('\u0000');
    let series = this.series.get(id);
    if (series === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, i) => (labels[name] = values[i] ?? ''));
      series = { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      this.series.set(id, series);
    }
    const { buckets } = this;
    const s = series;
    return {
      observe(value) {
        let i = 0;
        while (i < buckets.length && value > buckets[i]!) i++;
        s.counts[i]! += 1;
        s.sum += value;
        s.count += 1;
      },
    };
  }

  observe(labels: Record<T, string>, value: number): void {
    this.labels(...this.labelNames.map((name) => labels[name])).observe(value);
  }

  /** Back to no observations; children taken before keep working. */
  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }

  /** What prom-client's metrics answer (JSON: a cluster sums it across processes). */
  async get(): Promise<HistogramData<MetricValueWithName<string>>> {
    const data = await this.getForPromString();
    return { ...data, values: data.values.map(({ labels, sharedLabels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } })) };
  }

  /** What the registry formats as text: label sets as prom-client's Histogram gives them, so the text is the same. */
  async getForPromString(): Promise<HistogramData<SharedSample>> {
    const values: SharedSample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      if (s.count === 0) continue;
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ labels: { le }, sharedLabels: s.labels, value: cumulative, metricName: bucket });
      });
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucket });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

interface HistogramData<V> {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: V[];
}

/** A sample whose own labels (`le`) the registry writes before the default labels, and `sharedLabels` after. */
type SharedSample = MetricValueWithName<string> & { sharedLabels: Record<string, string> };

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'method' | 'status' | 'outcome'>;
  duration: RequestHistogram<'method' | 'outcome'>;
  bytesSent: Counter<'outcome'>;
}

export interface MetricsOptions {
  /** Prefix of every metric name, e.g. `anycdn_origin_`. */
  prefix: string;
  /** Collect process metrics (memory, CPU, event loop lag); default true. Off in tests with many servers. */
  processMetrics?: boolean;
}

export function createHttpMetrics(options: MetricsOptions): HttpMetrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) {
    // prom-client's event loop sampler ticks 100 times a second for ever: made inert, its gauges replaced (src/loop-delay.ts).
    collectDefaultMetrics({ register: registry, prefix: options.prefix, eventLoopMonitoringPrecision: INERT_RESOLUTION_MS });
    registerLoopDelayGauges(registry, options.prefix);
  }
  const p = options.prefix;
  return {
    registry,
    requests: new Counter({
      name: `${p}http_requests_total`,
      help: 'HTTP requests by method, status and outcome',
      labelNames: ['method', 'status', 'outcome'],
      registers: [registry],
      collect: flushTallies,
    }),
    duration: new RequestHistogram(`${p}http_request_duration_seconds`, 'Time to the end of the response', ['method', 'outcome'], [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registry),
    bytesSent: new Counter({
      name: `${p}http_response_bytes_total`,
      help: 'Response body bytes by outcome',
      labelNames: ['outcome'],
      registers: [registry],
      collect: flushTallies,
    }),
  };
}
