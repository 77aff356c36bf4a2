/**
 * What the edge's pipeline is given (one request, as read by the HTTP/1.1 or HTTP/2 front) and
 * what it answers, with the one word naming what the cache did.
 */
import type { Readable } from 'node:stream';
import type { RequestHeaders } from '../src/http/request-headers.js';
import type { Reply } from '../src/serve/reply.js';

/**
 * Each outcome is one word (hit, stale, revalidated, miss, collapsed, stale-error, pass, bypass,
 * forward, error) used alike in Cache-Status details, logs and metrics. `collapsed` means only
 * that the request waited on another request's fetch.
 */
export type Outcome = 'hit' | 'stale' | 'revalidated' | 'miss' | 'collapsed' | 'stale-error' | 'pass' | 'bypass' | 'forward' | 'error';

/** Times (ms, the edge's clock) before which stored objects count as stale or as not stored; 0: none. */
export interface PurgeWatermarks {
  staleBefore: number;
  absentBefore: number;
}

export interface EdgeRequest {
  method: string;
  /**
   * The request target as received (`/path?query`), the memo key of a hit: the parsed `url` is
   * needed only when the target is seen for the first time or sent upstream.
   */
  target: string;
  /** The parsed request URL; may be computed on first use. */
  readonly url: URL;
  headers: RequestHeaders;
  /** The request body for methods that have one. */
  body: Readable | null;
  clientIp: string | undefined;
  /** performance.now() when the request arrived: Server-Timing reports the time to the answer. */
  started?: number;
  /** Draining: answer with `Connection: close` so keep-alive clients reconnect elsewhere. */
  closeConnection?: boolean;
  /**
   * Sends an informational (1xx) response to this client ahead of the final one; absent when the
   * client may not get one (HTTP/1.0, RFC 9110 §15.2).
   */
  informational?: (status: number, headers: [string, string][]) => void;
}

export interface PipelineResult {
  reply: Reply;
  outcome: Outcome;
  /** Body bytes sent from the cache (0 for relayed bodies, counted as they stream). */
  bytes?: number;
  /** When this request made the edge ask upstream: the answer's status and the time to its head (the access log). */
  upstream?: { status: number; ms: number };
}
