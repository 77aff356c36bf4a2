/**
 * The origin's HTTP application, as one Node request listener built from its dependencies and
 * doing no I/O of its own; origin/server.ts binds it to a port.
 *
 * Content (`GET`/`HEAD /{path}`: originals and image variants, nearly all of the traffic) goes
 * straight to origin/routes/content.ts and is written to Node's response as a plain reply, like
 * the edge's, and so does the purge stream (`GET /_cdn/purges`, origin/purge/purge-stream.ts),
 * which never ends; everything else (the publisher and purge APIs, health, metrics, and the
 * 404/405 answers) is routed by Hono. Every path logs (the access log) and counts each request the same way
 * (`recordRequest`).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { accessRecord, type AccessLog } from '../src/access-log/access-log.js';
import { httpErrorOf, type HttpError } from '../src/errors.js';
import { framingProblem, unreadableTarget } from '../src/http/host.js';
import { httpDate } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import type { HttpMetrics } from '../src/metrics.js';
import { closeAfterIgnoredBody } from '../src/serve/listen.js';
import { jsonReply, writeReply } from '../src/serve/reply.js';
import type { OriginConfig } from './config.js';
import type { Purges } from './purge/purges.js';
import { isControlPath, refuseDotSegments, splitTarget } from './request-path.js';
import { registerAssetRoutes } from './routes/assets.js';
import { registerPurgeRoutes } from './routes/purge.js';
import { serveContent, type ContentAnswer } from './routes/content.js';
import type { AssetStore } from './store/asset-store.js';
import type { VariantService } from './variants/variant-service.js';

export interface OriginDeps {
  config: OriginConfig;
  store: AssetStore;
  variants: VariantService;
  /** The purge log, the edges that follow it and their streams. */
  purges: Purges;
  metrics: HttpMetrics;
  logger: Logger;
  /** One line per request answered (src/access-log/); none when undefined. */
  accessLog?: AccessLog | undefined;
  /** Clock in ms; injected so tests control upload times. */
  now: () => number;
  /** Health: false while draining (GET /_cdn/healthz answers 503). */
  isDraining?: () => boolean;
}

const PURGE_STREAM_PATH = '/_cdn/purges';

export type OriginEnv = { Variables: { outcome: string }; Bindings: { incoming?: IncomingMessage } };

export function createOriginListener(deps: OriginDeps): RequestListener {
  const routed = getRequestListener(createRoutedApp(deps).fetch);

  async function content(req: IncomingMessage, res: ServerResponse, method: 'GET' | 'HEAD', path: string, query: string): Promise<void> {
    const started = performance.now();
    let served: ContentAnswer;
    try {
      served = await serveContent(deps, { method, path, query, headers: req.headers });
    } catch (err) {
      served = errorAnswer(method, failure(err, deps.logger));
    }
    await send(req, res, method, started, served);
  }

  /** The purge stream: admitted or refused here, then held open until either side closes it. */
  async function purgeStream(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    const started = performance.now();
    let params: ReturnType<Purges['streams']['admit']>;
    try {
      params = deps.purges.streams.admit(req, new URLSearchParams(query), deps.isDraining?.() === true);
    } catch (err) {
      await send(req, res, 'GET', started, errorAnswer('GET', failure(err, deps.logger)));
      return;
    }
    const bytes = await deps.purges.streams.serve(res, params);
    recordRequest(deps, req, { method: 'GET', status: 200, bytes, started, outcome: 'purge-stream' });
  }

  /** Write an answer that bypasses the router, with its Date, and log and count it once it has gone out. */
  async function send(req: IncomingMessage, res: ServerResponse, method: string, started: number, served: ContentAnswer): Promise<void> {
    // Date from the injected clock (RFC 9110 §6.6.1), so caches and tests agree on the time.
    served.reply.headers['date'] = httpDate(deps.now());
    const timing: { headAt?: number } = {};
    const bytes = await writeReply(res, served.reply, undefined, timing);
    recordRequest(deps, req, { method, status: served.reply.status, bytes, started, headAt: timing.headAt, outcome: served.outcome, phases: served.phases });
  }

  return (req, res) => {
    const method = req.method;
    // Draining: every answer tells the client to go (and reconnect to another origin).
    if (deps.isDraining?.() === true) res.setHeader('connection', 'close');
    closeAfterIgnoredBody(req, res);
    const refusal = framingProblem(req);
    if (refusal === undefined && method === 'OPTIONS' && req.url === '*') {
      // RFC 9110 §9.3.7: OPTIONS * asks about the server as a whole.
      send(req, res, method, performance.now(), { reply: { status: 204, headers: { allow: 'GET, HEAD, PUT, DELETE, OPTIONS' }, body: null }, outcome: 'other', bytes: 0 }).catch(() => res.destroy());
      return;
    }
    const unreadable = refusal ?? unreadableTarget(req.url ?? '/');
    if (unreadable !== undefined) {
      send(req, res, method ?? '', performance.now(), errorAnswer(method, httpErrorOf(unreadable))).catch(() => res.destroy());
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      const target = splitTarget(req.url ?? '/');
      if (method === 'GET' && target?.path === PURGE_STREAM_PATH) {
        purgeStream(req, res, target.query).catch((err: unknown) => {
          deps.logger.error({ err, url: req.url }, 'purge stream failed');
          res.destroy();
        });
        return;
      }
      if (target !== undefined && !isControlPath(target.path)) {
        content(req, res, method, target.path, target.query).catch((err: unknown) => {
          // A reply Node refused to write (a bug): the client sees a cut connection, never a hang.
          deps.logger.error({ err, method, url: req.url }, 'request failed');
          res.destroy();
        });
        return;
      }
    }
    void routed(req, res);
  };
}

