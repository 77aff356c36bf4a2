/**
 * The parts of prom-client anycdn uses, loaded from their own modules. prom-client's index loads
 * its default metrics, whose process CPU module loads @opentelemetry/api (for exemplars, which
 * anycdn does not use): 30-50 ms of CPU on the 2-core reference machine, in every process of a
 * node, before its first answer. Here the metric classes come from their modules and the default
 * metrics from theirs, but for process CPU, whose three counters this module keeps itself, with
 * prom-client's names, help and values. test/unit/prom-parts.test.ts checks these are the index's
 * classes and that the default metrics are the same ones.
 */
import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
export const Counter = require('prom-client/lib/counter') as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge = require('prom-client/lib/gauge') as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;

/** prom-client's default metrics but process CPU (lib/defaultMetrics.js's list, in its order). */
const DEFAULT_METRICS = [
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
  'gc',
] as const;

type DefaultMetric = (registry: Registry, config: PromClient.DefaultMetricsCollectorConfiguration<'text/plain; version=0.0.4; charset=utf-8'>) => void;

/** What prom-client's collectDefaultMetrics registers, in `register`, with names prefixed by `prefix`. */
export function collectDefaultMetrics(config: { register: Registry; prefix: string; eventLoopMonitoringPrecision: number }): void {
  processCpuTotal(config.register, config.prefix);
  for (const name of DEFAULT_METRICS) (require(`prom-client/lib/metrics/${name}`) as DefaultMetric)(config.register, config);
}

/** process_cpu_{user,system,}seconds_total as prom-client counts them: the CPU used since they were registered, read at each scrape. */
function processCpuTotal(registry: Registry, prefix: string): void {
  let last = process.cpuUsage();
  const user = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`,
    help: 'Total user CPU time spent in seconds.',
    registers: [registry],
    // This one's collect sets all three.
    collect() {
      const now = process.cpuUsage();
      const userMicros = now.user - last.user;
      const systemMicros = now.system - last.system;
      last = now;
      user.inc(userMicros / 1e6);
      system.inc(systemMicros / 1e6);
      total.inc((userMicros + systemMicros) / 1e6);
    },
  });
  const system = new Counter({ name: `${prefix}process_cpu_system_seconds_total`, help: 'Total system CPU time spent in seconds.', registers: [registry] });
  const total = new Counter({ name: `${prefix}process_cpu_seconds_total`, help: 'Total user and system CPU time spent in seconds.', registers: [registry] });
}

/** The registry that sums the metrics of a cluster's processes (prom-client's `AggregatorRegistry`). */
export function aggregatorRegistry(): typeof PromClient.AggregatorRegistry {
  return require('prom-client/lib/cluster') as typeof PromClient.AggregatorRegistry;
}
