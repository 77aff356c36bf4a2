/**
 * The edge's HTTP application: health (503 while draining), metrics, and every other path through
 * the cache pipeline. Built from its dependencies and doing no I/O of its own; edge/server.ts
 * binds it to a port, opens the cache and handles draining.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Hono } from 'hono';
import { nodeRequestHeaders } from '../src/http/request-headers.js';
import { logRequest, type Logger } from '../src/log.js';
import type { EdgeConfig } from './config.js';
import type { EdgeMetrics } from './metrics.js';
import type { EdgePipeline } from './pipeline.js';

export interface EdgeAppDeps {
  config: EdgeConfig;
  pipeline: EdgePipeline;
  metrics: EdgeMetrics;
  logger: Logger;
  /** True while draining: health answers 503 and responses carry `Connection: close`. */
  isDraining: () => boolean;
}

type Bindings = {
  incoming?: { headers?: IncomingHttpHeaders; socket?: { remoteAddress?: string } };
};

export function createEdgeApp(deps: EdgeAppDeps): Hono<{ Bindings: Bindings }> {
  const app = new Hono<{ Bindings: Bindings }>();
  const servedBy = `${deps.config.pop}/${deps.config.node}`;

  app.get('/_cdn/healthz', (c) => {
    const draining = deps.isDraining();
    return c.json({ status: draining ? 'draining' : 'ok', pop: deps.config.pop, node: deps.config.node }, draining ? 503 : 200, {
      'cache-control': 'no-store',
      'x-served-by': servedBy,
    });
  });
  app.get('/_cdn/metrics', async (c) => c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType }));
  app.all('/_cdn/*', (c) => c.json({ error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }, 404, { 'x-served-by': servedBy }));

  // prom-client resolves label objects on every call; keep the child metrics per label set.
  const children = new Map<string, { observe(seconds: number, bytes: number): void }>();
  const counters = (method: string, status: number, outcome: string) => {
    const id = `${method} ${status} ${outcome}`;
    let child = children.get(id);
    if (child === undefined) {
      const requests = deps.metrics.requests.labels(method, String(status), outcome);
      const duration = deps.metrics.duration.labels(method, outcome);
      const bytesSent = deps.metrics.bytesSent.labels(outcome);
      child = {
        observe(seconds, bytes) {
          requests.inc();
          duration.observe(seconds);
          if (bytes > 0) bytesSent.inc(bytes);
        },
      };
      if (children.size < 1000) children.set(id, child);
    }
    return child;
  };

  app.all('*', async (c) => {
    const started = performance.now();
    const url = new URL(c.req.url);
    const method = c.req.method;
    const incoming = c.env?.incoming;
    const result = await deps.pipeline.handle({
      method,
      url,
      // Node's parsed headers, when served by Node: building a WHATWG Request costs more than a hit.
      headers: incoming?.headers !== undefined ? nodeRequestHeaders(incoming.headers) : c.req.raw.headers,
      body: method === 'GET' || method === 'HEAD' ? null : c.req.raw.body,
      clientIp: incoming?.socket?.remoteAddress,
      started,
      closeConnection: deps.isDraining(),
    });
    const { response, outcome } = result;
    const seconds = (performance.now() - started) / 1000;
    const status = response.status;
    const bytes = result.bytes ?? 0;
    counters(method, status, outcome).observe(seconds, bytes);
    if (deps.logger.isLevelEnabled('info')) {
      logRequest(deps.logger, { method, path: url.pathname + url.search, status, bytes, durationMs: Math.round(seconds * 1e4) / 10, cache: outcome });
    }
    return response;
  });
  return app;
}