/** An error as the JSON answer the router-free paths send (no body for HEAD). */
function errorAnswer(method: string | undefined, e: HttpError): ContentAnswer {
  const reply = jsonReply(e.status, e.body, e.headers);
  return { reply, outcome: 'error', bytes: method === 'HEAD' ? 0 : (reply.body as Buffer).length };
}

/**
 * The path of a request routed by Hono, exactly as the client sent it (see request-path.ts).
 * Falls back to the parsed URL outside a Node server.
 */
export function rawRequestPath(c: Context<OriginEnv>): string {
  const raw = c.env?.incoming?.url;
  return (raw === undefined ? undefined : splitTarget(raw)?.path) ?? new URL(c.req.url).pathname;
}

/** The publisher API, health, metrics, and the 404/405 answers for everything but content. */
function createRoutedApp(deps: OriginDeps): Hono<OriginEnv> {
  const app = new Hono<OriginEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    c.set('outcome', 'other');
    await next();
    c.res.headers.set('date', httpDate(deps.now()));
    // API answers are small JSON without Content-Length: count them (metrics is the one big text, and has it).
    const length = c.res.headers.get('content-length');
    const bytes = c.req.method === 'HEAD' || c.res.body === null ? 0 : length !== null ? Number(length) : (await c.res.clone().arrayBuffer()).byteLength;
    recordRequest(deps, c.env?.incoming, { method: c.req.method, status: c.res.status, bytes, started, outcome: c.get('outcome') });
  });

  app.onError((err, c) => {
    const e = failure(err, deps.logger);
    c.set('outcome', 'error');
    return c.json(e.body, e.status as 400, e.headers);
  });
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
  registerPurgeRoutes(app, deps);
  app.all('/_cdn/assets/*', (c) => methodNotAllowed(c, 'PUT, DELETE'));
  app.all('/_cdn/assets', (c) => methodNotAllowed(c, 'GET'));
  app.all('/_cdn/*', (c) => c.json({ error: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.all('*', (c) => methodNotAllowed(c, 'GET, HEAD'));
  return app;
}

/**
 * RFC 9110 §15.5.6: 405 with the methods the target does support. OPTIONS is answered instead
 * (§9.3.7): 204 with the same Allow, OPTIONS included.
 */
function methodNotAllowed(c: Context<OriginEnv>, allow: string): Response {
  if (c.req.method === 'OPTIONS') {
    c.set('outcome', 'other');
    return c.body(null, 204, { allow: `${allow}, OPTIONS` });
  }
  c.set('outcome', 'error');
  return c.json({ error: 'method_not_allowed', message: `${c.req.method} is not allowed here; allowed: ${allow}` }, 405, { allow });
}

/**
 * A thrown value as its HTTP answer. Server-side failures are logged with their cause; a 503
 * (transform queue full, a source replaced mid-request) is load shedding that the client retries
 * after `Retry-After`, so it is one warning line, without a stack.
 */
function failure(err: unknown, logger: Logger): HttpError {
  const e = httpErrorOf(err);
  if (e.status === 503) logger.warn({ code: e.body.error, reason: e.body.message }, 'request refused, retry later');
  else if (e.status >= 500) logger.error({ err }, 'request failed');
  return e;
}

interface RequestRecord {
  method: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** performance.now() when the request was taken up, and when the response head went out (if before the body). */
  started: number;
  headAt?: number | undefined;
  outcome: string;
  phases?: Record<string, number> | undefined;
}

/** The access log line and the request metrics, the same for every route. */
function recordRequest(deps: OriginDeps, req: IncomingMessage | undefined, r: RequestRecord): void {
  const seconds = (performance.now() - r.started) / 1000;
  deps.metrics.requests.inc({ method: r.method, status: String(r.status), outcome: r.outcome });
  deps.metrics.duration.observe({ method: r.method, outcome: r.outcome }, seconds);
  deps.metrics.bytesSent.inc({ outcome: r.outcome }, r.bytes);
  const log = deps.accessLog;
  if (log === undefined || !log.sampled()) return;
  const logged = { method: r.method, target: req?.url ?? '', protocol: `HTTP/${req?.httpVersion ?? '1.1'}`, rawHeaders: req?.rawHeaders ?? [], socket: req?.socket };
  log.log(accessRecord(logged, r, r.started, r.headAt));
}
