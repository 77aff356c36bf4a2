/**
 * `GET /_cdn/purges?after=SEQ&node=POP/NODE[&log=ID]`: the purge stream an edge tails, as
 * Server-Sent Events (HTML Living Standard §9.2), written straight to Node's response (a router
 * that buffers answers would hold it forever). `Authorization: Bearer <edgeToken>`.
 *
 * Events, in order (each `data` is one line of JSON):
 *
 *     retry: 1000
 *
 *     event: hello
 *     data: {"format":1,"log":"3f9a1c0b7d2e","firstSeq":1,"lastSeq":42,"heartbeatMs":15000}
 *
 *     event: reset                       (only when the edge cannot simply resume, see below)
 *     data: {"reason":"compacted","log":"3f9a1c0b7d2e","firstSeq":31,"lastSeq":42}
 *
 *     id: 43
 *     event: purge                       (every purge after `after`, oldest first, then live ones)
 *     data: {"seq":43,"id":"3f9a1c0b7d2e-43","time":1767225600000,"source":"api","soft":false,
 *            "all":false,"urls":[{"path":"/a.jpg"}],"prefixes":[],"tags":[]}
 *
 *     event: heartbeat                   (every `purge.heartbeat`, default 15 s)
 *     data: {"lastSeq":43,"time":1767225615000}
 *
 * `reset` comes when purges the edge has not applied are gone from the log (`compacted`: `after`
 * is below `firstSeq - 1`), when the edge is ahead of this log (`ahead`: `after` > `lastSeq`, the
 * origin's log was replaced) or follows another log (`other-log`: the `log` it gave is not this
 * one). The edge then treats its whole cache as stale (revalidates before serving) and applies the
 * purges that follow, which start at `firstSeq`. An edge with an empty cache may ignore it.
 *
 * The edge applies purges in order, persists the last applied `seq` (with `log`) and acknowledges
 * it with `POST /_cdn/purges/ack`; it reconnects with `after` = that `seq`. An edge is live while
 * its stream is open. Heartbeats keep the connection inside the origin's `timeouts.clientIdle` and
 * let the edge see the head of the log (`lastSeq`) and its own lag; an edge that hears nothing for
 * three heartbeats should reconnect. A reader too slow to take what is written is closed by the
 * idle timeout, and resumes from its cursor.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requireBearer } from '../../src/auth.js';
import { clientError, CdnError } from '../../src/errors.js';
import { drained } from '../../src/serve/reply.js';
import { PURGE_LOG_VERSION, wireOf } from './purge-log-format.js';
import type { PurgeLog } from './purge-log.js';
import { EDGE_NAME, type EdgeRegistry } from './edge-registry.js';

export interface PurgeStreamOptions {
  /** The token edges present; undefined: the stream is off (404). */
  edgeToken: string | undefined;
  heartbeatMs: number;
  maxStreams: number;
}

/** Purges written per write while catching up, before looking at backpressure again. */
const CATCH_UP_BATCH = 256;
/** What EventSource clients wait before reconnecting. */
const RETRY_MS = 1000;

export type ResetReason = 'compacted' | 'ahead' | 'other-log';

/** Where a stream for `after` (and optionally `log`) starts, and why it resets, if it does. Pure. */
export function streamStart(after: number, givenLog: string | undefined, log: { id: string; firstSeq: number; lastSeq: number }): { from: number; reset: ResetReason | undefined } {
  const reset: ResetReason | undefined =
    givenLog !== undefined && givenLog !== log.id ? 'other-log' : after > log.lastSeq ? 'ahead' : after < log.firstSeq - 1 ? 'compacted' : undefined;
  return { from: reset === undefined ? after : log.firstSeq - 1, reset };
}

/** The query of a stream request, checked: `after` and `node` required, `log` optional. */
export function streamParams(query: URLSearchParams): { after: number; node: string; log: string | undefined } {
  const after = query.get('after');
  if (after === null || !/^\d{1,15}$/.test(after)) {
    throw clientError('invalid_param', `after must be the last applied sequence number (0 for none), got ${JSON.stringify((after ?? '').slice(0, 40))}`, { field: 'after' });
  }
  const node = query.get('node');
  if (node === null || !EDGE_NAME.test(node)) {
    throw clientError('invalid_param', `node must be POP/NODE (letters, digits, _ and -; the node also .), got ${JSON.stringify((node ?? '').slice(0, 100))}`, { field: 'node' });
  }
  const log = query.get('log') ?? undefined;
  if (log !== undefined && !/^[0-9a-f]{12}$/.test(log)) throw clientError('invalid_param', `log must be the 12 hex digits a hello event gave, got ${JSON.stringify(log.slice(0, 40))}`, { field: 'log' });
  return { after: Number(after), node, log };
}

