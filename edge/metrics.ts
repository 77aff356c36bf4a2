/**
 * The edge's Prometheus metrics: request outcomes (the same words as Cache-Status and the logs),
 * coalesced waiters, stale answers, upstream results and latency by phase, bytes by where they
 * came from, and the cache's size per tier.
 */
import { Counter, Gauge } from '../src/prom-parts.js';
import type { BlobStore } from '../src/blob/blob-store.js';
import { createHttpMetrics, flushTallies, RequestHistogram, tallied, type HttpMetrics } from '../src/metrics.js';
import type { UpstreamObserver } from './upstream.js';

export interface EdgeMetrics extends HttpMetrics {
  coalesced: Counter;
  staleServed: Counter<'reason'>;
  upstreamResults: Counter<'outcome' | 'phase'>;
  upstreamLatency: RequestHistogram<'phase'>;
  bytesBySource: Counter<'source'>;
  upstreamObserver: UpstreamObserver;
}

export function createEdgeMetrics(options: { processMetrics?: boolean; store: () => BlobStore | undefined }): EdgeMetrics {
  const base = createHttpMetrics({ prefix: 'anycdn_edge_', processMetrics: options.processMetrics });
  const registers = [base.registry];
  const upstreamResults = new Counter({
    name: 'anycdn_edge_upstream_requests_total',
    help: 'Upstream requests by outcome (ok, error, timeout) and the phase reached or failed (connect, headers, body)',
    labelNames: ['outcome', 'phase'],
    registers,
    collect: flushTallies,
  });
  // Observed once per upstream request: a child per label set, taken once (see RequestHistogram).
  const upstreamLatency = new RequestHistogram<'phase'>(
    'anycdn_edge_upstream_latency_seconds',
    'Time to upstream response headers, or to the failure',
    ['phase'],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    base.registry,
  );
  const resultChildren = new Map<string, { add(): void; observe(seconds: number): void }>();
  const resultChild = (outcome: string, phase: string): { add(): void; observe(seconds: number): void } => {
    const id = `${outcome} ${phase}`;
    let child = resultChildren.get(id);
    if (child === undefined) {
      const count = tallied(upstreamResults, { outcome, phase });
      const latency = upstreamLatency.labels(phase);
      child = { add: () => count.add(), observe: (seconds) => latency.observe(seconds) };
      resultChildren.set(id, child);
    }
    return child;
  };
  const storeGauge = (name: string, help: string, read: (s: ReturnType<BlobStore['stats']>) => number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const store = options.store();
        if (store !== undefined) this.set(read(store.stats()));
      },
    });
  };
  storeGauge('anycdn_edge_cache_objects', 'Objects in the cache (disk tier)', (s) => s.entries);
  storeGauge('anycdn_edge_cache_bytes', 'Bytes in the cache (disk tier)', (s) => s.bytes);
  storeGauge('anycdn_edge_cache_max_bytes', 'Cache budget (disk tier)', (s) => s.maxBytes);
  storeGauge('anycdn_edge_cache_evictions', 'Objects evicted to make room, since start', (s) => s.evictions);
  storeGauge('anycdn_edge_cache_store_errors', 'Writes that failed on I/O and were dropped, since start', (s) => s.storeErrors);
  storeGauge('anycdn_edge_memory_cache_bytes', 'Bytes in the memory tier', (s) => (s as { memory?: { bytes: number } }).memory?.bytes ?? 0);
  return {
    ...base,
    coalesced: new Counter({ name: 'anycdn_edge_coalesced_waiters_total', help: 'Requests that waited on another request’s upstream fetch', registers }),
    staleServed: new Counter({ name: 'anycdn_edge_stale_served_total', help: 'Stale answers by reason', labelNames: ['reason'], registers }),
    upstreamResults,
    upstreamLatency,
    bytesBySource: new Counter({ name: 'anycdn_edge_bytes_total', help: 'Body bytes sent to clients by source (memory, disk, upstream)', labelNames: ['source'], registers, collect: flushTallies }),
    upstreamObserver: {
      onResult(outcome, phase, seconds) {
        // Outcomes and phases are a fixed vocabulary (three of each): the table stays small.
        const child = resultChild(outcome, phase);
        child.add();
        child.observe(seconds);
      },
    },
  };
}
