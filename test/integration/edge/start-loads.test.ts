/**
 * What a server process does not load at start: undici's pool code until its first upstream
 * request (edge/undici-parts.ts), and @opentelemetry/api, which prom-client's index loads for
 * exemplars, not at all (src/prom-parts.ts). Each in a process of its own, from dist/ (this one
 * has loaded both already).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = (path: string) => fileURLToPath(new URL(`../../../dist/${path}`, import.meta.url));
const UPSTREAM = dist('edge/upstream.js');
const METRICS = dist('edge/metrics.js');
const built = existsSync(UPSTREAM) && existsSync(METRICS);

/** Runs an ES module script in a new node process; its stdout, parsed as JSON. */
function run(script: string): unknown {
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  expect(out.stderr).toBe('');
  return JSON.parse(out.stdout);
}

describe.skipIf(!built)('modules loaded at start (needs dist/, built by npm test)', () => {
  it('loads the pool code at the first upstream request, which fails as clearly as ever', () => {
    const seen = run(`
      import { createRequire } from 'node:module';
      const { Upstream } = await import(${JSON.stringify(UPSTREAM)});
      const require = createRequire(${JSON.stringify(UPSTREAM)});
      const pool = require.resolve('undici/lib/dispatcher/pool.js');
      const loaded = () => pool in require.cache;
      // Port 9 on loopback: nothing listens, the connection is refused.
      const upstream = new Upstream('http://127.0.0.1:9', { connectMs: 2000, headersMs: 2000, bodyIdleMs: 2000 }, Date.now);
      const atStart = loaded();
      const failed = await upstream.request({ method: 'GET', path: '/a.txt', headers: {} }).catch((err) => err);
      console.log(JSON.stringify({ atStart, afterRequest: loaded(), code: failed.code, status: failed.status }));
      await upstream.destroy();
    `);
    expect(seen).toEqual({ atStart: false, afterRequest: true, code: 'upstream_unreachable', status: 502 });
  });

  it('collects process metrics (CPU among them) without loading @opentelemetry/api', () => {
    const seen = run(`
      import { createRequire } from 'node:module';
      const { createEdgeMetrics } = await import(${JSON.stringify(METRICS)});
      const require = createRequire(createRequire(${JSON.stringify(METRICS)}).resolve('prom-client'));
      const otel = require.resolve('@opentelemetry/api');
      const metrics = createEdgeMetrics({ processMetrics: true, store: () => undefined });
      const text = await metrics.registry.metrics();
      console.log(JSON.stringify({ cpu: /^anycdn_edge_process_cpu_seconds_total \\d/m.test(text), heap: text.includes('anycdn_edge_nodejs_heap_size_used_bytes'), otel: otel in require.cache }));
    `);
    expect(seen).toEqual({ cpu: true, heap: true, otel: false });
  });
});
