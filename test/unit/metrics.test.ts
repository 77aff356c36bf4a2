import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { flushTallies, RequestHistogram, tallied } from '../../src/metrics.js';

async function value(registry: Registry, labels: string): Promise<string | undefined> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(`t_total{${labels}}`));
  return line?.split(' ').pop();
}

describe('tallied counters', () => {
  it('add to their counter when it is read, once, per label set', async () => {
    const registry = new Registry();
    const counter = new Counter({ name: 't_total', help: 'test', labelNames: ['outcome'], registers: [registry], collect: flushTallies });
    const hit = tallied(counter, { outcome: 'hit' });
    const miss = tallied(counter, { outcome: 'miss' });
    hit.add();
    hit.add(4);
    miss.add();
    counter.inc({ outcome: 'hit' }, 10); // direct increments still count
    expect(await value(registry, 'outcome="hit"')).toBe('15');
    expect(await value(registry, 'outcome="miss"')).toBe('1');
    // Read again without new adds: nothing is added twice.
    expect(await value(registry, 'outcome="hit"')).toBe('15');
    hit.add(2);
    expect(await value(registry, 'outcome="hit"')).toBe('17');
    expect((await counter.get()).values.find((v) => v.labels['outcome'] === 'miss')?.value).toBe(1);
  });
});

describe('RequestHistogram', () => {
  const buckets = [0.001, 0.01, 0.1];
  const samples: [string, string, number][] = [
    ['GET', 'hit', 0.0004],
    ['GET', 'hit', 0.001],
    ['GET', 'hit', 0.05],
    ['GET', 'miss', 0.3],
    ['HEAD', 'hit', 0.002],
  ];

  it('writes what prom-client’s Histogram writes for the same observations, default labels included', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    for (const r of [ours, theirs]) r.setDefaultLabels({ tier: 'worker' });
    const mine = new RequestHistogram('d_seconds', 'test', ['method', 'outcome'], buckets, ours);
    const reference = new Histogram({ name: 'd_seconds', help: 'test', labelNames: ['method', 'outcome'], buckets, registers: [theirs] });
    const hit = mine.labels('GET', 'hit');
    for (const [method, outcome, v] of samples) {
      if (method === 'GET' && outcome === 'hit') hit.observe(v);
      else mine.observe({ method, outcome }, v);
      reference.observe({ method, outcome }, v);
    }
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    expect(text).toContain('d_seconds_bucket{le="0.001",tier="worker",method="GET",outcome="hit"} 2');
    expect(text).toContain('d_seconds_count{tier="worker",method="GET",outcome="hit"} 3');
  });

  it('sums across processes like prom-client’s own (a cluster’s /_cdn/metrics)', async () => {
    const json = async (own: boolean): Promise<Awaited<ReturnType<Registry['getMetricsAsJSON']>>> => {
      const r = new Registry();
      const h = own
        ? new RequestHistogram('d_seconds', 'test', ['method', 'outcome'], buckets, r)
        : new Histogram({ name: 'd_seconds', help: 'test', labelNames: ['method', 'outcome'], buckets, registers: [r] });
      for (const [method, outcome, v] of samples) h.observe({ method, outcome }, v);
      return r.getMetricsAsJSON();
    };
    const text = await AggregatorRegistry.aggregate([await json(true), await json(true)]).metrics();
    expect(text).toBe(await AggregatorRegistry.aggregate([await json(false), await json(false)]).metrics());
    expect(text).toContain('d_seconds_bucket{le="0.1",method="GET",outcome="hit"} 6');
  });

  it('forgets everything on reset, and a child taken before still counts', async () => {
    const r = new Registry();
    const h = new RequestHistogram('d_seconds', 'test', ['method', 'outcome'], buckets, r);
    const child = h.labels('GET', 'hit');
    child.observe(1);
    h.reset();
    expect(await r.metrics()).not.toContain('d_seconds_count');
    child.observe(0.005);
    expect(await r.metrics()).toContain('d_seconds_count{method="GET",outcome="hit"} 1');
  });
});
