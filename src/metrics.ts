/**
 * Prometheus metrics through prom-client. Each server builds its own Registry (no global default
 * registry), so two servers in one process (the demo, tests) keep separate counts.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
    }),
  };
}
