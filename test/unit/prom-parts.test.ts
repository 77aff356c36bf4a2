/**
 * src/prom-parts.ts loads prom-client's classes from their modules, and its default metrics but
 * process CPU, which it counts itself: the classes must be the ones the index exports, and the
 * default metrics the same as prom-client's own.
 */
import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { INERT_RESOLUTION_MS } from '../../src/loop-delay.js';
import { Counter, Gauge, Histogram, Registry, aggregatorRegistry, collectDefaultMetrics } from '../../src/prom-parts.js';

/** Each metric's name, help, type and aggregator, by name. */
async function described(registry: promClient.Registry): Promise<string[]> {
  return (await registry.getMetricsAsJSON()).map((m) => `${m.name} | ${m.help} | ${m.type} | ${m.aggregator}`).sort();
}

describe('prom-client parts', () => {
  it('are the classes prom-client exports', () => {
    expect(Registry).toBe(promClient.Registry);
    expect(Counter).toBe(promClient.Counter);
    expect(Gauge).toBe(promClient.Gauge);
    expect(Histogram).toBe(promClient.Histogram);
    expect(aggregatorRegistry()).toBe(promClient.AggregatorRegistry);
  });

  it('register the default metrics prom-client does, with the same names, help, types and aggregators', async () => {
    const theirs = new promClient.Registry();
    promClient.collectDefaultMetrics({ register: theirs, prefix: 'x_', eventLoopMonitoringPrecision: INERT_RESOLUTION_MS });
    const ours = new Registry();
    collectDefaultMetrics({ register: ours, prefix: 'x_', eventLoopMonitoringPrecision: INERT_RESOLUTION_MS });
    const list = await described(ours);
    expect(list).toEqual(await described(theirs));
    expect(list.filter((m) => m.startsWith('x_process_cpu_'))).toHaveLength(3);
  });

  it('count the CPU used since they were registered, user and system adding up to the total', async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry, prefix: 'x_', eventLoopMonitoringPrecision: INERT_RESOLUTION_MS });
    const before = process.cpuUsage();
    for (const until = performance.now() + 60; performance.now() < until; ) Math.sqrt(Math.random());
    const used = process.cpuUsage(before);
    const value = async (name: string) => (await registry.getSingleMetric(`x_process_cpu_${name}`)!.get()).values[0]!.value;
    // Read in prom-client's order: the user counter's collect sets all three.
    const [user, system, total] = [await value('user_seconds_total'), await value('system_seconds_total'), await value('seconds_total')];
    expect(total).toBeCloseTo(user + system, 9);
    expect(total).toBeGreaterThanOrEqual((used.user + used.system) / 1e6);
    expect(total).toBeLessThan(1);
  });
});
