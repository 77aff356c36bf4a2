/**
 * The edge's answers, as header records and bodies: a stored copy (served whole, by range or
 * compressed), a response still streaming in from a fetch, a relayed upstream response and an
 * error, each stamped with Cache-Status, X-Served-By and Server-Timing.
 */
import type { Readable } from 'node:stream';
import type { BlobEntry } from '../src/blob/blob-store.js';
import { formatCacheStatus, type CacheStatusEntry } from '../src/http/cache-status.js';
import { CdnError, httpErrorOf } from '../src/errors.js';
import { currentAge, storedAge } from '../src/http/freshness.js';
import { parseHttpDate } from '../src/http/headers.js';
import type { Logger } from '../src/log.js';
import { answer, type Representation } from '../src/serve/respond.js';
import type { ReplyHeaders } from '../src/serve/reply.js';
import { sliceReadable } from './body-slice.js';
import { addVary, codedEtag, type EdgeCompression } from './compression.js';
import type { EdgeRequest, Outcome, PipelineResult } from './edge-request.js';
import type { SharedOutcome } from './flights.js';
import { relayResponseHeaders } from './forward-headers.js';
import type { EdgeMetrics } from './metrics.js';
import { clientHeaders, clientHeadersOf, FieldList, viewOf } from './stored-view.js';
import { discard, firstChunkReady } from './stream-parts.js';
import type { UpstreamAnswer, UpstreamResponse } from './upstream.js';

/** `result` answered with upstream's `answer`, for the access log: upstream's status and time to its head. */
export function asked(result: PipelineResult, answer: UpstreamAnswer): PipelineResult {
  result.upstream = { status: answer.status, ms: answer.elapsedMs };
  return result;
}

export interface ReplyDeps {
  /** The X-Served-By value (`pop/node`). */
  servedBy: string;
  compression: EdgeCompression;
  metrics: EdgeMetrics;
  logger: Logger;
  now: () => number;
}

export class EdgeReplies {
  constructor(private readonly deps: ReplyDeps) {}

