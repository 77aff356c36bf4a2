/**
 * Prometheus metrics through prom-client. Each server builds its own Registry (no global default
 * registry), so two servers in one process (the demo, tests) keep separate counts.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics, type LabelValues } from 'prom-client';

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

export interface HttpMetrics {
  registry: Registry;
  requests: Counter<'method' | 'status' | 'outcome'>;
  duration: Histogram<'method' | 'outcome'>;
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
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: options.prefix });
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
    duration: new Histogram({
      name: `${p}http_request_duration_seconds`,
      help: 'Time to the end of the response',
      labelNames: ['method', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    bytesSent: new Counter({
      name: `${p}http_response_bytes_total`,
      help: 'Response body bytes by outcome',
      labelNames: ['outcome'],
      registers: [registry],
      collect: flushTallies,
    }),
  };
}
