import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { flushTallies, tallied } from '../../src/metrics.js';

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