/** The open purge streams, so the server can count them and end them when it closes. */
export class PurgeStreams {
  private readonly open = new Set<() => void>();
  private closed = false;
  /** Streams opened since start. */
  connections = 0;

  constructor(
    private readonly log: PurgeLog,
    private readonly edges: EdgeRegistry,
    private readonly options: PurgeStreamOptions,
    private readonly now: () => number,
  ) {}

  get size(): number {
    return this.open.size;
  }

  /**
   * Check a stream request; throws the CdnError to answer instead (404 when off, 401/403, 400, 503
   * at the stream limit or while draining). Returns what `serve` needs.
   */
  admit(req: IncomingMessage, query: URLSearchParams, draining: boolean): { after: number; node: string; log: string | undefined } {
    if (this.options.edgeToken === undefined) {
      throw clientError('not_found', 'the purge stream is off: the origin has no edgeToken configured', { status: 404 });
    }
    requireBearer(req.headers.authorization, this.options.edgeToken, 'edge');
    const params = streamParams(query);
    if (draining || this.closed) throw new CdnError('draining', 'internal', 'the origin is shutting down; reconnect shortly', { status: 503, headers: { 'Retry-After': '1' } });
    if (this.open.size >= this.options.maxStreams) {
      throw new CdnError('too_many_streams', 'internal', `${this.options.maxStreams} purge streams are open already`, { status: 503, headers: { 'Retry-After': '5' } });
    }
    return params;
  }

  /** Stream to `res` until either side closes; resolves with the bytes written. */
  serve(res: ServerResponse, params: { after: number; node: string; log: string | undefined }): Promise<number> {
    const { log, edges } = this;
    this.connections += 1;
    const start = streamStart(params.after, params.log, log);
    let sent = start.from;
    let bytes = 0;
    let pumping = false;
    const write = (text: string): boolean => {
      bytes += text.length;
      return res.write(text);
    };
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no', // a proxy in front must pass events on as they come
    });
    write(`retry: ${RETRY_MS}\n\nevent: hello\ndata: ${JSON.stringify({ format: PURGE_LOG_VERSION, log: log.id, firstSeq: log.firstSeq, lastSeq: log.lastSeq, heartbeatMs: this.options.heartbeatMs })}\n\n`);
    if (start.reset !== undefined) write(resetEvent(start.reset, log));
    const disconnect = edges.connect(params.node, start.from);

    /** Write what the edge has not had yet, pausing while the socket's buffer is full. */
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (!res.destroyed && sent < log.lastSeq) {
          if (sent < log.firstSeq - 1) {
            // Compacted away while this reader was behind: the same reset as at the start.
            write(resetEvent('compacted', log));
            sent = log.firstSeq - 1;
          }
          const batch = log.after(sent, CATCH_UP_BATCH);
          let text = '';
          for (const e of batch) text += `id: ${e.seq}\nevent: purge\ndata: ${wireOf(e.line)}\n\n`;
          sent = batch.at(-1)?.seq ?? sent;
          if (!write(text)) await drained(res);
        }
      } finally {
        pumping = false;
      }
    };
    const unsubscribe = log.subscribe(() => void pump());
    const heartbeat = setInterval(() => {
      if (!res.writableNeedDrain) write(`event: heartbeat\ndata: {"lastSeq":${log.lastSeq},"time":${this.now()}}\n\n`);
    }, this.options.heartbeatMs);
    void pump();

    return new Promise((resolve) => {
      const end = (): void => {
        if (!this.open.delete(end)) return;
        clearInterval(heartbeat);
        unsubscribe();
        disconnect();
        if (!res.writableEnded) res.end();
        resolve(bytes);
      };
      this.open.add(end);
      res.once('close', end);
      if (res.destroyed) end(); // gone before it was watched
    });
  }

  /** End every open stream and refuse new ones (the server is closing; edges reconnect to the next). */
  close(): void {
    this.closed = true;
    for (const end of [...this.open]) end();
  }
}

function resetEvent(reason: ResetReason, log: PurgeLog): string {
  return `event: reset\ndata: ${JSON.stringify({ reason, log: log.id, firstSeq: log.firstSeq, lastSeq: log.lastSeq })}\n\n`;
}
