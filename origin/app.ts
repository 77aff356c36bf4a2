/**
 * The origin's HTTP application: publisher API, health, metrics and content (originals and image
 * variants). Built from its dependencies and doing no I/O of its own, so tests can call
 * `app.request()` without a socket; origin/server.ts binds it to a port.
 */
import { Hono, type Context } from 'hono';
import { normalizeAssetPath } from '../src/asset-path.js';
import { clientError, httpErrorOf } from '../src/errors.js';
import { httpDate } from '../src/http/headers.js';
import { logRequest, type Logger } from '../src/log.js';
import type { HttpMetrics } from '../src/metrics.js';
import type { OriginConfig } from './config.js';
import { registerAssetRoutes } from './routes/assets.js';
import { registerContentRoutes } from './routes/content.js';
import type { AssetStore } from './store/asset-store.js';
import type { VariantService } from './variants/variant-service.js';

export interface OriginDeps {
  config: OriginConfig;
  store: AssetStore;
  variants: VariantService;
  metrics: HttpMetrics;
  logger: Logger;
  /** Clock in ms; injected so tests control upload times. */
  now: () => number;
  /** Health: false while draining (GET /_cdn/healthz answers 503). */
  isDraining?: () => boolean;
}

export type OriginEnv = { Variables: { outcome: string; phases?: Record<string, number> }; Bindings: { incoming?: { url?: string } } };

/** Scheme and authority of an absolute-form request target (RFC 9112 §3.2.2): `http://host:port`. */
const ABSOLUTE_FORM = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i;

/**
 * The request path exactly as the client sent it (still percent-encoded, dot segments not
 * resolved), so `a/%2e%2e/b` is refused as a traversal attempt instead of being silently resolved
 * to `b` by the URL parser. An absolute-form target (`GET http://host/a/b`) gives its path the
 * same way. Falls back to the parsed URL outside a Node server (app.request()).
 */
export function rawRequestPath(c: Context<OriginEnv>): string {
  const raw = c.env?.incoming?.url;
  const start = raw === undefined ? undefined : raw.startsWith('/') ? 0 : ABSOLUTE_FORM.exec(raw)?.[0].length;
  if (raw !== undefined && start !== undefined) {
    const q = raw.indexOf('?', start);
    const path = q < 0 ? raw.slice(start) : raw.slice(start, q);
    return path.startsWith('/') ? path : `/${path}`;
  }
  return new URL(c.req.url).pathname;
}

export function createOriginApp(deps: OriginDeps): Hono<OriginEnv> {
  const app = new Hono<OriginEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    c.set('outcome', 'other');
    await next();
    // Date from the injected clock (RFC 9110 §6.6.1), so caches and tests agree on the time.
    c.res.headers.set('date', httpDate(deps.now()));
    const outcome = c.get('outcome');
    const bytes = Number(c.res.headers.get('content-length') ?? 0);
    const seconds = (performance.now() - started) / 1000;
    deps.metrics.requests.inc({ method: c.req.method, status: String(c.res.status), outcome });
    deps.metrics.duration.observe({ method: c.req.method, outcome }, seconds);
    deps.metrics.bytesSent.inc({ outcome }, bytes);
    logRequest(deps.logger, {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      bytes,
      durationMs: Math.round(seconds * 1e4) / 10,
      cache: outcome,
      ...(c.get('phases') === undefined ? {} : { phases: c.get('phases') }),
    });
  });

  app.onError((err, c) => errorResponse(c, err, deps.logger));
  // Dot segments are refused before routing: the URL parser would otherwise resolve
  // `/_cdn/assets/a/%2e%2e/%2e%2e/b` to `/_cdn/b` and the request would land somewhere else.
  app.use('*', async (c, next) => {
    refuseDotSegments(rawRequestPath(c));
    await next();
  });
  app.notFound((c) => c.json({ error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.get('/_cdn/healthz', (c) => {
    c.set('outcome', 'health');
    const draining = deps.isDraining?.() ?? false;
    return c.json({ status: draining ? 'draining' : 'ok' }, draining ? 503 : 200);
  });
  app.get('/_cdn/metrics', async (c) => {
    c.set('outcome', 'metrics');
    return c.body(await deps.metrics.registry.metrics(), 200, { 'content-type': deps.metrics.registry.contentType });
  });

  registerAssetRoutes(app, deps);
  app.all('/_cdn/assets/*', (c) => methodNotAllowed(c, 'PUT, DELETE'));
  app.all('/_cdn/*', (c) => c.json({ error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }, 404));
  registerContentRoutes(app, deps);
  app.all('*', (c) => methodNotAllowed(c, 'GET, HEAD'));
  return app;
}

/** RFC 9110 §15.5.6: 405 with the methods the target does support. */
function methodNotAllowed(c: Context<OriginEnv>, allow: string): Response {
  c.set('outcome', 'error');
  return c.json({ error: 'method_not_allowed', message: `${c.req.method} is not allowed here; allowed: ${allow}` }, 405, { allow });
}

function errorResponse(c: Context<OriginEnv>, err: unknown, logger: Logger): Response {
  const e = httpErrorOf(err);
  c.set('outcome', 'error');
  if (e.status >= 500) logger.error({ err }, 'request failed');
  return c.json(e.body, e.status as 400, e.headers);
}

function refuseDotSegments(rawPath: string): void {
  for (const segment of rawPath.split('/')) {
    let decoded = segment;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      // malformed escapes are reported by the path rules later
    }
    if (decoded === '.' || decoded === '..') {
      throw clientError('invalid_path', `invalid asset path: '${decoded}' segments are not allowed`, { field: 'path' });
    }
  }
}

/**
 * The asset path of a content or publisher URL (`prefix` stripped), validated. The router matched
 * the decoded path, but the asset path is cut from the raw one, so the prefix must be there as
 * written: `/_cdn/%61ssets/x` would otherwise lose the wrong characters and name another asset.
 * normalizeAssetPath accepts one leading slash; the prefix already took it, so one more is an
 * empty segment (`//x`), not a second URL for `x`.
 */
export function assetPathOf(rawPath: string, prefix = '/'): string {
  if (!`${rawPath}/`.startsWith(prefix)) {
    throw clientError('invalid_path', `invalid asset path: the URL must start with ${prefix} written without percent-encoding`, { field: 'path' });
  }
  const rest = rawPath.slice(prefix.length);
  if (rest.startsWith('/')) throw clientError('invalid_path', 'invalid asset path: empty segments are not allowed', { field: 'path' });
  return normalizeAssetPath(rest);
}