  async entry(req: EdgeRequest, entry: BlobEntry, status: CacheStatusEntry, outcome: Outcome): Promise<PipelineResult> {
    const view = viewOf(entry.meta);
    const ageSec = currentAge(view.ageInputs, this.deps.now()) / 1000;
    const headers = clientHeadersOf(view, { ageSec, cacheStatus: formatCacheStatus(status), servedBy: this.deps.servedBy });
    let body = entry;
    let etag = view.etag;
    if (this.deps.compression.applies(entry)) {
      headers['vary'] = addVary(headers['vary'], 'Accept-Encoding');
      const chosen = await this.deps.compression.choose(req.headers.get('accept-encoding'), entry);
      if (chosen !== undefined) {
        body = chosen.entry;
        etag = codedEtag(view.etag, chosen.coding);
        headers['content-encoding'] = chosen.coding;
        if (etag === undefined) delete headers['etag'];
        else headers['etag'] = etag;
      }
    }
    this.stamp(req, outcome, headers);
    const rep: Representation = {
      status: entry.meta.status,
      headers,
      size: body.meta.size,
      etag,
      lastModified: view.lastModified,
      body: body.data ?? ((range) => firstChunkReady(body.open(range))),
    };
    const { reply, bytes } = await answer(req.method, req.headers, rep);
    this.deps.metrics.bytesBySource.inc({ source: body.data !== undefined ? 'memory' : 'disk' }, bytes);
    return { reply, outcome, bytes };
  }
  async shared(req: EdgeRequest, shared: SharedOutcome, status: CacheStatusEntry, outcome: Outcome): Promise<PipelineResult | 'retry'> {
    // The leader's client gets the fields a qualified `private` kept out of the store; nobody else does.
    const own = outcome === 'miss' ? shared.leaderHeaders : undefined;
    const headers = own === undefined ? shared.fields : new FieldList(own);
    const ageSec = storedAge({ status: shared.status, headers, requestTime: shared.requestTime, responseTime: shared.responseTime }, this.deps.now()) / 1000;
    // A body that is all here already (a small object that came with its head) is answered as
    // bytes: one write with the head, no stream per reader.
    const whole = shared.body.whole();
    let reader: Readable | undefined;
    if (whole === undefined) {
      try {
        reader = shared.body.createReader();
      } catch {
        // Joined as the fetch ended (the body is closed, the object is stored now) or too late to
        // read a memory-only body from its start: look the key up again.
        return 'retry';
      }
    }
    const base = clientHeaders(headers, { ageSec, cacheStatus: formatCacheStatus(status), servedBy: this.deps.servedBy });
    // Sent as is while it streams in; later hits may be compressed, so the answer varies already.
    if (this.deps.compression.appliesTo(shared.status, headers, shared.size)) base['vary'] = addVary(base['vary'], 'Accept-Encoding');
    const out: ReplyHeaders = this.stamp(req, outcome, base);
    const cookies = own?.filter(([name]) => name === 'set-cookie').map(([, value]) => value) ?? [];
    if (cookies.length > 0) out['set-cookie'] = cookies;
    let handedOut = false;
    const rep: Representation = {
      status: shared.status,
      headers: out,
      size: shared.size,
      etag: headers.get('etag') ?? undefined,
      lastModified: parseHttpDate(headers.get('last-modified')),
      body:
        whole ??
        ((range) => {
          handedOut = true;
          return range === undefined ? reader! : sliceReadable(reader!, range.start, range.end);
        }),
    };
    try {
      const { reply, bytes } = await answer(req.method, req.headers, rep);
      // Bytes in memory are counted here; a stream is counted as it goes out (edge/app.ts).
      return whole === undefined ? { reply, outcome } : { reply, outcome, bytes };
    } finally {
      // HEAD, 304, 412, 416 and an empty body (a full answer too) never take the body: let the
      // reader go, or the shared body keeps the store writer's temp file open until GC.
      if (!handedOut) reader?.destroy();
    }
  }
  relay(req: EdgeRequest, res: UpstreamResponse, status: CacheStatusEntry, outcome: Outcome): PipelineResult {
    const headers = relayResponseHeaders(res.headers);
    const upstreamStatus = headers['cache-status'];
    const mine = formatCacheStatus(status);
    headers['cache-status'] = upstreamStatus ? `${String(upstreamStatus)}, ${mine}` : mine;
    headers['x-served-by'] = this.deps.servedBy;
    this.stamp(req, outcome, headers);
    const bodyless = req.method === 'HEAD' || res.status === 204 || res.status === 304;
    if (bodyless) {
      discard(res.body);
      return asked({ reply: { status: res.status, headers, body: null }, outcome }, res);
    }
    let bytes = 0;
    res.body.on('data', (c: Buffer) => (bytes += c.length));
    res.body.once('end', () => this.deps.metrics.bytesBySource.inc({ source: 'upstream' }, bytes));
    return asked({ reply: { status: res.status, headers, body: res.body }, outcome, bytes: Number(headers['content-length'] ?? 0) }, res);
  }
  error(err: unknown, status: CacheStatusEntry, req?: EdgeRequest): PipelineResult {
    const e = httpErrorOf(err);
    if (e.status >= 500 && !(err instanceof CdnError && err.source !== 'internal')) this.deps.logger.error({ err }, 'edge request failed');
    const body = Buffer.from(JSON.stringify(e.body));
    const headers: ReplyHeaders = {};
    for (const [k, v] of Object.entries(e.headers ?? {})) headers[k.toLowerCase()] = v;
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(body.length);
    headers['cache-status'] = formatCacheStatus({ ...status, detail: e.body.error });
    headers['x-served-by'] = this.deps.servedBy;
    headers['cache-control'] = 'no-store';
    if (req !== undefined) this.stamp(req, 'error', headers);
    return { reply: { status: e.status, headers, body: req?.method === 'HEAD' ? null : body }, outcome: 'error' };
  }
  /**
   * Fields every edge answer carries besides Cache-Status: Server-Timing with the outcome (browsers
   * expose it to pages; the demo page shows it) and, while draining, `Connection: close`. Set in
   * the header record, not later on Node's response: a header set before writeHead sends Node
   * down its slower merging path (measured ~25% on small hits).
   */
  stamp<H extends ReplyHeaders>(req: Pick<EdgeRequest, 'started' | 'closeConnection'>, outcome: Outcome, headers: H): H {
    const ms = req.started === undefined ? 0 : performance.now() - req.started;
    (headers as ReplyHeaders)['server-timing'] = `cdn-cache;desc=${outcome}, edge;dur=${ms.toFixed(1)}`;
    if (req.closeConnection === true) (headers as ReplyHeaders)['connection'] = 'close';
    return headers;
  }
}
