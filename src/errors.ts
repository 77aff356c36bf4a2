/**
 * The one error family of anycdn. Every failure that crosses a module boundary is a CdnError with
 * a stable `code` (for logs, metrics and clients) and a `source` that decides how it maps to HTTP:
 *
 * - `client`: the request was wrong (4xx, naming the field when there is one).
 * - `upstream`: something we depend on failed (502, or 504 for timeouts).
 * - `internal`: our own fault or a capacity limit (500, or the explicit status such as 503).
 *
 * Storage and domain code throw these; only `httpErrorOf` turns them into a status and body.
 */

export type ErrorSource = 'client' | 'upstream' | 'internal';

export interface CdnErrorOptions {
  /** Explicit HTTP status; defaults by source (400, 502, 500). */
  status?: number;
  /** The request field (parameter, header, config path) that was wrong. */
  field?: string;
  /** Extra response headers, e.g. `Retry-After` for 503. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class CdnError extends Error {
  readonly code: string;
  readonly source: ErrorSource;
  readonly status: number;
  readonly field: string | undefined;
  readonly headers: Record<string, string>;

  constructor(code: string, source: ErrorSource, message: string, options: CdnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CdnError';
    this.code = code;
    this.source = source;
    this.status = options.status ?? defaultStatus(source);
    this.field = options.field;
    this.headers = options.headers ?? {};
  }
}

function defaultStatus(source: ErrorSource): number {
  switch (source) {
    case 'client':
      return 400;
    case 'upstream':
      return 502;
    case 'internal':
      return 500;
  }
}

/** Shorthand for a 4xx error caused by the request. */
export function clientError(code: string, message: string, options: CdnErrorOptions = {}): CdnError {
  return new CdnError(code, 'client', message, options);
}

export function isCdnError(err: unknown): err is CdnError {
  return err instanceof CdnError;
}

export interface HttpError {
  status: number;
  headers: Record<string, string>;
  body: { error: string; message: string; field?: string };
}

/**
 * The single mapping from any thrown value to an HTTP answer. Client errors keep their message
 * (it names what is wrong); internal errors expose only their code, never internals.
 */
export function httpErrorOf(err: unknown): HttpError {
  if (!isCdnError(err)) {
    return {
      status: 500,
      headers: {},
      body: { error: 'internal_error', message: 'internal error' },
    };
  }
  const message = err.source === 'internal' && err.status === 500 ? 'internal error' : err.message;
  const body: HttpError['body'] = { error: err.code, message };
  if (err.field !== undefined) body.field = err.field;
  return { status: err.status, headers: err.headers, body };
}
